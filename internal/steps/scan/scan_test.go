package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
)

var fixtureTime = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u.Host
}

// pushIndex pushes the sample two-platform index to host/repo.
func pushIndex(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	idx, err := vulndb.Index()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	ref, err := name.NewDigest(fmt.Sprintf("%s/%s@%s", host, repo, d), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return ref
}

// options scan with the fixture DB seeded in the cache, offline.
func options(t *testing.T, targets ...Target) Options {
	t.Helper()
	cache := t.TempDir()
	if err := vulndb.SeedCache(cache, vulndb.MetadataAt(fixtureTime)); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	return Options{
		Targets:   targets,
		Trivy:     scanner.Options{CacheDir: cache, SkipDBUpdate: true, LayerCache: "memory"},
		Formats:   []string{"sarif", "json", "sbom"},
		OutputDir: filepath.Join(work, "registry-reports"),
		WorkDir:   work,
		Now:       func() time.Time { return fixtureTime.Add(50 * time.Hour) },
	}
}

func outputs(r report.Result) map[string]string {
	m := map[string]string{}
	for _, o := range r.Outputs() {
		m[o.Name] = o.Value
	}
	return m
}

func TestScanWritesEveryFormatAndGates(t *testing.T) {
	host := startRegistry(t)
	ref := pushIndex(t, host, "demo/app")
	opts := options(t, Target{Ref: ref.String()})
	res, err := Run(context.Background(), opts)
	var gate *failure.GateError
	if !errors.As(err, &gate) || gate.Verdict != "scan failed: 2 CRITICAL (fail-on: CRITICAL)" {
		t.Fatalf("err = %v, want the default gate failing on 2 CRITICAL", err)
	}
	if res == nil || !res.Failed {
		t.Fatal("a failed gate must still return the result")
	}
	out := outputs(res)
	want := map[string]string{
		"result": "fail", "critical": "2", "high": "4", "medium": "3", "low": "3", "unknown": "1", "fixable": "10",
		"sarif": "registry-reports/scan.sarif", "sarif-category": "registry-scan/demo/app/",
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("output %s = %q, want %q", k, out[k], v)
		}
	}
	jsons, sboms := strings.Split(out["json"], "\n"), strings.Split(out["sbom"], "\n")
	if len(jsons) != 2 || len(sboms) != 2 {
		t.Fatalf("json %q sbom %q: want one file per platform", out["json"], out["sbom"])
	}
	if !strings.HasPrefix(jsons[0], "registry-reports/demo-app_linux-amd64_") || !strings.HasSuffix(jsons[0], ".trivy.json") ||
		!strings.HasPrefix(sboms[1], "registry-reports/demo-app_linux-arm64-v8_") || !strings.HasSuffix(sboms[1], ".cdx.json") {
		t.Errorf("file names: %q %q", jsons, sboms)
	}
	for _, f := range append(append([]string{out["sarif"]}, jsons...), sboms...) {
		data, err := os.ReadFile(filepath.Join(opts.WorkDir, f))
		if err != nil || !json.Valid(data) {
			t.Errorf("%s: %v (valid JSON %v)", f, err, json.Valid(data))
		}
	}
	var rep struct {
		ArtifactName string
		Metadata     struct{ RepoDigests []string }
	}
	data, _ := os.ReadFile(filepath.Join(opts.WorkDir, jsons[1]))
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	arm := res.Scan.Images[0].Platforms[1]
	if rep.ArtifactName != ref.String() || !slices.Contains(rep.Metadata.RepoDigests, host+"/demo/app@"+arm.Digest) {
		t.Errorf("arm64 JSON names %s %v", rep.ArtifactName, rep.Metadata.RepoDigests)
	}

	// Every platform's reports, under the index, for sign's attestations.
	reps := res.Reports()
	if len(reps) != 2 || reps[0].Image != ref.String() || reps[1].Platform != vulndb.PlatformDebian || reps[1].TrivyJSON != jsons[1] || reps[1].SBOM != sboms[1] {
		t.Errorf("reports = %+v", reps)
	}

	var md report.Markdown
	res.Summary(&md)
	s := md.String()
	for _, want := range []string{
		"## Scan", "❌ **failed: 2 CRITICAL (fail-on: CRITICAL)**", "Trivy ", "vulnerability DB updated 2026-11-01 06:00 UTC (2d old)",
		"| Platform | OS | CRITICAL | HIGH | MEDIUM | LOW | UNKNOWN | Fixable |",
		"| `linux/amd64` | alpine 3.23.2 | 1 | 3 | 2 | 2 | 0 | 7 |",
		"| **All platforms** |  | 2 | 4 | 3 | 3 | 1 | 10 |",
		"**Top findings**", "[CVE-2099-0001](https://avd.aquasec.com/nvd/cve-2099-0001) | `musl` | `1.2.5-r10` | `1.2.5-r11` | linux/amd64 |",
		"<details><summary>All 13 findings</summary>", "_will not fix_", "(category `registry-scan/demo/app/`)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	var text strings.Builder
	res.Text(&text)
	for _, want := range []string{"scan failed: 2 CRITICAL (fail-on: CRITICAL)", "IMAGE", "2          2         4     3       3    1        10", "CRITICAL  CVE-2099-0001", "reports: registry-reports/scan.sarif"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

func TestSeverityAndFailOnAreIndependent(t *testing.T) {
	host := startRegistry(t)
	ref := pushIndex(t, host, "demo/app")
	cases := []struct {
		name       string
		severity   []string
		failOn     []string
		unfixed    bool
		verdict    string
		failed     bool
		high, crit string
	}{
		{"report critical only, fail on MEDIUM or worse", []string{"CRITICAL"}, []string{"MEDIUM"}, false,
			"failed: 2 CRITICAL, 4 HIGH, 3 MEDIUM (fail-on: MEDIUM or worse; HIGH,MEDIUM not listed because severity excludes it)", true, "0", "2"},
		{"report everything, gate disabled", nil, []string{"none"}, false, "passed: gate disabled (fail-on: none)", false, "4", "2"},
		{"ignore-unfixed leaves the fixed LOW", nil, []string{"LOW"}, true, "failed: 2 CRITICAL, 4 HIGH, 2 MEDIUM, 1 LOW (fail-on: LOW or worse)", true, "4", "2"},
		{"UNKNOWN only", []string{"UNKNOWN"}, []string{"UNKNOWN"}, false, "failed: 1 UNKNOWN (fail-on: UNKNOWN)", true, "0", "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := options(t, Target{Ref: ref.String()})
			opts.Trivy.Severities, opts.FailOn, opts.Trivy.IgnoreUnfixed = c.severity, c.failOn, c.unfixed
			opts.Formats = []string{"sarif"}
			res, err := Run(context.Background(), opts)
			if (err != nil) != c.failed || res == nil || res.Verdict != c.verdict {
				t.Fatalf("verdict %q err %v, want %q", res.Verdict, err, c.verdict)
			}
			out := outputs(res)
			if out["high"] != c.high || out["critical"] != c.crit || out["json"] != "" || out["sbom"] != "" {
				t.Errorf("outputs %v", out)
			}
		})
	}
}

func TestBadInputsAreExitTwo(t *testing.T) {
	host := startRegistry(t)
	ref := pushIndex(t, host, "demo/app")
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"severity", func(o *Options) { o.Trivy.Severities = []string{"HIGH,SEVERE"} }, `scan: severity: unknown severity "SEVERE": valid severities are CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN`},
		{"fail-on", func(o *Options) { o.FailOn = []string{"urgent"} }, `scan: fail-on: unknown severity "URGENT": valid severities are CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, or none`},
		{"format", func(o *Options) { o.Formats = []string{"sarif", "html"} }, `scan: formats: "html" is not a report format: use sarif, json, sbom`},
		{"scanner", func(o *Options) { o.Scanner = "grype" }, `scan: scanner "grype" is not supported: use trivy, ecr or inspector`},
		{"no images", func(o *Options) { o.Targets = nil }, `scan: input "images" is required`},
		{"platform", func(o *Options) { o.Trivy.Platforms = []string{"linux/s390x"} }, "platform linux/s390x is not in"},
		{"missing image", func(o *Options) { o.Targets = []Target{{Ref: host + "/demo/none:v1"}} }, "image " + host + "/demo/none:v1 not found"},
		{"ecr with a path", func(o *Options) { o.Scanner, o.Targets = ScannerECR, []Target{{Path: "image.tar"}} }, "scanner: ecr reads findings of images in ECR, not local files"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := options(t, Target{Ref: ref.String()})
			opts.ECR.Client = func(context.Context, registry.ECRHost) (Findings, error) { return nil, errors.New("unused") }
			c.edit(&opts)
			res, err := Run(context.Background(), opts)
			var invalid *failure.InvalidError
			if res != nil || !errors.As(err, &invalid) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v (result %v), want a one-line invalid-input error containing %q", err, res != nil, c.want)
			}
			if _, statErr := os.Stat(opts.OutputDir); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("reports written despite the error")
			}
		})
	}
}

