package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Fuzz targets for every parser of untrusted input in this package: an OCI
// layout's index.json and manifests, OCI archives and docker-save tarballs,
// and references, repositories and tags. Seed corpora live in
// testdata/fuzz/<target>; docs/fuzzing.md lists the targets. Each target
// checks more than "no panic": whatever is accepted must be consistent.

// memStore is a content store in memory (a layout without the disk).
type memStore map[v1.Hash][]byte

func (m memStore) manifest(d v1.Descriptor, limit int64) ([]byte, error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}

func (m memStore) blob(d v1.Descriptor) (io.ReadCloser, error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m memStore) hashes() bool { return false }

func (m memStore) put(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	m[h] = b
	return h
}

// seedImage is a small valid image: config, one layer, manifest, index.
func seedImage() (store memStore, indexJSON, manifest []byte) {
	store = memStore{}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("0", 64) + `"]}}`)
	layer := []byte("layer bytes")
	cfg, lay := store.put(config), store.put(layer)
	manifest, _ = json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Config: v1.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cfg, Size: int64(len(config))},
		Layers: []v1.Descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: lay, Size: int64(len(layer))}}})
	m := store.put(manifest)
	indexJSON, _ = json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json",
		Manifests: []v1.Descriptor{{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: m, Size: int64(len(manifest)),
			Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}})
	return store, indexJSON, manifest
}

// checkGraph reads everything a source hands out; whatever it accepted must
// hash to the digests that name it.
func checkGraph(t *testing.T, root Artifact) {
	g, err := Walk(root)
	if err != nil {
		return
	}
	for _, m := range g.Manifests {
		if h, _, _ := v1.SHA256(bytes.NewReader(m.Raw)); h != m.Digest {
			t.Fatalf("manifest %s handed out with bytes hashing to %s", m.Digest, h)
		}
	}
	for _, b := range g.Blobs {
		rc, err := b.Layer.Compressed()
		if err != nil {
			continue
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			continue
		}
		if h, _, _ := v1.SHA256(bytes.NewReader(data)); h != b.Digest || int64(len(data)) != b.Size {
			t.Fatalf("blob %s (%d bytes) read completely as %s (%d bytes)", b.Digest, b.Size, h, len(data))
		}
	}
	for _, p := range g.Platforms {
		if strings.ContainsAny(p, "\n\r\x00\x1b") {
			t.Fatalf("platform %q with control characters accepted", p)
		}
	}
}

