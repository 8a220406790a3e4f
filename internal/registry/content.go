package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/report"
)

// Every source but a docker-save tarball is a content-addressed store: an
// OCI layout's blobs directory, an OCI archive's blobs entries, a
// registry's repository. One implementation of images and indexes sits on
// top of all of them and checks every byte it hands out against the
// descriptor that refers to it: manifests and configs when they are read
// (they are small and read whole), layers as they stream.

// Limits on what is read into memory; registries refuse larger manifests.
const (
	maxManifestBytes = 4 << 20
	maxConfigBytes   = 64 << 20
)

// blobStore reads a source's content by digest, unverified.
type blobStore interface {
	// manifest returns the bytes stored under d.Digest (at most limit+1).
	manifest(d v1.Descriptor, limit int64) ([]byte, error)
	// blob opens the bytes stored under d.Digest. A missing blob is
	// fs.ErrNotExist.
	blob(d v1.Descriptor) (io.ReadCloser, error)
	// hashes reports whether blob's reader checks the digest itself (a
	// registry read through go-containerregistry does), so only the size
	// is left to check.
	hashes() bool
}

// content is one opened source: its store and the name the user gave it.
type content struct {
	source string
	store  blobStore
}

// read fetches bytes held in memory (manifests, configs) and checks them.
func (c *content) read(what string, d v1.Descriptor, limit int64) ([]byte, error) {
	if err := validDescriptor(c.source, what, d); err != nil {
		return nil, err
	}
	if d.Size > limit {
		return nil, failure.Invalidf("source %s: %s %s is %d bytes, more than the %d a registry accepts", c.source, what, d.Digest, d.Size, limit)
	}
	var b []byte
	var err error
	if what == "config" {
		b, err = c.readBlob(d, limit)
	} else {
		b, err = c.store.manifest(d, limit)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, corrupt(c.source, what, d, "is missing")
	case errors.Is(err, errStoreMismatch):
		return nil, corrupt(c.source, what, d, "does not match the bytes the registry sent")
	case err != nil:
		return nil, err
	}
	if err := checkBytes(c.source, what, d, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (c *content) readBlob(d v1.Descriptor, limit int64) ([]byte, error) {
	rc, err := c.store.blob(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readLimited(rc, limit)
}

func validDescriptor(source, what string, d v1.Descriptor) error {
	if d.Digest.Algorithm == "" || d.Digest.Hex == "" {
		return failure.Invalidf("source %s: a %s descriptor has no digest: the image is malformed", source, what)
	}
	if d.Size < 0 {
		return failure.Invalidf("source %s: %s %s has a negative size: the image is malformed", source, what, d.Digest)
	}
	return nil
}

// open reads and checks the manifest d refers to.
func (c *content) open(d v1.Descriptor) (Artifact, error) {
	switch {
	case d.MediaType.IsIndex():
		raw, err := c.read("index", d, maxManifestBytes)
		if err != nil {
			return nil, err
		}
		return c.index(d, raw)
	case d.MediaType.IsImage():
		raw, err := c.read("manifest", d, maxManifestBytes)
		if err != nil {
			return nil, err
		}
		return c.image(d, raw)
	case d.MediaType == types.DockerManifestSchema1, d.MediaType == types.DockerManifestSchema1Signed:
		return nil, failure.Invalidf("source %s: manifest %s is a Docker schema 1 manifest, which registries no longer accept: rebuild the image", c.source, d.Digest)
	}
	return nil, failure.Invalidf("source %s: manifest %s has media type %q, neither an image nor an index", c.source, d.Digest, d.MediaType)
}

// checkMediaType refuses a manifest whose own mediaType field contradicts
// the descriptor that refers to it.
func (c *content) checkMediaType(d v1.Descriptor, raw []byte) error {
	var head struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return failure.Invalidf("source %s: manifest %s is not JSON (%s): the image is malformed", c.source, d.Digest, oneLineErr(err))
	}
	if head.MediaType != "" && d.MediaType != "" && head.MediaType != d.MediaType {
		return failure.Invalidf("source %s: manifest %s says it is %s but is referred to as %s: the image is malformed", c.source, d.Digest, head.MediaType, d.MediaType)
	}
	return nil
}

func (c *content) index(d v1.Descriptor, raw []byte) (*verifiedIndex, error) {
	if err := c.checkMediaType(d, raw); err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, failure.Invalidf("source %s: index %s cannot be parsed (%s): the image is malformed", c.source, d.Digest, oneLineErr(err))
	}
	for _, m := range im.Manifests {
		if err := validDescriptor(c.source, "manifest", m); err != nil {
			return nil, err
		}
		if err := checkPlatform(c.source, "manifest "+m.Digest.String(), m.Platform); err != nil {
			return nil, err
		}
	}
	return &verifiedIndex{c: c, desc: d, raw: raw, im: im}, nil
}

func (c *content) image(d v1.Descriptor, raw []byte) (v1.Image, error) {
	if err := c.checkMediaType(d, raw); err != nil {
		return nil, err
	}
	mf, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, failure.Invalidf("source %s: manifest %s cannot be parsed (%s): the image is malformed", c.source, d.Digest, oneLineErr(err))
	}
	for _, l := range mf.Layers {
		if err := validDescriptor(c.source, "layer", l); err != nil {
			return nil, err
		}
	}
	cfg, err := c.read("config", mf.Config, maxConfigBytes)
	if err != nil {
		return nil, err
	}
	if mf.Config.MediaType.IsConfig() {
		// A config's platform fields have the names a descriptor's have.
		var p v1.Platform
		if err := json.Unmarshal(cfg, &p); err != nil {
			return nil, failure.Invalidf("source %s: config %s is not a JSON object (%s): the image is malformed", c.source, mf.Config.Digest, oneLineErr(err))
		}
		if err := checkPlatform(c.source, "config "+mf.Config.Digest.String(), &p); err != nil {
			return nil, err
		}
	}
	return partial.CompressedToImage(&verifiedImage{c: c, desc: d, raw: raw, mf: mf, config: cfg})
}

