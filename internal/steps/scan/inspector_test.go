package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/inspector"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/sarifschema"
)

func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func inspectorFinding(digest, id, severity, pkg, fixed string, pushed time.Time, tags ...string) fakeecr.InspectorFinding {
	return fakeecr.InspectorFinding{Repository: "team/app", Digest: digest, Tags: tags, Architecture: "amd64", PushedAt: pushed,
		EnhancedFinding: fakeecr.EnhancedFinding{VulnerabilityID: id, Severity: severity, Title: id + " in " + pkg, Score: 7.1,
			SourceURL: "https://nvd.nist.gov/vuln/detail/" + id,
			Packages:  []fakeecr.VulnerablePackage{{Name: pkg, Version: "1.0", FixedInVersion: fixed, PackageManager: "OS"}}}}
}

func inspectorOptions(t *testing.T, srv *fakeecr.Server, images ...string) Options {
	t.Helper()
	var targets []Target
	for _, i := range images {
		targets = append(targets, Target{Ref: i})
	}
	opts := options(t, targets...)
	opts.Scanner = ScannerInspector
	opts.Inspector.Client = func(ctx context.Context, h registry.ECRHost) (InspectorFindings, error) {
		return inspector.New(ctx, inspector.Options{Region: h.Region, Endpoint: srv.URL(), MaxAttempts: 2,
			Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	}
	return opts
}

func TestInspectorFindingsOfAWholeRepository(t *testing.T) {
	srv := fakeecr.Start(t)
	old, recent := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// 30 images, more than a SARIF file may have runs, 3 findings each.
	for i := range 30 {
		pushed := old.Add(time.Duration(i) * time.Hour)
		tags := []string{fmt.Sprintf("v%d", i)}
		if i == 29 {
			pushed, tags = recent, []string{"v29", "latest"}
		}
		srv.AddInspectorFindings(
			inspectorFinding(digestN(i), "CVE-2026-0001", "CRITICAL", "openssl", "3.0.9", pushed, tags...),
			inspectorFinding(digestN(i), "CVE-2026-0002", "MEDIUM", "zlib", "", pushed, tags...),
			inspectorFinding(digestN(i), "CVE-2026-0003", "INFORMATIONAL", "bash", "", pushed, tags...),
		)
	}
	srv.AddInspectorFindings(fakeecr.InspectorFinding{Repository: "other", Digest: digestN(99), EnhancedFinding: fakeecr.EnhancedFinding{VulnerabilityID: "CVE-2026-0009", Severity: "CRITICAL"}})

	opts := inspectorOptions(t, srv, ecrHost+"/team/app")
	opts.Trivy.Severities = []string{"CRITICAL", "HIGH"}
	opts.FailOn = []string{"MEDIUM"}
	res, err := Run(context.Background(), opts)
	var gate *failure.GateError
	if !errors.As(err, &gate) || gate.Verdict != "scan failed: 1 CRITICAL, 1 MEDIUM (fail-on: MEDIUM or worse; MEDIUM not listed because severity excludes it)" {
		t.Fatalf("err = %v", err)
	}
	// Asked for CRITICAL, HIGH (reported) and MEDIUM (failing), not LOW.
	var req struct {
		FilterCriteria map[string][]struct{ Value string } `json:"filterCriteria"`
	}
	json.Unmarshal(srv.Requests(fakeecr.OpListFindings)[0], &req)
	var sevs []string
	for _, f := range req.FilterCriteria["severity"] {
		sevs = append(sevs, f.Value)
	}
	if !slices.Equal(sevs, []string{"CRITICAL", "HIGH", "MEDIUM"}) || req.FilterCriteria["ecrImageRepositoryName"][0].Value != "team/app" ||
		req.FilterCriteria["awsAccountId"][0].Value != "123456789012" {
		t.Errorf("filter %+v", req.FilterCriteria)
	}
	if n := srv.Calls(fakeecr.OpListFindings); n != 1 {
		t.Errorf("%d ListFindings calls, want 1 page of 60 findings", n)
	}
	if len(res.Scan.Images) != 30 {
		t.Fatalf("%d images", len(res.Scan.Images))
	}
	first := res.Scan.Images[0]
	if first.Digest != digestN(29) || !slices.Equal(first.Tags, []string{"v29", "latest"}) || first.Reference != ecrHost+"/team/app@"+digestN(29) ||
		first.Platforms[0].Platform != "linux/amd64" || len(first.Findings) != 1 || first.Findings[0].FixedVersion != "3.0.9" {
		t.Errorf("newest image first, with its tags: %+v", first)
	}
	out := outputs(res)
	if out["critical"] != "1" || out["medium"] != "0" || out["sarif-category"] != "registry-scan/team/app/" {
		t.Errorf("outputs %v", out)
	}
	// One SARIF run for the repository, each result naming its images.
	data, err := os.ReadFile(filepath.Join(opts.WorkDir, res.SARIF))
	if err != nil {
		t.Fatal(err)
	}
	if err := sarifschema.Validate(data); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Tool              struct{ Driver struct{ Name string } }
			AutomationDetails struct{ ID string }
			Results           []struct {
				Message    struct{ Text string }
				Properties struct{ Images []string }
			}
		}
	}
	json.Unmarshal(data, &doc)
	if len(doc.Runs) != 1 || doc.Runs[0].Tool.Driver.Name != "Amazon Inspector" || doc.Runs[0].AutomationDetails.ID != "registry-scan/team/app/" ||
		len(doc.Runs[0].Results) != 1 || len(doc.Runs[0].Results[0].Properties.Images) != 30 ||
		!strings.Contains(doc.Runs[0].Results[0].Message.Text, "(v29, latest)") {
		t.Errorf("SARIF %s", data[:min(len(data), 2000)])
	}
	var md report.Markdown
	res.Summary(&md)
	s := md.String()
	for _, want := range []string{
		SourceInspector, "| `" + ecrHost + "/team/app` | every image | CRITICAL, HIGH, MEDIUM | 30 | 60 |",
		"Tags: `v29`, `latest`",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if !strings.HasSuffix(strings.Split(out["json"], "\n")[0], ".inspector-findings.json") {
		t.Errorf("json %q", out["json"])
	}
}

func TestInspectorNarrowsByTagAndDigest(t *testing.T) {
	srv := fakeecr.Start(t)
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	srv.AddInspectorFindings(
		inspectorFinding(digestN(1), "CVE-2026-0001", "HIGH", "openssl", "3.0.9", day, "v1"),
		inspectorFinding(digestN(2), "CVE-2026-0002", "HIGH", "zlib", "", day, "v2"),
	)
	opts := inspectorOptions(t, srv, ecrHost+"/team/app:v2", ecrHost+"/team/app@"+digestN(1))
	opts.FailOn = []string{"none"}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scan.Images) != 2 || res.Scan.Images[0].Digest != digestN(2) || res.Inspector[0].Tags[0] != "v2" || res.Inspector[1].Digests[0] != digestN(1) {
		t.Errorf("images %+v, queries %+v", res.Scan.Images, res.Inspector)
	}

	// No findings: a pass, and an empty run so code scanning closes old alerts.
	empty := inspectorOptions(t, srv, ecrHost+"/team/empty")
	empty.Formats = []string{FormatSARIF, FormatJSON}
	res, err = Run(context.Background(), empty)
	if err != nil || len(res.Scan.Images) != 0 {
		t.Fatalf("empty repository: %v", err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %q", res.Warnings)
	}
	// Right after a push, no findings is no verdict: say so.
	pushed := inspectorOptions(t, srv, ecrHost+"/team/empty@"+digestN(7))
	pushed.Inspector.JustPushed = true
	pushed.Formats = nil
	if res, err := Run(context.Background(), pushed); err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "minutes after a push") {
		t.Errorf("just pushed: %v %+v", err, res)
	}
	data, _ := os.ReadFile(filepath.Join(empty.WorkDir, res.SARIF))
	if !strings.Contains(string(data), `"id": "registry-scan/team/empty/"`) {
		t.Errorf("no run for the repository without findings:\n%s", data)
	}

	bad := inspectorOptions(t, srv, "ghcr.io/acme/app")
	if _, err := Run(context.Background(), bad); failure.Code(err) != failure.ExitInvalid || !strings.Contains(err.Error(), "is not one") {
		t.Errorf("non-ECR repository: %v", err)
	}
	srv.FailNext(fakeecr.OpListFindings, 1, fakeecr.Fault{Status: 403, Code: "AccessDeniedException", Message: "not authorized"})
	if _, err := Run(context.Background(), inspectorOptions(t, srv, ecrHost+"/team/app")); failure.Code(err) != 1 || !strings.Contains(err.Error(), "grant inspector2:ListFindings") {
		t.Errorf("denied: %v", err)
	}
}
