package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
	"github.com/registry-actions/registry/test/configfixture"
	"github.com/registry-actions/registry/test/sarifschema"
)

func TestConfigOnlyScanGatesAndReports(t *testing.T) {
	opts := options(t)
	if err := configfixture.Small(opts.WorkDir); err != nil {
		t.Fatal(err)
	}
	opts.Config.Paths = []string{"."}
	opts.FailOn = []string{"HIGH"}
	opts.Trivy.Severities = []string{"HIGH", "CRITICAL"}
	res, err := Run(context.Background(), opts)
	var gate *failure.GateError
	if !errors.As(err, &gate) || !strings.HasPrefix(gate.Verdict, "scan failed: ") || !strings.Contains(gate.Verdict, " HIGH (fail-on: HIGH or worse)") {
		t.Fatalf("err = %v", err)
	}
	out := outputs(res)
	if out["result"] != "fail" || out["high"] == "0" || out["medium"] != "0" || out["sarif-category"] != "registry-scan/config/" ||
		out["json"] != "registry-reports/config.trivy.json" || out["sbom"] != "" {
		t.Errorf("outputs %v", out)
	}
	data, err := os.ReadFile(filepath.Join(opts.WorkDir, out["sarif"]))
	if err != nil {
		t.Fatal(err)
	}
	if err := sarifschema.Validate(data); err != nil {
		t.Fatal(err)
	}
	var trivyJSON struct {
		Results []struct {
			Target            string
			Misconfigurations []struct{ ID, Severity string }
		}
	}
	data, _ = os.ReadFile(filepath.Join(opts.WorkDir, out["json"]))
	if err := json.Unmarshal(data, &trivyJSON); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range trivyJSON.Results {
		for _, m := range r.Misconfigurations {
			if m.Severity != "HIGH" && m.Severity != "CRITICAL" {
				t.Errorf("Trivy JSON lists %s %s: severity applies to it too", m.Severity, m.ID)
			}
			found = found || (r.Target == configfixture.Deployment && m.ID == "KSV-0017")
		}
	}
	if !found {
		t.Errorf("Trivy JSON lacks KSV-0017 in %s", configfixture.Deployment)
	}
	var md report.Markdown
	res.Summary(&md)
	s := md.String()
	for _, want := range []string{
		"❌ **failed: ", "(fail-on: HIGH or worse)**", "### Configuration", "checks embedded in this build",
		"| File | Type | CRITICAL | HIGH | MEDIUM | LOW | UNKNOWN |", "| `deploy/k8s/deployment.yaml` | kubernetes | 0 | 3 | 0 | 0 | 0 |",
		"**Failed checks**", "`deploy/k8s/deployment.yaml:17-20` | Privileged |", "`Dockerfile` | Image user should not be 'root' |",
		"2 files without reported findings.", "below the reported severities are not listed; fail-on still counts them.",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "1 image") || strings.Contains(s, "vulnerability DB") {
		t.Errorf("a configuration-only scan mentions images:\n%s", s)
	}
}

func TestConfigAndImageInOneStep(t *testing.T) {
	host := startRegistry(t)
	ref := pushIndex(t, host, "demo/app")
	opts := options(t, Target{Ref: ref.String()})
	if err := configfixture.Small(opts.WorkDir); err != nil {
		t.Fatal(err)
	}
	opts.Config.Paths = []string{"Dockerfile"}
	opts.FailOn = []string{"none"}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			AutomationDetails struct{ ID string }
			Results           []json.RawMessage
		}
	}
	data, _ := os.ReadFile(filepath.Join(opts.WorkDir, res.SARIF))
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 2 || doc.Runs[0].AutomationDetails.ID != "registry-scan/demo/app/" || doc.Runs[1].AutomationDetails.ID != "registry-scan/config/" ||
		len(doc.Runs[0].Results) != 13 || len(doc.Runs[1].Results) != 4 {
		t.Errorf("runs: %d", len(doc.Runs))
		for _, r := range doc.Runs {
			t.Errorf("  %s: %d results", r.AutomationDetails.ID, len(r.Results))
		}
	}
	// 13 vulnerabilities and the Dockerfile's 4 failed checks.
	if c := res.Scan.Counts; c.Total() != 13+4 || res.Category() != "registry-scan/" {
		t.Errorf("counts %+v, category %q", c, res.Category())
	}
}

func TestConfigPathOutsideTheCheckoutIsRefused(t *testing.T) {
	opts := options(t)
	opts.Config.Paths = []string{"../elsewhere"}
	_, err := Run(context.Background(), opts)
	if failure.Code(err) != failure.ExitInvalid || !strings.Contains(err.Error(), "outside the working directory") {
		t.Errorf("err = %v", err)
	}
	opts.Config.Paths = []string{"missing"}
	_, err = Run(context.Background(), opts)
	if failure.Code(err) != failure.ExitInvalid || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("err = %v", err)
	}
}

// A cluster runs more images than a SARIF file may have runs: they fold
// into one run per repository instead of failing the upload.
func TestSARIFFoldsImagesByRepositoryPastTheRunLimit(t *testing.T) {
	var images []scanner.ExternalImage
	for i := range 25 {
		repo := fmt.Sprintf("r.example/team/app%d", i%2)
		d := fmt.Sprintf("sha256:%02x%062x", i, i)
		images = append(images, scanner.ExternalImage{Reference: repo + "@" + d, Repository: repo, Digest: d,
			Platforms: []scanner.ExternalPlatform{{Platform: "linux/amd64", Digest: d, Findings: []scanner.Finding{{Kind: scanner.KindVulnerability, ID: "CVE-2026-0001", Severity: "HIGH", PkgName: "openssl", InstalledVersion: "1"}}}}})
	}
	sres, err := scanner.Assemble(images, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := options(t)
	res := newResult(ScannerTrivy, sres)
	if err := res.writeReports(context.Background(), opts, []string{FormatSARIF}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			AutomationDetails struct{ ID string }
			Results           []struct{ Properties struct{ Images []string } }
		}
	}
	data, _ := os.ReadFile(filepath.Join(opts.WorkDir, res.SARIF))
	if err := sarifschema.Validate(data); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &doc)
	if len(doc.Runs) != 2 || len(doc.Runs[0].Results) != 1 || len(doc.Runs[0].Results[0].Properties.Images) != 13 ||
		len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "one run per repository (2)") || res.Images[24].Category != "registry-scan/team/app0/" {
		t.Errorf("runs %+v, warnings %q", doc.Runs, res.Warnings)
	}
}
