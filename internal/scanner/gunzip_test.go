package scanner

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

func TestFastGunzipReadsWhatGoContainerRegistryReads(t *testing.T) {
	img, err := vulndb.AlpineImage()
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	plain := static.NewLayer([]byte("not compressed at all"), types.OCIUncompressedLayer)
	for _, l := range append(layers, plain) {
		d, _ := l.DiffID()
		fast, err := fastGunzipImage{Image: img}.LayerByDiffID(d)
		if l == plain {
			fast = &fastGunzipLayer{Layer: plain}
		} else if err != nil {
			t.Fatal(err)
		}
		want := readAll(t, l.Uncompressed)
		got := readAll(t, fast.Uncompressed)
		if !bytes.Equal(got, want) || len(want) == 0 {
			t.Errorf("layer %s: %d bytes, want %d", d, len(got), len(want))
		}
	}
}

func readAll(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}
