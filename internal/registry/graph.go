package registry

import (
	"bytes"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Graph is the content of an image or index: every manifest (children
// before parents, the root last) and every blob, deduplicated.
type Graph struct {
	Manifests []Manifest
	Blobs     []Blob
	// Platforms of the image manifests, in index order (attestation
	// manifests excluded).
	Platforms []string
	// ConfigDigest is the config of the first platform image (build-push-
	// action's imageid).
	ConfigDigest string
	// Size is manifests plus unique blobs, in bytes.
	Size int64
}

// Root is the manifest a tag points at.
func (g *Graph) Root() Manifest { return g.Manifests[len(g.Manifests)-1] }

// Manifest is one manifest with its exact bytes.
type Manifest struct {
	Digest    v1.Hash
	MediaType types.MediaType
	Raw       []byte
}

// Blob is one config or layer blob.
type Blob struct {
	Digest    v1.Hash
	Size      int64
	MediaType types.MediaType
	Layer     v1.Layer
}

// Walk collects an artifact's manifests and blobs. Reading a source's
// manifests and configs through Sources checks them; Walk checks again that
// each child manifest matches the descriptor its parent records, so a graph
// built from any artifact is consistent.
func Walk(root Artifact) (*Graph, error) {
	w := &walker{g: &Graph{}, seenBlob: map[v1.Hash]bool{}, seenManifest: map[v1.Hash]bool{}}
	if err := w.walk(root, nil); err != nil {
		return nil, err
	}
	return w.g, nil
}

type walker struct {
	g            *Graph
	seenBlob     map[v1.Hash]bool
	seenManifest map[v1.Hash]bool
}

func (w *walker) walk(a Artifact, expect *v1.Descriptor) error {
	raw, err := a.RawManifest()
	if err != nil {
		return err
	}
	mt, err := a.MediaType()
	if err != nil {
		return err
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if expect != nil && (expect.Digest != d || expect.Size != int64(len(raw))) {
		return fmt.Errorf("manifest %s (%d bytes) does not match its descriptor (content is %d bytes and hashes to %s): the source is corrupt", expect.Digest, expect.Size, len(raw), d)
	}
	if w.seenManifest[d] {
		return nil
	}
	w.seenManifest[d] = true
	switch x := a.(type) {
	case v1.ImageIndex:
		err = w.index(x)
	case v1.Image:
		err = w.image(x, expect == nil)
	default:
		err = fmt.Errorf("unsupported artifact %T", a)
	}
	if err != nil {
		return err
	}
	w.g.Manifests = append(w.g.Manifests, Manifest{Digest: d, MediaType: mt, Raw: raw})
	w.g.Size += int64(len(raw))
	return nil
}

func (w *walker) index(idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, desc := range im.Manifests {
		child, err := childOf(idx, desc)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if err := w.walk(child, &desc); err != nil {
			return err
		}
		if desc.MediaType.IsImage() && desc.Platform != nil && desc.Platform.OS != "unknown" {
			w.g.Platforms = append(w.g.Platforms, desc.Platform.String())
		}
	}
	return nil
}

func (w *walker) image(img v1.Image, isRoot bool) error {
	mf, err := img.Manifest()
	if err != nil {
		return err
	}
	if w.g.ConfigDigest == "" && !isAttestation(mf) {
		w.g.ConfigDigest = mf.Config.Digest.String()
	}
	if isRoot {
		if cfg, err := img.ConfigFile(); err == nil && cfg.OS != "" {
			w.g.Platforms = append(w.g.Platforms, (&v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}).String())
		}
	}
	cl, err := partial.ConfigLayer(img)
	if err != nil {
		return err
	}
	blobs := append([]v1.Descriptor{mf.Config}, mf.Layers...)
	for i, bd := range blobs {
		if w.seenBlob[bd.Digest] || !bd.MediaType.IsDistributable() {
			continue
		}
		w.seenBlob[bd.Digest] = true
		var l v1.Layer = cl
		if i > 0 {
			if l, err = img.LayerByDigest(bd.Digest); err != nil {
				return err
			}
		}
		w.g.Blobs = append(w.g.Blobs, Blob{Digest: bd.Digest, Size: bd.Size, MediaType: bd.MediaType, Layer: l})
		w.g.Size += bd.Size
	}
	return nil
}

func childOf(idx v1.ImageIndex, d v1.Descriptor) (Artifact, error) {
	switch {
	case d.MediaType.IsIndex():
		return idx.ImageIndex(d.Digest)
	case d.MediaType.IsImage():
		return idx.Image(d.Digest)
	}
	return nil, fmt.Errorf("unsupported manifest media type %q", d.MediaType)
}

func isAttestation(mf *v1.Manifest) bool {
	for _, l := range mf.Layers {
		if l.MediaType == "application/vnd.in-toto+json" {
			return true
		}
	}
	return false
}
