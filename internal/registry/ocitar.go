package registry

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// An OCI archive is read in place: one pass over the tar headers records
// where each blob lies, then blobs are read straight from those offsets. No
// extraction, so a multi-gigabyte archive costs no extra disk or copy time.

type tarEntry struct {
	offset, size int64
}

type ociTar struct {
	path  string
	f     *os.File
	blobs map[v1.Hash]tarEntry
}

func openOCIArchive(path string) (Artifact, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("source %s: %w", path, err)
	}
	t := &ociTar{path: path, f: f, blobs: map[v1.Hash]tarEntry{}}
	var indexJSON []byte
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("source %s: read tar: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if name == "index.json" {
			if indexJSON, err = io.ReadAll(tr); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("source %s: read index.json: %w", path, err)
			}
			continue
		}
		rest, ok := strings.CutPrefix(name, "blobs/")
		if !ok {
			continue
		}
		alg, hexDigest, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		// The position of the file's data is where the reader stands now.
		pos, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		// tar.Reader may have buffered nothing beyond the header: archive/tar
		// reads headers in 512-byte blocks straight from the file, so the
		// current offset is the start of the entry's data.
		t.blobs[v1.Hash{Algorithm: alg, Hex: hexDigest}] = tarEntry{offset: pos, size: hdr.Size}
	}
	if indexJSON == nil {
		f.Close()
		return nil, nil, fmt.Errorf("source %s has no index.json: it is not an OCI archive", path)
	}
	top := &tarIndex{t: t, raw: indexJSON, mediaType: types.OCIImageIndex}
	root, err := pickRoot(path, top)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return root, f.Close, nil
}

func (t *ociTar) open(h v1.Hash) (io.ReadCloser, int64, error) {
	e, ok := t.blobs[h]
	if !ok {
		return nil, 0, fmt.Errorf("source %s is missing blob %s", t.path, h)
	}
	return io.NopCloser(io.NewSectionReader(t.f, e.offset, e.size)), e.size, nil
}

func (t *ociTar) readManifest(h v1.Hash) ([]byte, error) {
	rc, _, err := t.open(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if h.Algorithm == "sha256" && hex.EncodeToString(sum[:]) != h.Hex {
		return nil, fmt.Errorf("source %s: manifest %s does not match its digest: the archive is corrupt", t.path, h)
	}
	return b, nil
}

type tarIndex struct {
	t         *ociTar
	raw       []byte
	mediaType types.MediaType
}

func (i *tarIndex) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *tarIndex) Digest() (v1.Hash, error)            { return partial.Digest(i) }
func (i *tarIndex) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *tarIndex) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *tarIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(i.raw))
}

func (i *tarIndex) Image(h v1.Hash) (v1.Image, error) {
	raw, err := i.t.readManifest(h)
	if err != nil {
		return nil, err
	}
	mt, err := i.childMediaType(h)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&tarImage{t: i.t, raw: raw, mediaType: mt})
}

func (i *tarIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	raw, err := i.t.readManifest(h)
	if err != nil {
		return nil, err
	}
	mt, err := i.childMediaType(h)
	if err != nil {
		return nil, err
	}
	return &tarIndex{t: i.t, raw: raw, mediaType: mt}, nil
}

func (i *tarIndex) childMediaType(h v1.Hash) (types.MediaType, error) {
	im, err := i.IndexManifest()
	if err != nil {
		return "", err
	}
	for _, d := range im.Manifests {
		if d.Digest == h {
			return d.MediaType, nil
		}
	}
	return "", fmt.Errorf("manifest %s is not in this index", h)
}

type tarImage struct {
	t         *ociTar
	raw       []byte
	mediaType types.MediaType
}

func (m *tarImage) MediaType() (types.MediaType, error) { return m.mediaType, nil }
func (m *tarImage) RawManifest() ([]byte, error)        { return m.raw, nil }

func (m *tarImage) RawConfigFile() ([]byte, error) {
	mf, err := v1.ParseManifest(bytes.NewReader(m.raw))
	if err != nil {
		return nil, err
	}
	rc, _, err := m.t.open(mf.Config.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (m *tarImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	mf, err := v1.ParseManifest(bytes.NewReader(m.raw))
	if err != nil {
		return nil, err
	}
	if mf.Config.Digest == h {
		return &tarBlob{t: m.t, desc: mf.Config}, nil
	}
	for _, l := range mf.Layers {
		if l.Digest == h {
			return &tarBlob{t: m.t, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not part of this image", h)
}

type tarBlob struct {
	t    *ociTar
	desc v1.Descriptor
}

func (b *tarBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *tarBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *tarBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *tarBlob) Compressed() (io.ReadCloser, error) {
	rc, _, err := b.t.open(b.desc.Digest)
	return rc, err
}
