package scanner

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

// scanFixture scans the sample index with opts and returns the result.
func scanFixture(t *testing.T, opts Options) *Result {
	t.Helper()
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gate(t *testing.T, res *Result, failOn ...string) (bool, string) {
	t.Helper()
	failed, verdict, err := Gate(res, failOn)
	if err != nil {
		t.Fatal(err)
	}
	return failed, verdict
}

func TestGateMatrix(t *testing.T) {
	// Reported severities and fail-on are independent.
	all := scanFixture(t, offlineOptions(t))
	narrow := func() *Result {
		o := offlineOptions(t)
		o.Severities = []string{"critical,HIGH"} // case and commas as users write them
		return scanFixture(t, o)
	}()

	cases := []struct {
		name    string
		res     *Result
		failOn  []string
		failed  bool
		verdict string
	}{
		{"default fail-on", all, []string{"CRITICAL"}, true, "failed: 2 CRITICAL (fail-on: CRITICAL)"},
		{"list", all, []string{"HIGH", "CRITICAL"}, true, "failed: 2 CRITICAL, 4 HIGH (fail-on: HIGH or worse)"},
		{"HIGH alone still fails on CRITICAL", all, []string{"high"}, true, "failed: 2 CRITICAL, 4 HIGH (fail-on: HIGH or worse)"},
		{"a gap in the list is filled", all, []string{"CRITICAL,MEDIUM"}, true, "failed: 2 CRITICAL, 4 HIGH, 3 MEDIUM (fail-on: MEDIUM or worse)"},
		{"LOW does not imply UNKNOWN", all, []string{"LOW"}, true, "failed: 2 CRITICAL, 4 HIGH, 3 MEDIUM, 3 LOW (fail-on: LOW or worse)"},
		{"LOW and UNKNOWN", all, []string{"LOW", "UNKNOWN"}, true, "failed: 2 CRITICAL, 4 HIGH, 3 MEDIUM, 3 LOW, 1 UNKNOWN (fail-on: LOW or worse, UNKNOWN)"},
		{"none", all, []string{"none"}, false, "passed: gate disabled (fail-on: none)"},
		{"severity hides MEDIUM, gate still sees it", narrow, []string{"MEDIUM"}, true,
			"failed: 2 CRITICAL, 4 HIGH, 3 MEDIUM (fail-on: MEDIUM or worse; MEDIUM not listed because severity excludes it)"},
		{"severity narrows reports only", narrow, []string{"CRITICAL"}, true, "failed: 2 CRITICAL (fail-on: CRITICAL)"},
		{"UNKNOWN alone gates on unrated findings only", all, []string{"unknown"}, true, "failed: 1 UNKNOWN (fail-on: UNKNOWN)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			failed, verdict := gate(t, c.res, c.failOn...)
			if failed != c.failed || verdict != c.verdict {
				t.Errorf("Gate(%v) = %v %q, want %v %q", c.failOn, failed, verdict, c.failed, c.verdict)
			}
		})
	}

	// The narrow scan reports only CRITICAL and HIGH...
	if narrow.Counts != (SeverityCounts{Critical: 2, High: 4}) {
		t.Errorf("narrow counts = %+v", narrow.Counts)
	}
	for _, f := range narrow.Images[0].Findings {
		if f.Severity != "CRITICAL" && f.Severity != "HIGH" {
			t.Errorf("reported %s %s despite severity filter", f.Severity, f.ID)
		}
	}
	for _, p := range narrow.Images[0].Platforms {
		for _, f := range platformFindings(p) {
			if f.Severity != "CRITICAL" && f.Severity != "HIGH" {
				t.Errorf("Trivy report of %s keeps %s %s despite severity filter", p.Platform, f.Severity, f.ID)
			}
		}
	}
	// ...and keeps the rest for the gate.
	if n := len(narrow.Images[0].HiddenBySeverity); n != 7 {
		t.Errorf("hidden findings = %d, want 7 (3 MEDIUM, 3 LOW, 1 UNKNOWN)", n)
	}
	data, err := json.Marshal(narrow)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"hidden_by_severity":[`, `"severities":["CRITICAL","HIGH"]`, `"counts":{"critical":2,"high":4,"medium":0,"low":0,"unknown":0}`, `"platforms":["linux/amd64","linux/arm64/v8"]`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("result JSON lacks %s", want)
		}
	}

	if _, _, err := Gate(all, []string{"SEVERE"}); !errors.Is(err, ErrInvalidOptions) ||
		!strings.Contains(err.Error(), "CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN") || !strings.Contains(err.Error(), "none") {
		t.Errorf("unknown fail-on: err = %v", err)
	}
}

func TestGatePassesWithoutMatches(t *testing.T) {
	res := &Result{Severities: SeverityNames, Images: []ImageResult{{Findings: []Finding{{Kind: KindVulnerability, ID: "CVE-1", Severity: "LOW"}}}}}
	failed, verdict := gate(t, res, "CRITICAL", "HIGH")
	if failed || verdict != "passed: no CRITICAL or HIGH findings (fail-on: HIGH or worse)" {
		t.Errorf("got %v %q", failed, verdict)
	}
}

func TestIgnoreUnfixed(t *testing.T) {
	o := offlineOptions(t)
	o.IgnoreUnfixed = true
	res := scanFixture(t, o)
	want := filterExpected(func(f vulndb.ExpectedFinding) bool { return f.FixedVersion != "" })
	diffRows(t, "findings", rowsOf(res.Images[0].Findings), expectedRows(want, ""))
	if res.Fixable != res.Counts.Total() || res.Fixable != 10 {
		t.Errorf("fixable %d of %d, want 10 of 10", res.Fixable, res.Counts.Total())
	}
	// Unfixed findings are gone from the gate too: only the fixed Alpine zlib
	// is LOW, and of the two MEDIUM only the fixed ones remain.
	if failed, verdict := gate(t, res, "LOW"); !failed || verdict != "failed: 2 CRITICAL, 4 HIGH, 2 MEDIUM, 1 LOW (fail-on: LOW or worse)" {
		t.Errorf("gate = %v %q", failed, verdict)
	}
}

func TestIgnoreFileBothFormats(t *testing.T) {
	files := map[string]string{
		".trivyignore": "# accepted risks\nCVE-2099-0001\nCVE-2099-0101 exp:2099-01-01\n",
		".trivyignore.yaml": `vulnerabilities:
  - id: CVE-2099-0001
    statement: musl is rebuilt with the fix
  - id: CVE-2099-0101
    expired_at: 2099-01-01
`,
	}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			o := offlineOptions(t)
			o.IgnoreFile = writeFile(t, name, content)
			res := scanFixture(t, o)
			want := filterExpected(func(f vulndb.ExpectedFinding) bool {
				return f.VulnerabilityID != "CVE-2099-0001" && f.VulnerabilityID != "CVE-2099-0101"
			})
			diffRows(t, "findings", rowsOf(res.Images[0].Findings), expectedRows(want, ""))
			if failed, verdict := gate(t, res, "CRITICAL"); failed || verdict != "passed: no CRITICAL findings (fail-on: CRITICAL)" {
				t.Errorf("gate = %v %q", failed, verdict)
			}
		})
	}

	o := offlineOptions(t)
	o.IgnoreFile = filepath.Join(t.TempDir(), ".trivyignore")
	if _, err := Scan(context.Background(), []Target{PathTarget("unused")}, o); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "ignore-file") {
		t.Errorf("missing ignore file: err = %v", err)
	}
}

func TestOpenVEX(t *testing.T) {
	// The statement names the package by purl without qualifiers, as VEX
	// authors write it; it must still match the installed musl.
	doc := `{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.invalid/vex/demo-1",
  "author": "Demo maintainers",
  "timestamp": "2026-11-01T00:00:00Z",
  "version": 1,
  "statements": [
    {
      "vulnerability": {"name": "CVE-2099-0001"},
      "products": [{"@id": "pkg:apk/alpine/musl@1.2.5-r10"}],
      "status": "not_affected",
      "justification": "vulnerable_code_not_in_execute_path"
    },
    {
      "vulnerability": {"name": "CVE-2099-1001"},
      "products": [{"@id": "pkg:npm/lodash@4.17.20"}],
      "status": "affected"
    }
  ]
}`
	o := offlineOptions(t)
	o.VEX = []string{writeFile(t, "demo.openvex.json", doc)}
	res := scanFixture(t, o)
	want := filterExpected(func(f vulndb.ExpectedFinding) bool { return f.VulnerabilityID != "CVE-2099-0001" })
	diffRows(t, "findings", rowsOf(res.Images[0].Findings), expectedRows(want, ""))
	if failed, verdict := gate(t, res, "CRITICAL"); !failed || verdict != "failed: 1 CRITICAL (fail-on: CRITICAL)" {
		t.Errorf("gate = %v %q", failed, verdict)
	}
	// Trivy records why the finding went away.
	found := false
	for _, r := range res.Images[0].Platforms[0].Report.Results {
		for _, m := range r.ModifiedFindings {
			if strings.Contains(m.Source, "demo.openvex.json") && m.Status == "not_affected" {
				found = true
			}
		}
	}
	if !found {
		t.Error("no not_affected modified finding recorded from the VEX document")
	}
}

func TestParseFailOn(t *testing.T) {
	cases := []struct {
		in    []string
		label string
		fails []string
	}{
		{[]string{"CRITICAL"}, "CRITICAL", []string{"CRITICAL"}},
		{[]string{"high"}, "HIGH or worse", []string{"CRITICAL", "HIGH"}},
		{[]string{"CRITICAL", "HIGH"}, "HIGH or worse", []string{"CRITICAL", "HIGH"}},
		{[]string{"critical,low"}, "LOW or worse", []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}},
		{[]string{"MEDIUM", "UNKNOWN"}, "MEDIUM or worse, UNKNOWN", []string{"CRITICAL", "HIGH", "MEDIUM", "UNKNOWN"}},
		{[]string{"UNKNOWN"}, "UNKNOWN", []string{"UNKNOWN"}},
		{[]string{" None "}, "none", nil},
	}
	for _, c := range cases {
		th, err := ParseFailOn(c.in)
		if err != nil {
			t.Fatalf("ParseFailOn(%q): %v", c.in, err)
		}
		if th.String() != c.label || !slices.Equal(th.Severities(), c.fails) {
			t.Errorf("ParseFailOn(%q) = %q failing %v, want %q failing %v", c.in, th, th.Severities(), c.label, c.fails)
		}
	}
	for _, bad := range [][]string{{"SEVERE"}, {""}, {"none", "HIGH"}} {
		if _, err := ParseFailOn(bad); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("ParseFailOn(%q) = %v, want invalid options", bad, err)
		}
	}
}
