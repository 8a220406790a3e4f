package scanner

import (
	"bufio"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"
)

// Decompressing layers is most of a scan's CPU time. klauspost/compress
// inflates about a fifth faster than compress/gzip, which
// go-containerregistry uses, so layers read from a registry or an OCI
// layout are decompressed with it. The compressed stream still comes from
// go-containerregistry, which verifies its digest.
type fastGunzipImage struct {
	v1.Image
}

// LayerByDiffID is how Trivy's image artifact reads layers.
func (i fastGunzipImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	// A pointer: Trivy inspects the layer's struct type by reflection.
	return &fastGunzipLayer{Layer: l}, nil
}

type fastGunzipLayer struct {
	v1.Layer
}

func (l *fastGunzipLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	if magic, err := br.Peek(2); err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		// zstd, or an uncompressed tar: go-containerregistry handles those.
		rc.Close()
		return l.Layer.Uncompressed()
	}
	zr, err := kgzip.NewReader(br)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return gunzipReadCloser{Reader: zr, zr: zr, compressed: rc}, nil
}

type gunzipReadCloser struct {
	io.Reader
	zr         *kgzip.Reader
	compressed io.Closer
}

func (g gunzipReadCloser) Close() error {
	zerr := g.zr.Close()
	if err := g.compressed.Close(); err != nil {
		return err
	}
	return zerr
}