// verifiedIndex is an index whose bytes matched their descriptor; its
// children are checked against the descriptors it lists.
type verifiedIndex struct {
	c    *content
	desc v1.Descriptor
	raw  []byte
	im   *v1.IndexManifest

	mu       sync.Mutex
	children map[v1.Hash]Artifact
}

func (i *verifiedIndex) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *verifiedIndex) Digest() (v1.Hash, error)            { return i.desc.Digest, nil }
func (i *verifiedIndex) Size() (int64, error)                { return i.desc.Size, nil }
func (i *verifiedIndex) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *verifiedIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(i.raw))
}

// Descriptor is how a parent refers to this index.
func (i *verifiedIndex) Descriptor() (*v1.Descriptor, error) {
	d := i.desc
	return &d, nil
}

func (i *verifiedIndex) Image(h v1.Hash) (v1.Image, error) {
	a, err := i.child(h)
	if err != nil {
		return nil, err
	}
	img, ok := a.(v1.Image)
	if !ok {
		return nil, fmt.Errorf("source %s: manifest %s is an index, not an image", i.c.source, h)
	}
	return img, nil
}

func (i *verifiedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	a, err := i.child(h)
	if err != nil {
		return nil, err
	}
	idx, ok := a.(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("source %s: manifest %s is an image, not an index", i.c.source, h)
	}
	return idx, nil
}

// child opens a manifest this index lists, once.
func (i *verifiedIndex) child(h v1.Hash) (Artifact, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if a, ok := i.children[h]; ok {
		return a, nil
	}
	for _, d := range i.im.Manifests {
		if d.Digest != h {
			continue
		}
		a, err := i.c.open(d)
		if err != nil {
			return nil, err
		}
		if i.children == nil {
			i.children = map[v1.Hash]Artifact{}
		}
		i.children[h] = a
		return a, nil
	}
	return nil, fmt.Errorf("source %s: manifest %s is not in index %s", i.c.source, h, i.desc.Digest)
}

// verifiedImage is an image manifest and config that matched their
// descriptors; its layers are checked as they are read.
type verifiedImage struct {
	c      *content
	desc   v1.Descriptor
	raw    []byte
	mf     *v1.Manifest
	config []byte
}

func (m *verifiedImage) MediaType() (types.MediaType, error) { return m.desc.MediaType, nil }
func (m *verifiedImage) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m *verifiedImage) RawConfigFile() ([]byte, error)      { return m.config, nil }

func (m *verifiedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if m.mf.Config.Digest == h {
		return &verifiedBlob{c: m.c, desc: m.mf.Config, what: "config"}, nil
	}
	for _, l := range m.mf.Layers {
		if l.Digest == h {
			return &verifiedBlob{c: m.c, desc: l, what: "layer"}, nil
		}
	}
	return nil, fmt.Errorf("source %s: blob %s is not part of image %s", m.c.source, h, m.desc.Digest)
}

// verifiedBlob streams a layer (or config) through a verifying reader.
// Once one read of it matched (the first target of a fan-out), later reads
// (the other registries) check only the size and, from a layout, hand out
// the file itself, which the kernel can send without this process touching
// the bytes: a blob is hashed once however many registries it goes to.
type verifiedBlob struct {
	c        *content
	desc     v1.Descriptor
	what     string
	verified atomic.Bool
}

func (b *verifiedBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *verifiedBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *verifiedBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

// Descriptor keeps the source's descriptor (annotations, URLs) intact.
func (b *verifiedBlob) Descriptor() (*v1.Descriptor, error) {
	d := b.desc
	return &d, nil
}

func (b *verifiedBlob) Compressed() (io.ReadCloser, error) {
	rc, err := b.c.store.blob(b.desc)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, corrupt(b.c.source, b.what, b.desc, "is missing")
	}
	if err != nil {
		return nil, err
	}
	if b.verified.Load() {
		if f, ok := rc.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Size() == b.desc.Size {
				return f, nil
			}
		}
	}
	return newVerifyingReader(rc, b.c.source, b.what, b.desc, b.c.store.hashes() || b.verified.Load(), func() { b.verified.Store(true) })
}

func oneLineErr(err error) string { return report.OneLine(err.Error()) }

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, limit+1))
}
