package synth

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Index describes a multi-arch image.
type Index struct {
	Images []Image
	// Attestations adds, per platform, a buildx-style attestation manifest
	// (platform unknown/unknown, vnd.docker.reference.* annotations).
	Attestations bool
	Annotations  map[string]string
}

// NewIndex builds an OCI image index of the given images.
func NewIndex(spec Index) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	var atts []mutate.IndexAddendum
	for i, is := range spec.Images {
		img, err := NewImage(is)
		if err != nil {
			return nil, fmt.Errorf("image %d (%s): %w", i, is.Platform.String(), err)
		}
		p := is.Platform
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		if spec.Attestations {
			att, desc, err := attestationFor(img, uint64(i))
			if err != nil {
				return nil, err
			}
			atts = append(atts, mutate.IndexAddendum{Add: att, Descriptor: desc})
		}
	}
	idx = mutate.AppendManifests(idx, append(adds, atts...)...)
	if len(spec.Annotations) > 0 {
		idx = mutate.Annotations(idx, spec.Annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// attestationFor builds what buildx attaches for provenance: an image whose
// single layer is an in-toto statement about subject.
func attestationFor(subject v1.Image, seed uint64) (v1.Image, v1.Descriptor, error) {
	d, err := subject.Digest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	stmt, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject":       []map[string]any{{"name": "synth", "digest": map[string]string{"sha256": d.Hex}}},
		"predicate":     map[string]any{"builder": map[string]string{"id": fmt.Sprintf("synth-%d", seed)}},
	})
	layer, err := NewLayer(Layer{Files: map[string][]byte{"provenance.json": stmt}})
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: "application/vnd.in-toto+json",
		Annotations: map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}})
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return img, v1.Descriptor{
		Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{
			"vnd.docker.reference.type":   "attestation-manifest",
			"vnd.docker.reference.digest": d.String(),
		},
	}, nil
}

// MultiArch is the usual fixture: one index over platforms, each with a
// shared base layer (seed 0) and layersPerPlatform layers of layerSize
// random bytes unique to that platform.
func MultiArch(platforms []string, layersPerPlatform int, layerSize int64, seed uint64) (v1.ImageIndex, error) {
	var spec Index
	base := Layer{Files: map[string][]byte{"etc/os-release": []byte("ID=synth\nVERSION_ID=1\n")}, Seed: seed}
	for pi, ps := range platforms {
		p, err := Platform(ps)
		if err != nil {
			return nil, err
		}
		img := Image{Platform: p, Layers: []Layer{base}}
		for li := 0; li < layersPerPlatform; li++ {
			img.Layers = append(img.Layers, Layer{RandomBytes: layerSize, Seed: seed<<32 | uint64(pi)<<16 | uint64(li+1)})
		}
		spec.Images = append(spec.Images, img)
	}
	return NewIndex(spec)
}

// WriteLayout writes idx as an OCI layout directory whose index.json points
// at the index, as `docker buildx build --output type=oci,tar=false` does.
func WriteLayout(dir string, idx v1.ImageIndex) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	return nil
}

// WriteOCIArchive writes idx as a tar of an OCI layout, the format of
// `docker buildx build --output type=oci,dest=image.tar`.
func WriteOCIArchive(path string, idx v1.ImageIndex) error {
	tmp, err := os.MkdirTemp("", "synth-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := WriteLayout(tmp, idx); err != nil {
		return err
	}
	return TarDir(tmp, path, "")
}

// TarDir writes the files under dir into a tar at path, each name behind
// prefix ("./" is how `tar -C dir -cf out .` names them).
func TarDir(dir, path, prefix string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = prefix + filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteDockerSave writes img as `docker save` does, tagged with tag.
func WriteDockerSave(path string, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, ref, img)
}

// PlatformImage returns the image of idx for platform ("os/arch[/variant]").
func PlatformImage(idx v1.ImageIndex, platform string) (v1.Image, error) {
	want, err := Platform(platform)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.Equals(want) {
			return idx.Image(d.Digest)
		}
		have = append(have, d.Platform.String())
	}
	return nil, fmt.Errorf("platform %s not in index (has %s)", platform, strings.Join(have, ", "))
}

// Push writes idx to ref with the given remote options.
func Push(ctx context.Context, ref name.Reference, idx v1.ImageIndex, opts ...remote.Option) error {
	return remote.WriteIndex(ref, idx, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
}