func TestCouldNotRunIsExitOne(t *testing.T) {
	host := startRegistry(t)
	ref := pushIndex(t, host, "demo/app")
	opts := options(t, Target{Ref: ref.String()})
	opts.Trivy.CacheDir = t.TempDir() // no DB and skip-db-update
	res, err := Run(context.Background(), opts)
	var invalid *failure.InvalidError
	var gate *failure.GateError
	if res != nil || err == nil || errors.As(err, &invalid) || errors.As(err, &gate) || !errors.Is(err, scanner.ErrNoDB) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "scan: no vulnerability DB in ") || !strings.Contains(err.Error(), "run once without skip-db-update") {
		t.Errorf("message: %s", err)
	}
}

func TestSameDigestInTwoRepositoriesIsScannedOnce(t *testing.T) {
	host := startRegistry(t)
	a := pushIndex(t, host, "team/app")
	b := pushIndex(t, host, "mirror/app")
	opts := options(t, Target{Ref: a.String()}, Target{Ref: b.String()})
	opts.FailOn = []string{"none"}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Images[0].Reference != a.String() || len(res.JSON) != 2 {
		t.Fatalf("images %+v json %v", res.Images, res.JSON)
	}
}

func TestCategoryOutput(t *testing.T) {
	r := &Result{Images: []Image{{Category: "container/team/app/"}, {Category: "container/team/tools/"}}}
	if got := r.Category(); got != "container/team/" {
		t.Errorf("shared prefix %q", got)
	}
	r.Images[1].Category = "other/x/"
	if got := r.Category(); got != "" {
		t.Errorf("no shared prefix: %q", got)
	}
}

