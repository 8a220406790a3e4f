package app

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
)

func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), IO{
		Args: args, Getenv: func(k string) string { return env[k] },
		Stdout: &stdout, Stderr: &stderr, Dir: t.TempDir(),
	})
	return code, stdout.String(), stderr.String()
}

// TestCLIFlagsComeFromTheInputsTable fails when a stage's flags and the
// table disagree.
func TestCLIFlagsComeFromTheInputsTable(t *testing.T) {
	exit := 0
	root := newRootCommand(context.Background(), IO{}, &cliOptions{red: &report.Redactor{}}, &exit)
	names := func(fs *pflag.FlagSet) []string {
		var n []string
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" {
				n = append(n, f.Name)
			}
		})
		sort.Strings(n)
		return n
	}
	for _, st := range inputs.Stages() {
		cmd, _, err := root.Find([]string{string(st)})
		if err != nil {
			t.Fatalf("no command for stage %s", st)
		}
		var want []string
		for _, in := range inputs.ForStages(st) {
			if in.Name != "stage" {
				want = append(want, in.Name)
			}
		}
		sort.Strings(want)
		if got := names(cmd.LocalFlags()); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s flags\n got %v\nwant %v", st, got, want)
		}
	}
	cmd, _, _ := root.Find([]string{"run"})
	if got := len(names(cmd.LocalFlags())); got != len(inputs.All())-1 {
		t.Errorf("run has %d flags, want every input but stage (%d)", got, len(inputs.All())-1)
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "registry ") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out, _ = run(t, nil, "push", "--help")
	if code != 0 || !strings.Contains(out, "--images") || !strings.Contains(out, "--concurrency int") {
		t.Fatalf("push --help: %d\n%s", code, out)
	}
}

func TestChainStopsAtTheFirstFailure(t *testing.T) {
	code, out, stderr := run(t, nil, "run", "push,clean", "--json", "--images", "127.0.0.1:1/app")
	if code != failure.ExitInvalid {
		t.Fatalf("exit %d, want %d\n%s", code, failure.ExitInvalid, stderr)
	}
	var doc struct {
		OK     bool `json:"ok"`
		Stages []struct {
			Stage string `json:"stage"`
			Error string `json:"error"`
		} `json:"stages"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if doc.OK || len(doc.Stages) != 1 || doc.Stages[0].Stage != "push" || !strings.Contains(doc.Error, "set source") {
		t.Fatalf("chain result %+v", doc)
	}
}

func TestActionModeReadsInputsAndReportsOneLineErrors(t *testing.T) {
	env := map[string]string{"GITHUB_ACTIONS": "true", "INPUT_STAGE": "scan,deploy"}
	code, out, _ := run(t, env)
	if code != failure.ExitInvalid || !strings.Contains(out, "::error::unknown stage \"deploy\": valid stages are push, scan, sign, verify, clean") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	env = map[string]string{"GITHUB_ACTIONS": "true", "INPUT_STAGE": "push", "INPUT_TIMEOUT": "soon", "INPUT_REGISTRY-PASSWORD": "p4ss-word-123"}
	code, out, _ = run(t, env)
	if code != failure.ExitInvalid || !strings.Contains(out, `::error::input "timeout": "soon" is not a duration`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "::add-mask::p4ss-word-123") {
		t.Fatalf("secret input not masked:\n%s", out)
	}
}
