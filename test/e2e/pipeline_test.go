package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/outdir"
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

// TestAChainScansWhilePushUploads holds push's first manifest write at the
// registry until the scan has opened its layer cache in the workspace: a
// scan that waited for the push would never get there, and the hold would
// run out. The scan's log, Trivy's lines included, still reads as its own
// section after push's, and its reports are the chain's as usual.
func TestAChainScansWhilePushUploads(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := seededWorkspace(t)
	if err := vulndb.WriteSampleLayout(filepath.Join(ws, "image")); err != nil {
		t.Fatal(err)
	}
	layerCache := filepath.Join(ws, ".cache", "trivy", "fanal")
	var overlapped atomic.Bool
	var held sync.Once
	reg.Faults.Add(&harness.FaultRule{
		Match: func(r *http.Request) bool {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				held.Do(func() {
					for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
						if _, err := os.Stat(layerCache); err == nil {
							overlapped.Store(true)
							return
						}
					}
				})
			}
			return false
		},
		Times: 1 << 30,
	})
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push,scan", "source": "./image", "images": reg.Host + "/chain/app", "tags": "v1",
		"skip-db-update": "true", "fail-on": "none", "formats": "sarif,json",
	}})
	wantExit(t, "push,scan", res, 0)
	if !overlapped.Load() {
		t.Fatalf("the scan had not started when push wrote its first manifest:\n%s", res.Log())
	}
	log := res.Stdout
	scanAt := strings.Index(log, "== scan")
	if scanAt < 0 || strings.Index(log, "Detected OS") < scanAt || !strings.Contains(log, "scan finished in") || !strings.Contains(log, "while push uploaded it") {
		t.Fatalf("the scan's lines (Trivy's included) must follow push's, in the scan's section:\n%s", log)
	}
	if res.Outputs["critical"] != "2" || res.Outputs["sarif"] == "" {
		t.Fatalf("outputs %v", res.Outputs)
	}
}

// TestAFailedPushDiscardsTheScanBesideIt refuses push's manifests: the
// scan that started beside it writes no report, no output and no summary
// section, since the image it describes was never pushed.
func TestAFailedPushDiscardsTheScanBesideIt(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := seededWorkspace(t)
	if err := vulndb.WriteSampleLayout(filepath.Join(ws, "image")); err != nil {
		t.Fatal(err)
	}
	reg.Faults.Add(&harness.FaultRule{
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		},
		Status: http.StatusForbidden, Times: 1 << 30,
	})
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push,scan", "source": "./image", "images": reg.Host + "/chain/app", "tags": "v1",
		"skip-db-update": "true", "fail-on": "none", "formats": "sarif,json,sbom", "output-dir": "reports",
	}})
	wantExit(t, "push,scan", res, 1)
	for _, name := range []string{"result", "critical", "sarif", "json", "sbom"} {
		if _, ok := res.Outputs[name]; ok {
			t.Errorf("scan output %s written for an image that was not pushed", name)
		}
	}
	if strings.Contains(res.Stdout, "== scan") || strings.Contains(res.Summary, "## Scan") {
		t.Fatalf("the discarded scan reached the log or the summary:\n%s\n%s", res.Log(), res.Summary)
	}
	entries, _ := os.ReadDir(filepath.Join(ws, "reports"))
	for _, e := range entries {
		if e.Name() != outdir.MarkerName {
			t.Errorf("report %s written for an image that was not pushed", e.Name())
		}
	}
}
