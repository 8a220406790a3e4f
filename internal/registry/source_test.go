package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/test/harness"
)

// blobPath is where a layout stores a blob.
func blobPath(dir string, h v1.Hash) string {
	return filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
}

// digests names the parts of fixture's index a corruption can hit.
type digests struct {
	root, child, config, layer v1.Hash
	layerSize                  int64
}

func partsOf(t *testing.T, idx v1.ImageIndex) digests {
	t.Helper()
	var d digests
	d.root, _ = idx.Digest()
	im, _ := idx.IndexManifest()
	d.child = im.Manifests[0].Digest
	img, _ := idx.Image(d.child)
	mf, _ := img.Manifest()
	d.config = mf.Config.Digest
	last := mf.Layers[len(mf.Layers)-1]
	d.layer, d.layerSize = last.Digest, last.Size
	return d
}

func editFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func flipMiddle(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }

// assertCorrupt checks the error a corrupt source must give: the caller's
// input (exit 2), one line, naming the source and the blob, with no URL.
func assertCorrupt(t *testing.T, err error, source string, blob v1.Hash, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatal("a corrupt source was accepted")
	case !errors.Is(err, registry.ErrCorruptBlob):
		t.Fatalf("want a corrupt-source error, got %v", err)
	case failure.Code(err) != failure.ExitInvalid:
		t.Fatalf("exit code %d, want %d: %v", failure.Code(err), failure.ExitInvalid, err)
	case strings.ContainsAny(err.Error(), "\n\r") || !strings.Contains(err.Error(), source) || !strings.Contains(err.Error(), blob.String()) || !strings.Contains(err.Error(), want):
		t.Fatalf("want one line naming %s, %s and %q, got %q", source, blob, want, err)
	case strings.Contains(err.Error(), "http"):
		t.Fatalf("the message carries a URL: %q", err)
	}
}

// The regression first: the root manifest's bytes were trusted when
// index.json was left alone, so an altered index was pushed under a new
// digest with success.
func TestAlteredRootIndexIsRefused(t *testing.T) {
	idx := fixture(t, 8<<10)
	dir := layoutOf(t, idx)
	parts := partsOf(t, idx)
	editFile(t, blobPath(dir, parts.root), func(b []byte) []byte {
		return []byte(strings.Replace(string(b), `"schemaVersion": 2`, `"schemaVersion":2`, 1) + "\n")
	})
	_, err := open(context.Background(), registry.New(registry.Options{}), dir)
	assertCorrupt(t, err, dir, parts.root, "bytes")
}

// Every way a source's bytes can disagree with what refers to them is
// caught before anything is written: the error names the blob and the
// source, the exit code is 2, and the registry gets no manifest and no tag.
func TestCorruptSourcesWriteNothing(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	c := clientFor(reg)
	idx := fixture(t, 96<<10)
	parts := partsOf(t, idx)
	cases := []struct {
		name    string
		blob    v1.Hash
		corrupt func(t *testing.T, dir string)
		want    string
		// opening fails (manifests and configs are read then); otherwise
		// the upload does (layers are checked as they stream).
		atOpen bool
	}{
		{"layer with a flipped byte", parts.layer, func(t *testing.T, dir string) { editFile(t, blobPath(dir, parts.layer), flipMiddle) }, "hashes to", false},
		{"truncated layer", parts.layer, func(t *testing.T, dir string) {
			editFile(t, blobPath(dir, parts.layer), func(b []byte) []byte { return b[:len(b)-100] })
		}, "truncated", false},
		{"layer with bytes appended", parts.layer, func(t *testing.T, dir string) {
			editFile(t, blobPath(dir, parts.layer), func(b []byte) []byte { return append(b, "trailing"...) })
		}, "longer than", false},
		{"missing layer", parts.layer, func(t *testing.T, dir string) { os.Remove(blobPath(dir, parts.layer)) }, "missing", false},
		{"config with a flipped byte", parts.config, func(t *testing.T, dir string) { editFile(t, blobPath(dir, parts.config), flipMiddle) }, "hashes to", true},
		{"platform manifest with a flipped byte", parts.child, func(t *testing.T, dir string) { editFile(t, blobPath(dir, parts.child), flipMiddle) }, "hashes to", true},
		{"index.json records the wrong size", parts.root, func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "index.json"), func(b []byte) []byte {
				var top v1.IndexManifest
				json.Unmarshal(b, &top)
				top.Manifests[0].Size++
				out, _ := json.Marshal(top)
				return out
			})
		}, "bytes", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := layoutOf(t, idx)
			tc.corrupt(t, dir)
			reg.Counter.Reset()
			src, err := open(context.Background(), c, dir)
			var g *registry.Graph
			if err == nil {
				g, err = registry.Walk(src.Root)
			}
			if tc.atOpen {
				assertCorrupt(t, err, dir, tc.blob, tc.want)
				if n := reg.Counter.Requests("GET base") + reg.Counter.Requests("HEAD blobs"); n != 0 {
					t.Fatalf("%d requests reached the registry before the source was found corrupt", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			target := registry.Target{Repo: repo(t, c, reg.Host+"/corrupt/app"+string(rune('a'+i))), Tags: []string{"v1"}}
			_, err = c.Publish(context.Background(), registry.PublishOptions{Graph: g, Targets: []registry.Target{target}})
			assertCorrupt(t, err, dir, tc.blob, tc.want)
			if n := reg.Counter.Requests("PUT manifests"); n != 0 {
				t.Fatalf("%d manifests written for a corrupt source", n)
			}
			ref, _ := c.Reference(target.Repo.String() + ":v1")
			if _, err := remote.Head(ref, c.Remote(context.Background())...); err == nil {
				t.Fatal("tag written for a corrupt source")
			}
		})
	}
}

