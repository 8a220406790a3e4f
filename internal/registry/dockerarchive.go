package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/failure"
)

// A docker-save tarball holds no registry manifest: manifest.json names a
// config file and one file per layer, and the config's rootfs.diff_ids are
// what refers to the layers. So the checks are: the config against the
// digest its file name carries, each layer's uncompressed bytes against its
// diff_id (or, for layers stored compressed, against the digest their file
// name carries). The manifest pushed is rebuilt here.

const dockerSaveNote = "docker save stores no registry manifest: the manifest was rebuilt, so the digest is computed here (save with the containerd image store, or push an OCI archive, to keep the build's digest)"

func openDockerArchive(t *tarFiles, source string) (v1.Image, error) {
	raw, err := t.readAll("manifest.json", maxManifestBytes)
	if err != nil {
		return nil, failure.Invalidf("source %s: read docker-save manifest.json: %s", source, oneLineErr(err))
	}
	var mf tarball.Manifest
	if err := json.Unmarshal(raw, &mf); err != nil {
		return nil, failure.Invalidf("source %s: docker-save manifest.json cannot be parsed (%s): save the image again", source, oneLineErr(err))
	}
	if len(mf) != 1 {
		var tags []string
		for _, d := range mf {
			tags = append(tags, d.RepoTags...)
		}
		return nil, failure.Invalidf("source %s holds %d images (%s): save one image per tarball", source, len(mf), strings.Join(tags, ", "))
	}
	entry := mf[0]
	config, err := t.readAll(entry.Config, maxConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, failure.Invalidf("source %s is corrupt: config %s named in manifest.json is missing", source, entry.Config)
	}
	if err != nil {
		return nil, err
	}
	if d, ok := digestInName(entry.Config); ok {
		if err := checkBytes(source, "config", v1.Descriptor{Digest: d, Size: int64(len(config))}, config); err != nil {
			return nil, err
		}
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(config))
	if err != nil {
		return nil, failure.Invalidf("source %s: config %s cannot be parsed (%s): save the image again", source, entry.Config, oneLineErr(err))
	}
	p := cfg.Platform()
	if err := checkPlatform(source, "config "+entry.Config, p); err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(entry.Layers) {
		return nil, failure.Invalidf("source %s: manifest.json lists %d layers but the config records %d: save the image again", source, len(entry.Layers), len(cfg.RootFS.DiffIDs))
	}
	d := &dockerSave{t: t, source: source, entry: entry, config: config, diffIDs: cfg.RootFS.DiffIDs}
	compressed, err := d.layersCompressed()
	if err != nil {
		return nil, err
	}
	if compressed {
		c := &dockerSaveCompressed{dockerSave: d}
		if err := c.describe(); err != nil {
			return nil, err
		}
		return partial.CompressedToImage(c)
	}
	return partial.UncompressedToImage(&dockerSaveUncompressed{dockerSave: d})
}

// digestInName reads a digest from the file names docker save and
// go-containerregistry give blobs: blobs/sha256/<hex>, <hex>.json,
// sha256:<hex>, <hex>.tar.gz.
var hexName = regexp.MustCompile(`^(?:sha256:)?([a-f0-9]{64})(?:\.json|\.tar\.gz|\.tar)?$`)

func digestInName(name string) (v1.Hash, bool) {
	name = cleanTarName(name)
	if rest, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
		name = rest
	} else if strings.Contains(name, "/") {
		return v1.Hash{}, false
	}
	m := hexName.FindStringSubmatch(path.Base(name))
	if m == nil {
		return v1.Hash{}, false
	}
	return v1.Hash{Algorithm: "sha256", Hex: m[1]}, true
}

type dockerSave struct {
	t       *tarFiles
	source  string
	entry   tarball.Descriptor
	config  []byte
	diffIDs []v1.Hash
}

// dockerSaveUncompressed is a tarball of plain layer tars, as docker save
// writes them; go-containerregistry compresses them for the push.
type dockerSaveUncompressed struct{ *dockerSave }

