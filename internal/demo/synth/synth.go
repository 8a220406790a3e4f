// Package synth builds synthetic container images — single-platform images
// and multi-arch indexes with chosen layer sizes and files — and writes them
// to a registry, an OCI layout directory, an OCI archive or a docker-save
// tarball. The demo command's sample image and the tests' fixtures come from
// here; content is derived from a seed, so the same spec always gives the
// same digests.
package synth

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer describes one layer's content: files with given bytes, plus
// optionally a file of incompressible random bytes.
type Layer struct {
	Files map[string][]byte
	// RandomBytes adds a file of this many seeded random bytes.
	RandomBytes int64
	// Seed varies the random content; layers with equal specs and seeds are
	// identical (and so shared between images, as base layers are).
	Seed uint64
}

// Image describes a single-platform image.
type Image struct {
	Platform v1.Platform
	Layers   []Layer
	// Created is the config's creation time (default: 2024-01-01 UTC).
	Created time.Time
	Labels  map[string]string
	// Annotations are set on the manifest.
	Annotations map[string]string
}

// NewImage builds the image.
func NewImage(spec Image) (v1.Image, error) {
	created := spec.Created
	if created.IsZero() {
		created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for i, ls := range spec.Layers {
		layer, err := NewLayer(ls)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		adds = append(adds, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: fmt.Sprintf("synth layer %d", i)}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: created}
	cfg.OS = spec.Platform.OS
	cfg.Architecture = spec.Platform.Architecture
	cfg.Variant = spec.Platform.Variant
	cfg.Config.Labels = spec.Labels
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	if len(spec.Annotations) > 0 {
		img = mutate.Annotations(img, spec.Annotations).(v1.Image)
	}
	return img, nil
}

// NewLayer builds one gzip-compressed tar layer.
func NewLayer(spec Layer) (v1.Layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	names := make([]string, 0, len(spec.Files))
	for n := range spec.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]bool{}
	for _, n := range names {
		// Parent directories first, as real image layers have them.
		parts := strings.Split(strings.TrimPrefix(n, "/"), "/")
		for i := 1; i < len(parts); i++ {
			dir := strings.Join(parts[:i], "/") + "/"
			if !dirs[dir] {
				dirs[dir] = true
				if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
					return nil, err
				}
			}
		}
		data := spec.Files[n]
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(n, "/"), Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	level := gzip.BestSpeed
	if spec.RandomBytes > 0 {
		// Random bytes do not compress; storing them keeps fixture
		// generation fast without changing what a registry sees.
		level = gzip.NoCompression
		hdr := &tar.Header{Name: fmt.Sprintf("data/random-%016x", spec.Seed), Mode: 0o644, Size: spec.RandomBytes, ModTime: epoch, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.CopyN(tw, RandomReader(spec.Seed), spec.RandomBytes); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := raw.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressionLevel(level), tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// RandomReader returns an endless, seeded stream of incompressible bytes.
func RandomReader(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "synth-layer-content-seed")
	return &chachaReader{r: rand.NewChaCha8(key)}
}

type chachaReader struct{ r *rand.ChaCha8 }

func (c *chachaReader) Read(p []byte) (int, error) { return c.r.Read(p) }

// Platform parses "os/arch[/variant]".
func Platform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("invalid platform %q: use os/arch[/variant], e.g. linux/amd64", s)
	}
	return *p, nil
}