func TestCorruptOCIArchiveLayerIsCaught(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	c := registry.New(registry.Options{})
	idx := fixture(t, 64<<10)
	parts := partsOf(t, idx)
	dir := layoutOf(t, idx)
	editFile(t, blobPath(dir, parts.layer), flipMiddle)
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := synth.TarDir(dir, archive, ""); err != nil {
		t.Fatal(err)
	}
	src, err := open(context.Background(), c, "oci-archive:"+archive)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = publish(context.Background(), t, c, src, registry.PublishOptions{Targets: []registry.Target{{Repo: repo(t, c, reg.Host+"/app"), Tags: []string{"v1"}}}})
	assertCorrupt(t, err, "oci-archive:"+archive, parts.layer, "hashes to")
}

func TestCorruptDockerSaveLayerIsCaught(t *testing.T) {
	c := registry.New(registry.Options{})
	img, err := synth.NewImage(synth.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Layers: []synth.Layer{{RandomBytes: 32 << 10, Seed: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	// docker save's own format: plain layer tars, checked against the
	// config's diff_ids.
	dir := t.TempDir()
	layers, _ := img.Layers()
	diffID, _ := layers[0].DiffID()
	rc, _ := layers[0].Uncompressed()
	plain, _ := io.ReadAll(rc)
	rc.Close()
	plain[len(plain)/2] ^= 0xff
	cfg, _ := img.RawConfigFile()
	cfgName, _ := img.ConfigName()
	os.MkdirAll(filepath.Join(dir, "layer1"), 0o755)
	os.WriteFile(filepath.Join(dir, "layer1", "layer.tar"), plain, 0o644)
	os.WriteFile(filepath.Join(dir, cfgName.Hex+".json"), cfg, 0o644)
	mf, _ := json.Marshal([]map[string]any{{"Config": cfgName.Hex + ".json", "RepoTags": []string{"app:v1"}, "Layers": []string{"layer1/layer.tar"}}})
	os.WriteFile(filepath.Join(dir, "manifest.json"), mf, 0o644)
	archive := filepath.Join(t.TempDir(), "saved.tar")
	if err := synth.TarDir(dir, archive, ""); err != nil {
		t.Fatal(err)
	}
	src, err := open(context.Background(), c, archive)
	if err == nil {
		defer src.Close()
		if src.Kind != registry.SourceDockerArchive {
			t.Fatalf("kind %s", src.Kind)
		}
		_, err = registry.Walk(src.Root)
	}
	assertCorrupt(t, err, archive, diffID, "hashes to")
}

// A platform string is printed by push, scan and sign: control characters
// in it (a newline starting "::error::") make the source invalid input.
func TestControlCharactersInPlatformsAreRefused(t *testing.T) {
	c := registry.New(registry.Options{})
	for _, field := range []string{"variant", "os.version"} {
		t.Run(field, func(t *testing.T) {
			idx := fixture(t, 1<<10)
			dir := layoutOf(t, idx)
			parts := partsOf(t, idx)
			// Edit the index entry (variant) and re-point index.json.
			editFile(t, blobPath(dir, parts.root), func(b []byte) []byte {
				var im map[string]any
				json.Unmarshal(b, &im)
				m := im["manifests"].([]any)[0].(map[string]any)
				m["platform"].(map[string]any)[field] = "v8\n::error::injected"
				out, _ := json.Marshal(im)
				return out
			})
			newRoot, size := rehash(t, blobPath(dir, parts.root))
			editFile(t, filepath.Join(dir, "index.json"), func(b []byte) []byte {
				var top map[string]any
				json.Unmarshal(b, &top)
				e := top["manifests"].([]any)[0].(map[string]any)
				e["digest"], e["size"] = newRoot.String(), size
				out, _ := json.Marshal(top)
				return out
			})
			_, err := open(context.Background(), c, dir)
			if err == nil || failure.Code(err) != failure.ExitInvalid || !strings.Contains(err.Error(), "control characters") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("want a one-line invalid-input error about control characters, got %v", err)
			}
		})
	}
}

// rehash moves a blob to the name its (edited) content hashes to.
func rehash(t *testing.T, path string) (v1.Hash, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, n, _ := v1.SHA256(strings.NewReader(string(b)))
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), h.Hex), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return h, n
}
