package vulndb

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotation of Trivy's DB artifact.
const (
	DBLayerMediaType  types.MediaType = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
	DBConfigMediaType types.MediaType = "application/vnd.aquasec.trivy.config.v1+json"
	titleAnnotation                   = "org.opencontainers.image.title"
)

// Artifact returns the DB packaged the way Trivy publishes it
// (ghcr.io/aquasecurity/trivy-db:2): an OCI manifest with one db.tar.gz layer.
// Push it with remote.Write to serve the DB from a test registry.
func Artifact(meta Metadata) (v1.Image, error) {
	archive, err := Archive(meta)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, DBConfigMediaType)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer(archive, DBLayerMediaType),
		Annotations: map[string]string{titleAnnotation: "db.tar.gz"},
	})
	if err != nil {
		return nil, fmt.Errorf("build DB artifact: %w", err)
	}
	return img, nil
}

// A fixed timestamp keeps layer digests reproducible, so the shared layer of
// both platforms is byte-identical and the demo image never changes.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type file struct {
	path    string
	content string
	mode    int64 // 0 means 0644
}

func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(f.path, "/")
		for i := 1; i < len(parts); i++ {
			dir := strings.Join(parts[:i], "/") + "/"
			if dirs[dir] {
				continue
			}
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
				return nil, err
			}
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: f.path, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(f.content)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// SharedLayer installs the npm packages both platforms of Index carry.
func SharedLayer() (v1.Layer, error) {
	var files []file
	for _, p := range NpmPackages {
		manifest, err := json.MarshalIndent(map[string]string{"name": p.Name, "version": p.Version, "license": "MIT"}, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files, file{path: NpmPackagePath(p.Name), content: string(manifest) + "\n"})
	}
	return layer(files)
}

// AlpineLayer is an Alpine root filesystem reduced to what Trivy reads:
// the release file and the apk database.
func AlpineLayer() (v1.Layer, error) {
	var apk strings.Builder
	for _, p := range AlpinePackages {
		arch := p.Arch
		if arch == "" {
			arch = "x86_64"
		}
		fmt.Fprintf(&apk, "C:Q1%s=\nP:%s\nV:%s\nA:%s\nL:MIT\no:%s\n\n",
			strings.Repeat("A", 27), p.Name, p.Version, arch, p.source())
	}
	return layer([]file{
		{path: "etc/alpine-release", content: AlpineRelease + "\n"},
		{path: "etc/os-release", content: fmt.Sprintf("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=%s\nPRETTY_NAME=\"Alpine Linux v%s\"\n", AlpineRelease, alpineStream)},
		{path: "lib/apk/db/installed", content: apk.String()},
	})
}

// DebianLayer is a Debian root filesystem reduced to what Trivy reads:
// debian_version, os-release and the dpkg status database.
func DebianLayer() (v1.Layer, error) {
	var status strings.Builder
	for _, p := range DebianPackages {
		arch := p.Arch
		if arch == "" {
			arch = "arm64"
		}
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nPriority: required\nArchitecture: %s\n", p.Name, arch)
		if p.Source != "" {
			fmt.Fprintf(&status, "Source: %s\n", p.Source)
		}
		fmt.Fprintf(&status, "Version: %s\nMaintainer: Debian fixture <fixture@example.invalid>\nDescription: %s package\n\n", p.Version, p.Name)
	}
	return layer([]file{
		{path: "etc/debian_version", content: DebianRelease + "\n"},
		{path: "etc/os-release", content: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n"},
		{path: "var/lib/dpkg/status", content: status.String()},
	})
}

func image(platform v1.Platform, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	history := make([]v1.History, len(layers))
	for i := range layers {
		history[i] = v1.History{Created: v1.Time{Time: epoch}, CreatedBy: fmt.Sprintf("fixture layer %d", i+1)}
	}
	img, err := mutate.Append(img, addenda(layers, history)...)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = platform.OS
	cfg.Architecture = platform.Architecture
	cfg.Variant = platform.Variant
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Cmd = []string{"/bin/sh"}
	return mutate.ConfigFile(img, cfg)
}

func addenda(layers []v1.Layer, history []v1.History) []mutate.Addendum {
	out := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		out[i] = mutate.Addendum{Layer: l, History: history[i]}
	}
	return out
}

// AlpineImage is a linux/amd64 Alpine image: the shared npm layer, then the Alpine layer.
func AlpineImage() (v1.Image, error) {
	shared, err := SharedLayer()
	if err != nil {
		return nil, fmt.Errorf("build alpine image: %w", err)
	}
	base, err := AlpineLayer()
	if err != nil {
		return nil, fmt.Errorf("build alpine image: %w", err)
	}
	return image(v1.Platform{OS: "linux", Architecture: "amd64"}, shared, base)
}

// DebianImage is a linux/arm64 Debian image: the shared npm layer, then the Debian layer.
func DebianImage() (v1.Image, error) {
	shared, err := SharedLayer()
	if err != nil {
		return nil, fmt.Errorf("build debian image: %w", err)
	}
	base, err := DebianLayer()
	if err != nil {
		return nil, fmt.Errorf("build debian image: %w", err)
	}
	return image(v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, shared, base)
}

// Index is the sample multi-platform image: linux/amd64 (Alpine) and
// linux/arm64 (Debian) sharing one base layer, plus a buildx-style
// attestation manifest (platform unknown/unknown) that scanners must skip.
func Index() (v1.ImageIndex, error) {
	alpine, err := AlpineImage()
	if err != nil {
		return nil, err
	}
	debian, err := DebianImage()
	if err != nil {
		return nil, err
	}
	att, err := attestation(alpine)
	if err != nil {
		return nil, err
	}
	alpineDigest, err := alpine.Digest()
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: alpine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: debian, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{
				"vnd.docker.reference.type":   "attestation-manifest",
				"vnd.docker.reference.digest": alpineDigest.String(),
			},
		}},
	)
	return idx, nil
}

// attestation mimics the in-toto manifest BuildKit attaches to every platform.
func attestation(subject v1.Image) (v1.Image, error) {
	d, err := subject.Digest()
	if err != nil {
		return nil, err
	}
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject":       []map[string]any{{"name": "fixture", "digest": map[string]string{"sha256": d.Hex}}},
		"predicate":     map[string]any{},
	})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer(stmt, "application/vnd.in-toto+json"),
		Annotations: map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
	})
}

// SharedLayerDiffID is the diff ID of the layer both platforms of Index share.
func SharedLayerDiffID() (v1.Hash, error) {
	l, err := SharedLayer()
	if err != nil {
		return v1.Hash{}, err
	}
	return l.DiffID()
}

// WriteSampleLayout writes Index to dir as an OCI image layout, so the
// sample image can be scanned without a registry.
func WriteSampleLayout(dir string) error {
	idx, err := Index()
	if err != nil {
		return err
	}
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("write sample layout %s: %w", dir, err)
	}
	return nil
}