// dockerSaveCompressed is a tarball of compressed layers, pushed as stored.
type dockerSaveCompressed struct {
	*dockerSave
	layers []v1.Descriptor // in manifest.json's order
}

func (d *dockerSave) RawConfigFile() ([]byte, error)      { return d.config, nil }
func (d *dockerSave) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }

// layersCompressed tells tarballs of compressed layers (as
// go-containerregistry writes them) from docker save's plain tars. A mix
// is refused: which digest would the pushed manifest record?
func (d *dockerSave) layersCompressed() (bool, error) {
	n := 0
	for _, name := range d.entry.Layers {
		r, err := d.t.open(name)
		if err != nil {
			return false, failure.Invalidf("source %s is corrupt: layer %s named in manifest.json is missing", d.source, name)
		}
		head := make([]byte, 4)
		k, _ := io.ReadFull(r, head)
		if isCompressed(head[:k]) {
			n++
		}
	}
	switch n {
	case 0:
		return false, nil
	case len(d.entry.Layers):
		return true, nil
	}
	return false, failure.Invalidf("source %s mixes compressed and uncompressed layers: save the image again", d.source)
}

func isCompressed(head []byte) bool {
	return bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd})
}

// LayerByDiffID reads an uncompressed layer, checked against its diff_id.
func (d *dockerSaveUncompressed) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	for i, id := range d.diffIDs {
		if id == h {
			return &dockerSaveLayer{d: d, name: d.entry.Layers[i], diffID: id}, nil
		}
	}
	return nil, fmt.Errorf("source %s: diff_id %s is not in the config", d.source, h)
}

type dockerSaveLayer struct {
	d      *dockerSaveUncompressed
	name   string
	diffID v1.Hash
}

func (l *dockerSaveLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *dockerSaveLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (l *dockerSaveLayer) Uncompressed() (io.ReadCloser, error) {
	r, err := l.d.t.open(l.name)
	if err != nil {
		return nil, failure.Invalidf("source %s is corrupt: layer %s named in manifest.json is missing", l.d.source, l.name)
	}
	return newVerifyingReader(io.NopCloser(r), l.d.source, "layer "+l.name+" with diff_id", v1.Descriptor{Digest: l.diffID, Size: r.Size()}, false, nil)
}

// describe hashes each stored compressed layer once: the
// manifest records what is stored, and a file name carrying a digest must
// match it.
func (d *dockerSaveCompressed) describe() error {
	for _, name := range d.entry.Layers {
		r, err := d.t.open(name)
		if err != nil {
			return err
		}
		h, n, err := v1.SHA256(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: types.DockerLayer, Size: n, Digest: h}
		if want, ok := digestInName(name); ok && want != h {
			return corrupt(d.source, "layer", v1.Descriptor{Digest: want, Size: n}, "hashes to "+h.String())
		}
		d.layers = append(d.layers, desc)
	}
	return nil
}

func (d *dockerSaveCompressed) RawManifest() ([]byte, error) {
	cfgHash, cfgSize, err := v1.SHA256(bytes.NewReader(d.config))
	if err != nil {
		return nil, err
	}
	mf := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: cfgSize, Digest: cfgHash},
		Layers:        d.layers,
	}
	return json.Marshal(mf)
}

// LayerByDigest reads a compressed layer; its digest was computed from the
// same bytes when the source was opened, so only the size is checked again.
func (d *dockerSaveCompressed) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for i, l := range d.layers {
		if l.Digest == h {
			return &dockerSaveBlob{d: d, name: d.entry.Layers[i], desc: l}, nil
		}
	}
	return nil, fmt.Errorf("source %s: blob %s is not part of the image", d.source, h)
}

type dockerSaveBlob struct {
	d    *dockerSaveCompressed
	name string
	desc v1.Descriptor
}

func (b *dockerSaveBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *dockerSaveBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *dockerSaveBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *dockerSaveBlob) Compressed() (io.ReadCloser, error) {
	r, err := b.d.t.open(b.name)
	if err != nil {
		return nil, err
	}
	return newVerifyingReader(io.NopCloser(r), b.d.source, "layer", b.desc, true, nil)
}
