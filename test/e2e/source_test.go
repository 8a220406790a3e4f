package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/faultproxy"
	"github.com/registry-actions/registry/test/harness"
)

// rewriteBlob replaces a layout blob's bytes, keeping its file name.
func rewriteBlob(t *testing.T, layout string, h v1.Hash, edit func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(layout, "blobs", h.Algorithm, h.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The regression that opened the trust issue: an OCI layout whose root index
// bytes were altered (index.json untouched) was pushed under a new digest
// with exit 0. Now it is a corrupt source: exit 2, one line naming the
// source and the index, nothing written anywhere.
func TestPushRefusesAnAlteredRootIndex(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	idx := sampleIndex(t)
	root, _ := idx.Digest()
	ws := t.TempDir()
	writeLayout(t, filepath.Join(ws, "image"), idx)
	rewriteBlob(t, filepath.Join(ws, "image"), root, func(b []byte) []byte {
		var m map[string]any
		json.Unmarshal(b, &m)
		m["annotations"] = map[string]string{"injected": "yes"}
		out, _ := json.Marshal(m)
		return out
	})
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push", "source": "./image", "images": reg.Host + "/app", "tags": "v1",
	}})
	if res.Code != 2 {
		t.Fatalf("exit %d, want 2\n%s", res.Code, res.Log())
	}
	line := oneLineError(t, res)
	for _, want := range []string{"./image", "corrupt", root.String()} {
		if !strings.Contains(line, want) {
			t.Errorf("error %q lacks %q", line, want)
		}
	}
	if n := reg.Counter.Requests("PUT manifests") + reg.Counter.Requests("POST uploads"); n != 0 {
		t.Fatalf("%d writes reached the registry", n)
	}
	if len(res.Outputs) != 0 {
		t.Errorf("outputs written: %v", res.Outputs)
	}
	ref, _ := name.NewTag(reg.Host+"/app:v1", name.Insecure)
	if _, err := remote.Head(ref); err == nil {
		t.Fatal("tag written for a corrupt source")
	}
}

// A platform string from the image carrying a workflow command is refused
// at the source (exit 2), and never printed raw.
func TestPushRefusesControlCharactersInPlatforms(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	idx := sampleIndex(t)
	root, _ := idx.Digest()
	ws := t.TempDir()
	layout := filepath.Join(ws, "image")
	writeLayout(t, layout, idx)
	var edited []byte
	rewriteBlob(t, layout, root, func(b []byte) []byte {
		var m map[string]any
		json.Unmarshal(b, &m)
		m["manifests"].([]any)[0].(map[string]any)["platform"].(map[string]any)["variant"] = "v8\n::error::injected by the image"
		edited, _ = json.Marshal(m)
		return edited
	})
	// Re-point index.json at the edited index, as a hostile exporter would.
	h, size, _ := v1.SHA256(strings.NewReader(string(edited)))
	os.WriteFile(filepath.Join(layout, "blobs", "sha256", h.Hex), edited, 0o644)
	top := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json",
		Manifests: []v1.Descriptor{{MediaType: "application/vnd.oci.image.index.v1+json", Digest: h, Size: size}}}
	b, _ := json.Marshal(top)
	os.WriteFile(filepath.Join(layout, "index.json"), b, 0o644)

	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push", "source": "./image", "images": reg.Host + "/app", "tags": "v1",
	}})
	if res.Code != 2 {
		t.Fatalf("exit %d, want 2\n%s", res.Code, res.Log())
	}
	if !strings.Contains(oneLineError(t, res), "control characters") {
		t.Errorf("error does not say what is wrong:\n%s", res.Log())
	}
	for _, line := range strings.Split(res.Log(), "\n") {
		if strings.HasPrefix(line, "::error::injected") {
			t.Fatalf("the image's text started a workflow command:\n%s", res.Log())
		}
	}
}

// References are checked before any request: an upper-case repository says
// so, and an empty path component is refused.
func TestPushRefusesMalformedRepositoriesBeforeAnyRequest(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := t.TempDir()
	writeLayout(t, filepath.Join(ws, "image"), sampleIndex(t))
	for images, want := range map[string]string{
		reg.Host + "/Acme/App": "repository names must be lower-case",
		reg.Host + "//app":     "empty component",
		reg.Host + "/app/":     "empty component",
	} {
		res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
			"stage": "push", "source": "./image", "images": images, "tags": "v1",
		}})
		if res.Code != 2 || !strings.Contains(oneLineError(t, res), want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s", images, res.Code, want, res.Log())
		}
	}
	if n := reg.Counter.Requests("GET base") + reg.Counter.Requests("HEAD manifests"); n != 0 {
		t.Fatalf("%d requests reached the registry", n)
	}
}

// In a chain, scan reads the image push just wrote from the local source
// it was pushed from (same digests) instead of pulling its layers back, and
// reports it under the pushed repository@digest.
func TestPushScanChainReadsTheLocalSource(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	proxy := faultproxy.Start(t, reg.URL, nil)
	ws := t.TempDir()
	if err := vulndb.WriteSampleLayout(filepath.Join(ws, "image")); err != nil {
		t.Fatal(err)
	}
	if err := vulndb.SeedCache(filepath.Join(ws, ".cache", "trivy"), vulndb.MetadataAt(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	idx, _ := vulndb.Index()
	digest, _ := idx.Digest()
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push,scan", "source": "./image", "images": proxy.Host + "/chain/app", "tags": "v1",
		"skip-db-update": "true", "fail-on": "none", "formats": "json",
	}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	if res.Outputs["critical"] != "2" || res.Outputs["digest"] != digest.String() {
		t.Fatalf("outputs %v", res.Outputs)
	}
	if n := proxy.Count("GET blobs"); n != 0 {
		t.Fatalf("scan pulled %d blobs back from the registry push just wrote", n)
	}
	if image := proxy.Host + "/chain/app@" + digest.String(); !strings.Contains(res.Summary, "### "+image) {
		t.Errorf("the scan is not reported under the pushed image %s:\n%s", image, res.Summary)
	}
}