// FuzzLayoutIndex parses an OCI layout's index.json and a manifest stored
// in its blobs, then reads the image they describe.
func FuzzLayoutIndex(f *testing.F) {
	store, index, manifest := seedImage()
	f.Add(index, manifest)
	f.Add([]byte(`{"manifests":[]}`), manifest)
	f.Add([]byte(`{"manifests":[{"digest":"sha256:`+strings.Repeat("a", 64)+`","size":-1}]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, indexJSON, manifest []byte) {
		s := memStore{}
		for k, v := range store {
			s[k] = v
		}
		s.put(manifest)
		root, err := rootOfIndexJSON(&content{source: "fuzz", store: s}, indexJSON)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		checkGraph(t, root)
	})
}

// FuzzArchive opens a tar as a source: an OCI archive, a docker-save
// tarball, or neither.
func FuzzArchive(f *testing.F) {
	for _, seed := range archiveSeeds() {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, archive []byte) {
		path := filepath.Join(dir, "archive.tar")
		if err := os.WriteFile(path, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := (Sources{}).Open(context.Background(), path)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		defer src.Close()
		checkGraph(t, src.Root)
	})
}

// FuzzDockerSaveManifest varies the manifest.json of an otherwise valid
// docker-save tarball.
func FuzzDockerSaveManifest(f *testing.F) {
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["app:v1"],"Layers":["layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"../../etc/passwd","Layers":["layer.tar","layer.tar"]}]`))
	f.Add([]byte(`[]`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, manifest []byte) {
		path := filepath.Join(dir, "saved.tar")
		if err := os.WriteFile(path, dockerSaveTar(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := (Sources{}).Open(context.Background(), "docker-archive:"+path)
		if err != nil {
			return
		}
		defer src.Close()
		checkGraph(t, src.Root)
	})
}

// FuzzReference parses what users and registries give as references,
// repositories, tags and source specs.
func FuzzReference(f *testing.F) {
	for _, s := range []string{"ghcr.io/acme/app:v1", "alpine", "localhost:5000/a/b@sha256:" + strings.Repeat("a", 64),
		"123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0", "ghcr.io//app", "Ghcr.io/Acme/App:V1", "oci-archive:./x.tar",
		"docker://ghcr.io/acme/app:v1", "registry:app", "https://ghcr.io/app", "a:b:c", "[::1]:5000/app"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r Resolver
		if ref, err := r.Reference(s); err == nil {
			again, err := r.Reference(ref.String())
			if err != nil || again.String() != ref.String() {
				t.Fatalf("%q parsed as %q, which parses as %v (%v)", s, ref, again, err)
			}
			if err := validRepositoryPath(ref.Context()); err != nil {
				t.Fatalf("%q accepted with repository %q: %v", s, ref.Context().RepositoryStr(), err)
			}
		} else if strings.ContainsAny(err.Error(), "\n\r") {
			t.Fatalf("error spans lines: %q", err)
		}
		if repo, err := r.Repository(s); err == nil {
			again, err := r.Repository(repo.String())
			if err != nil || again.String() != repo.String() {
				t.Fatalf("repository %q parsed as %q, which parses as %v (%v)", s, repo, again, err)
			}
		}
		if ValidTag(s) == nil && (len(s) > 128 || strings.ContainsAny(s, "/:@ \n")) {
			t.Fatalf("tag %q accepted", s)
		}
		if spec, err := (Sources{}).Parse(s); err == nil && spec.Kind == SourceRegistry && spec.Ref == nil {
			t.Fatalf("%q parsed as a registry source without a reference", s)
		}
	})
}

// tarOf builds a tar archive of name → content, in order.
func tarOf(files ...[2]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(f[1]))
	}
	tw.Close()
	return buf.Bytes()
}

func archiveSeeds() [][]byte {
	store, index, _ := seedImage()
	files := [][2]string{{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, {"index.json", string(index)}}
	for h, b := range store {
		files = append(files, [2]string{"blobs/sha256/" + h.Hex, string(b)})
	}
	return [][]byte{
		tarOf(files...),
		dockerSaveTar([]byte(`[{"Config":"config.json","RepoTags":["app:v1"],"Layers":["layer.tar"]}]`)),
		tarOf([2]string{"index.json", "{}"}, [2]string{"manifest.json", "[]"}),
		[]byte("not a tar at all"),
	}
}

// dockerSaveTar is a docker-save tarball with the given manifest.json, a
// config and one plain layer whose diff_id matches.
func dockerSaveTar(manifest []byte) []byte {
	layer := string(tarOf([2]string{"etc/hostname", "fuzz\n"}))
	diffID, _, _ := v1.SHA256(strings.NewReader(layer))
	config := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diffID.String() + `"]}}`
	return tarOf([2]string{"manifest.json", string(manifest)}, [2]string{"config.json", config}, [2]string{"layer.tar", layer})
}

// The seeds the fuzz targets start from are valid sources, so mutations
// explore the paths past parsing.
func TestFuzzSeedsAreValidSources(t *testing.T) {
	store, index, _ := seedImage()
	root, err := rootOfIndexJSON(&content{source: "seed", store: store}, index)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Walk(root); err != nil {
		t.Fatal(err)
	}
	for i, archive := range archiveSeeds()[:2] {
		path := filepath.Join(t.TempDir(), "seed.tar")
		os.WriteFile(path, archive, 0o644)
		src, err := (Sources{}).Open(context.Background(), path)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		g, err := Walk(src.Root)
		src.Close()
		if err != nil || len(g.Blobs) != 2 {
			t.Fatalf("seed %d: %v (%d blobs)", i, err, len(g.Blobs))
		}
	}
}
