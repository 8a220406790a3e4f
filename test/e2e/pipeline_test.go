package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/harness"
)

// TestAChainScansThePushedSourceFromDisk runs push,scan from an OCI layout
// to two repositories: the scan reads the layers from the layout push read,
// pulling no blob back from the registry, reports the pushed digest and
// finds what a scan of the registry copy finds. A scan on its own of the
// same digest does pull the blobs (so the count can tell).
func TestAChainScansThePushedSourceFromDisk(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := seededWorkspace(t)
	if err := vulndb.WriteSampleLayout(filepath.Join(ws, "image")); err != nil {
		t.Fatal(err)
	}
	idx, _ := vulndb.Index()
	digest, _ := idx.Digest()
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push,scan", "source": "./image", "images": reg.Host + "/chain/app\n" + reg.Host + "/mirror/app", "tags": "v1",
		"skip-db-update": "true", "fail-on": "none", "formats": "json",
	}})
	wantExit(t, "push,scan", res, 0)
	if got := reg.Counter.Requests("GET blobs"); got != 0 {
		t.Fatalf("the chain's scan pulled %d blobs back from the registry", got)
	}
	image := reg.Host + "/chain/app@" + digest.String()
	if !strings.Contains(res.Stdout, image+": reading the layers from the source push read") || !strings.Contains(res.Summary, "### "+image) {
		t.Fatalf("the scan did not report the pushed digest read from disk:\n%s", res.Log())
	}
	if res.Outputs["critical"] != "2" || len(strings.Split(res.Outputs["json"], "\n")) != 2 {
		t.Fatalf("outputs %v", res.Outputs)
	}

	reg.Counter.Reset()
	alone := harness.Run(t, harness.Step{Dir: seededWorkspace(t), Inputs: scanInputs(image, "fail-on", "none")})
	wantExit(t, "scan", alone, 0)
	if reg.Counter.Requests("GET blobs") == 0 || alone.Outputs["critical"] != res.Outputs["critical"] || alone.Outputs["high"] != res.Outputs["high"] {
		t.Fatalf("a scan of the registry copy: %d blob GETs, outputs %v (chain %v)", reg.Counter.Requests("GET blobs"), alone.Outputs, res.Outputs)
	}
}
