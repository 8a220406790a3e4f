package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/test/harness"
	"github.com/registry-actions/registry/test/mdcheck"
)

// TestHostileImageInjectsNothing pushes, scans, signs, verifies and cleans
// an image whose platform variant and annotations carry workflow commands,
// next to tags listed by the registry that carry them too, through the
// binary in action mode: no workflow command reaches the runner, the
// summary's tables keep their cells, and single-line outputs stay single.
func TestHostileImageInjectsNothing(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := t.TempDir()
	edgeWorkspace(t, ws)
	writeLayout(t, filepath.Join(ws, "hostile"), hostileIndex(t))
	// The registry's tag listing carries commands too (a registry, or a
	// proxy in front of it, is outside the workflow file).
	listing := &harness.FaultRule{
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/team/hostile/tags/list")
		},
		Status: http.StatusOK, Times: 1000,
		Body: `{"name":"team/hostile","tags":["v1","v2\n::error title=pwned::owned","##[warning]pwned","::add-mask::hunter2"]}`,
	}
	reg.Faults.Add(listing)

	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push,scan,sign,verify,clean", "source": "hostile", "images": reg.Host + "/team/hostile", "tags": "v1",
		"skip-db-update": "true", "formats": "sarif,json,sbom", "fail-on": "none",
		"key": "cosign.key", "key-password": edgeKeyPassword, "tlog-upload": "false",
		"public-key": "cosign.pub", "keep-tagged": "1",
	}})
	if bad := injectedCommands(res, edgeKeyPassword); len(bad) > 0 {
		t.Errorf("workflow commands injected from the image or registry: %q\n%s", bad, res.Log())
	}
	if res.Code == 2 {
		t.Errorf("exit 2 blames the caller for what the registry listed:\n%s", res.Log())
	}
	for _, st := range []string{"## Push", "## Scan", "## Sign", "## Verify"} {
		if !strings.Contains(res.Summary, st) {
			t.Errorf("summary lacks %s:\n%s", st, res.Summary)
		}
	}
	if !strings.Contains(res.Summary, "pwned") {
		t.Errorf("the hostile platform does not appear in the summary: the test would prove nothing\n%s", res.Summary)
	}
	for _, p := range mdcheck.Problems(res.Summary, "::") {
		t.Errorf("summary: %s", p)
	}
	for _, st := range inputs.Stages() {
		for _, o := range inputs.OutputsOf(st) {
			if o.Format == inputs.SingleLine && strings.Contains(res.Outputs[o.Name], "\n") {
				t.Errorf("single-line output %s holds a line break: %q", o.Name, res.Outputs[o.Name])
			}
		}
	}
	if !strings.Contains(res.Outputs["platforms"], hostileVariant) {
		t.Errorf("platforms output %q should name the variant as it is (it holds no control character)", res.Outputs["platforms"])
	}
	if reg.Faults.Hits(listing) == 0 {
		t.Error("clean never listed the tags: the hostile listing was not exercised")
	}
}