func TestSummaryStaysBounded(t *testing.T) {
	var images []scanner.ExternalImage
	for i := range 20 {
		var fs []scanner.Finding
		for j := range 3000 {
			fs = append(fs, scanner.Finding{Kind: scanner.KindVulnerability, ID: fmt.Sprintf("CVE-2099-%05d", j), Severity: scanner.SeverityNames[j%5],
				PkgName: fmt.Sprintf("package-with-a-long-name-%d", j), InstalledVersion: "1.2.3-r4", FixedVersion: "1.2.3-r5", PrimaryURL: "https://example.invalid/advisories/" + fmt.Sprint(j)})
		}
		images = append(images, scanner.ExternalImage{Reference: fmt.Sprintf("ghcr.io/acme/app%d@sha256:%064d", i, i), Repository: fmt.Sprintf("ghcr.io/acme/app%d", i),
			Platforms: []scanner.ExternalPlatform{{Platform: "linux/amd64", Findings: fs}, {Platform: "linux/arm64", Findings: fs}}})
	}
	sres, err := scanner.Assemble(images, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := newResult(ScannerECR, sres)
	var md report.Markdown
	res.Summary(&md)
	if md.Len() > report.StepSummaryLimit*3/4 {
		t.Errorf("summary of 20 images × 3000 findings is %d bytes, want well under GitHub's 1 MiB", md.Len())
	}
	if !strings.Contains(md.String(), "The 2900 least severe findings are not listed here") {
		t.Error("no note about the findings left out")
	}
}
