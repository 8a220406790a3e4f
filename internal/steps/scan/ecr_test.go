package scan

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

const ecrHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// route sends every registry request to the test registry over plain HTTP,
// whatever host the reference names.
type route struct{ to string }

func (r route) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = "http", r.to
	return http.DefaultTransport.RoundTrip(req)
}

type fakeFindings struct {
	byDigest map[string]ecr.ScanFindings
	errs     map[string]error
	asked    []string
	wait     ecr.WaitOptions
}

func (f *fakeFindings) ScanFindings(_ context.Context, repo, digest string, opts ecr.WaitOptions) (ecr.ScanFindings, error) {
	f.asked = append(f.asked, repo+"@"+digest)
	f.wait = opts
	if err := f.errs[digest]; err != nil {
		return ecr.ScanFindings{}, err
	}
	return f.byDigest[digest], nil
}

func ecrOptions(t *testing.T, fake *fakeFindings) (Options, string) {
	t.Helper()
	host := startRegistry(t)
	pushIndex(t, host, "team/app")
	idx, _ := vulndb.Index()
	d, _ := idx.Digest()
	ref := ecrHost + "/team/app@" + d.String()
	opts := options(t, Target{Ref: ref})
	opts.Scanner = ScannerECR
	opts.Trivy.RemoteOptions = []remote.Option{remote.WithTransport(route{host})}
	opts.ECR = ECROptions{
		Client: func(_ context.Context, h registry.ECRHost) (Findings, error) {
			if h.AccountID != "123456789012" || h.Region != "us-east-1" {
				t.Errorf("client for %+v", h)
			}
			return fake, nil
		},
		Wait: ecr.WaitOptions{Timeout: time.Minute, StartGrace: 30 * time.Second},
	}
	return opts, ref
}

func platformDigests(t *testing.T) (amd, arm string) {
	a, _ := vulndb.AlpineImage()
	b, _ := vulndb.DebianImage()
	da, _ := a.Digest()
	db, _ := b.Digest()
	return da.String(), db.String()
}

func TestECRFindingsThroughTheSameModel(t *testing.T) {
	amd, arm := platformDigests(t)
	updated := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
	fake := &fakeFindings{byDigest: map[string]ecr.ScanFindings{
		amd: {Status: "COMPLETE", VulnerabilitySourceUpdatedAt: updated, Findings: []ecr.Finding{
			{ID: "CVE-2024-0001", Severity: "CRITICAL", PackageName: "openssl", PackageVersion: "3.0.1", URI: "https://nvd.example/CVE-2024-0001", Score: 9.8},
			{ID: "CVE-2024-0002", Severity: "INFORMATIONAL", PackageName: "zlib", PackageVersion: "1.2"},
			{ID: "CVE-2024-0009", Severity: "UNDEFINED", PackageName: "tar", PackageVersion: "1.34"},
		}},
		arm: {Status: "ACTIVE", Findings: []ecr.Finding{
			{ID: "CVE-2024-0001", Severity: "CRITICAL", PackageName: "openssl", PackageVersion: "3.0.1", FixedInVersion: "3.0.2", PackageManager: "OS", Status: "ACTIVE", Enhanced: true},
			{ID: "CVE-2024-0003", Severity: "HIGH", PackageName: "lodash", PackageVersion: "4.17.20", FixedInVersion: "4.17.21", PackageManager: "NPM", FilePath: "app/node_modules/lodash/package.json", Status: "ACTIVE", Enhanced: true},
			{ID: "CVE-2024-0004", Severity: "MEDIUM", PackageName: "bash", PackageVersion: "5.2", PackageManager: "OS", Status: "SUPPRESSED", Enhanced: true},
		}},
	}}
	opts, ref := ecrOptions(t, fake)
	opts.FailOn = []string{"HIGH"}
	res, err := Run(context.Background(), opts)
	var gate *failure.GateError
	if !errors.As(err, &gate) || res.Verdict != "failed: 1 CRITICAL, 1 HIGH (fail-on: HIGH or worse)" {
		t.Fatalf("err %v verdict %q", err, res.Verdict)
	}
	if len(fake.asked) != 2 || fake.asked[0] != "team/app@"+amd || fake.asked[1] != "team/app@"+arm || fake.wait.StartGrace != 30*time.Second {
		t.Errorf("asked %v with %+v: want each platform manifest by digest", fake.asked, fake.wait)
	}
	img := res.Scan.Images[0]
	if img.Reference != ref || len(img.Findings) != 4 {
		t.Fatalf("image %s with %d findings", img.Reference, len(img.Findings))
	}
	// One finding for both platforms, with the fix the enhanced scan knows.
	openssl := img.Findings[0]
	if openssl.ID != "CVE-2024-0001" || len(openssl.Platforms) != 2 || openssl.FixedVersion != "3.0.2" || openssl.PkgClass != "os-pkgs" {
		t.Errorf("openssl finding: %+v", openssl)
	}
	if lodash := img.Findings[1]; lodash.PkgClass != "lang-pkgs" || lodash.PkgType != "npm" || lodash.PkgPath == "" || lodash.Status != "fixed" {
		t.Errorf("lodash finding: %+v", lodash)
	}
	out := outputs(res)
	if out["critical"] != "1" || out["high"] != "1" || out["low"] != "1" || out["unknown"] != "1" || out["medium"] != "0" || out["fixable"] != "2" {
		t.Errorf("outputs %v", out)
	}
	if res.Scan.DB.Source != SourceECREnhanced || !res.Scan.DB.UpdatedAt.Equal(updated) || res.Images[0].ECR.Inactive != 1 || res.Images[0].ECR.Kind != "enhanced" {
		t.Errorf("DB %+v, ECR %+v", res.Scan.DB, res.Images[0].ECR)
	}
	sarif, err := os.ReadFile(filepath.Join(opts.WorkDir, out["sarif"]))
	if err != nil || !strings.Contains(string(sarif), `"name": "Amazon ECR"`) || strings.Contains(string(sarif), "Trivy") {
		t.Errorf("SARIF does not name ECR: %v", err)
	}
	if !strings.HasSuffix(out["json"], ".ecr-findings.json") || out["sbom"] != "" || len(res.Reports()) != 0 {
		t.Errorf("json %q sbom %q reports %v", out["json"], out["sbom"], res.Reports())
	}
	var written struct {
		Findings []struct {
			ID        string   `json:"id"`
			Platforms []string `json:"platforms"`
		} `json:"findings"`
	}
	data, _ := os.ReadFile(filepath.Join(opts.WorkDir, out["json"]))
	if err := json.Unmarshal(data, &written); err != nil || len(written.Findings) != 4 {
		t.Errorf("ECR findings file: %v %+v", err, written)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "sbom is not written with scanner: ecr") {
		t.Errorf("warnings %q", res.Warnings)
	}
	var md report.Markdown
	res.Summary(&md)
	for _, want := range []string{"Amazon Inspector (ECR enhanced scanning)", "vulnerability data updated 2026-10-31", "1 suppressed or closed findings left out", "| `linux/arm64/v8` | — | 1 | 1 | 0 | 0 | 0 | 2 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, md.String())
		}
	}
}

