package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/test/harness"
)

var outputHeader = regexp.MustCompile(`^([A-Za-z0-9_-]+)(<<|=)`)

// outputNames lists the names written to GITHUB_OUTPUT, in order, once per
// write.
func outputNames(t *testing.T, res harness.Result) []string {
	t.Helper()
	data, err := os.ReadFile(res.OutputFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		m := outputHeader.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		names = append(names, m[1])
		if m[2] == "<<" {
			delim := strings.TrimPrefix(lines[i], m[0])
			for i++; i < len(lines) && lines[i] != delim; i++ {
			}
		}
	}
	return names
}

// TestEveryStageWritesTheOutputsTheTableDeclares runs the whole chain
// through the binary as a runner would and compares what GITHUB_OUTPUT
// received with the outputs table: a stage that emits an output the table
// does not declare for it, or never emits one it declares (unless the table
// states a condition), fails here. Every value has its declared shape, and
// the run leaves nothing in its temp directory.
func TestEveryStageWritesTheOutputsTheTableDeclares(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})
	ws := t.TempDir()
	edgeWorkspace(t, ws)
	chain := inputs.Stages()
	var stages []string
	for _, st := range chain {
		stages = append(stages, string(st))
	}
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": strings.Join(stages, ","), "source": "image", "images": reg.Host + "/team/app", "tags": "v1",
		"skip-db-update": "true", "formats": "sarif,json,sbom", "fail-on": "none",
		"key": "cosign.key", "key-password": edgeKeyPassword, "tlog-upload": "false", "attest": "vuln,sbom",
		"public-key": "cosign.pub", "require-attestations": "vuln,sbom",
		"keep-tagged": "5",
	}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	if strings.Contains(res.Log(), "does not declare") {
		t.Fatalf("a stage emitted an output the table does not declare:\n%s", res.Log())
	}
	written := outputNames(t, res)
	for _, st := range chain {
		for _, o := range inputs.OutputsOf(st) {
			n := 0
			for _, w := range written {
				if w == o.Name {
					n++
				}
			}
			switch {
			case n == 0 && o.When == "":
				t.Errorf("%s never wrote its declared output %s", st, o.Name)
			case n > 1:
				t.Errorf("output %s was written %d times", o.Name, n)
			}
			v := res.Outputs[o.Name]
			switch o.Format {
			case inputs.SingleLine:
				if strings.Contains(v, "\n") {
					t.Errorf("%s output %s is single-line but is %q", st, o.Name, v)
				}
			case inputs.JSONDocument:
				if !json.Valid([]byte(v)) {
					t.Errorf("%s output %s is not JSON: %q", st, o.Name, v)
				}
			}
		}
	}
	for _, w := range written {
		declared := false
		for _, st := range chain {
			if _, ok := inputs.LookupOutput(st, w); ok {
				declared = true
			}
		}
		if !declared {
			t.Errorf("%s was written but no stage declares it", w)
		}
	}
	// Values that say what happened, not just that a name was written.
	if res.Outputs["verified"] != "true" || res.Outputs["result"] != "pass" || !strings.HasPrefix(res.Outputs["digest"], "sha256:") {
		t.Errorf("outputs: %v", res.Outputs)
	}
	if left := leftovers(t, res.TempDir); len(left) > 0 {
		t.Errorf("the chain left files in its temp directory: %v", left)
	}
	if bad := injectedCommands(res, edgeKeyPassword); len(bad) > 0 {
		t.Errorf("unexpected workflow commands: %q", bad)
	}
}

// TestOutputsDescribeOnlyWorkThatHappened is the regression test for a
// failed push writing digest, imageid, platforms and metadata (an
// `if: always()` step could sign a digest never pushed): a stage that fails
// writes only the outputs the table lets it write on failure, holding only
// what was done.
func TestOutputsDescribeOnlyWorkThatHappened(t *testing.T) {
	ws := t.TempDir()
	edgeWorkspace(t, ws)

	// A push that reaches no registry: no output at all.
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push", "source": "image", "images": "127.0.0.1:1/team/app", "tags": "v1", "timeout": "5s",
	}})
	if res.Code != 1 {
		t.Fatalf("push to a closed port: exit %d, want 1\n%s", res.Code, res.Log())
	}
	if names := outputNames(t, res); len(names) > 0 {
		t.Fatalf("a push that wrote nothing set outputs %v", names)
	}

	// Signing that stops before the index: the outputs name the platform
	// manifests signed (children are signed first), nothing else; no
	// verify commands.
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{"stage": "push", "source": "image", "images": reg.Host + "/team/app", "tags": "v1"}})
	if res.Code != 0 {
		t.Fatalf("push: exit %d\n%s", res.Code, res.Log())
	}
	index := reg.Host + "/team/app@" + res.Outputs["digest"]
	indexSig := sigTag(index, "sig")
	rule := &harness.FaultRule{
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/"+indexSig)
		},
		Status: http.StatusForbidden, Times: 1000,
	}
	reg.Faults.Add(rule)
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "sign", "images": index, "key": "cosign.key", "key-password": edgeKeyPassword, "tlog-upload": "false",
	}})
	if res.Code != 1 || reg.Faults.Hits(rule) == 0 {
		t.Fatalf("sign with the index's signature refused: exit %d, fault hits %d\n%s", res.Code, reg.Faults.Hits(rule), res.Log())
	}
	names := outputNames(t, res)
	slices.Sort(names)
	if !slices.Equal(names, []string{inputs.OutSignatures, inputs.OutSigned}) {
		t.Fatalf("a partly failed sign wrote outputs %v, want only signed and signatures", names)
	}
	signed := strings.Split(res.Outputs[inputs.OutSigned], "\n")
	if len(signed) != 3 || slices.Contains(signed, index) {
		t.Fatalf("signed output %q: want the three manifests of the index (two platforms, one attestation), not the index", signed)
	}
}