func TestECRFiltersAndErrors(t *testing.T) {
	amd, arm := platformDigests(t)
	basic := ecr.ScanFindings{Status: "COMPLETE", Findings: []ecr.Finding{
		{ID: "CVE-2024-0001", Severity: "CRITICAL", PackageName: "openssl", PackageVersion: "3.0.1"},
		{ID: "CVE-2024-0002", Severity: "HIGH", PackageName: "zlib", PackageVersion: "1.2"},
	}}
	fake := &fakeFindings{byDigest: map[string]ecr.ScanFindings{amd: basic, arm: basic}}
	opts, _ := ecrOptions(t, fake)
	opts.Trivy.IgnoreUnfixed = true
	opts.Trivy.IgnoreFile = filepath.Join(t.TempDir(), ".trivyignore")
	os.WriteFile(opts.Trivy.IgnoreFile, []byte("CVE-2024-0001\n"), 0o644)
	opts.Trivy.VEX = []string{"unused.openvex.json"}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("only HIGH remains, fail-on CRITICAL passes: %v", err)
	}
	if res.Verdict != "passed: no CRITICAL findings (fail-on: CRITICAL)" || outputs(res)["high"] != "1" || res.Scan.DB.Source != SourceECRBasic {
		t.Errorf("verdict %q outputs %v source %q", res.Verdict, outputs(res), res.Scan.DB.Source)
	}
	joined := strings.Join(res.Warnings, "\n")
	for _, want := range []string{"ignore-unfixed does not apply to ECR basic findings", "vex is not applied with scanner: ecr"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q: %q", want, res.Warnings)
		}
	}

	// ECR's own errors keep their one-line message; a missing image is exit 2.
	fake.errs = map[string]error{arm: &ecr.Error{Kind: ecr.ErrScanNotFound, Message: "ECR has no scan of team/app@" + arm + ": enable scan on push for the repository (ecr-scan-on-push: true) or start one with aws ecr start-image-scan"}}
	_, err = Run(context.Background(), opts)
	var invalid *failure.InvalidError
	if err == nil || errors.As(err, &invalid) || !strings.HasPrefix(err.Error(), "scan: linux/arm64/v8: ECR has no scan of team/app@") {
		t.Errorf("scan not found: %v", err)
	}
	fake.errs = map[string]error{amd: &ecr.Error{Kind: ecr.ErrImageNotFound, Message: "ECR image team/app@" + amd + " not found: check the repository and digest"}}
	if _, err = Run(context.Background(), opts); !errors.As(err, &invalid) {
		t.Errorf("image not found: %v", err)
	}

	opts.Targets = []Target{{Ref: "ghcr.io/acme/app:v1"}}
	if _, err = Run(context.Background(), opts); !errors.As(err, &invalid) || !strings.Contains(err.Error(), "ghcr.io/acme/app:v1 is not one: use scanner: trivy") {
		t.Errorf("non-ECR image: %v", err)
	}
}
