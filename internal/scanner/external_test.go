package scanner

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

func TestAssembleExternalFindings(t *testing.T) {
	amd := []Finding{
		{Kind: KindVulnerability, ID: "CVE-1", Severity: "CRITICAL", PkgName: "openssl", InstalledVersion: "3.0.1", FixedVersion: "3.0.2"},
		{Kind: KindVulnerability, ID: "CVE-2", Severity: "informational", PkgName: "zlib", InstalledVersion: "1.2"},
		{Kind: KindVulnerability, ID: "CVE-3", Severity: "MEDIUM", PkgName: "bash", InstalledVersion: "5.1"},
	}
	arm := []Finding{
		{Kind: KindVulnerability, ID: "CVE-1", Severity: "CRITICAL", PkgName: "openssl", InstalledVersion: "3.0.1", FixedVersion: "3.0.2"},
		{Kind: KindVulnerability, ID: "CVE-4", Severity: "HIGH", PkgName: "glibc", InstalledVersion: "2.36"},
	}
	res, err := Assemble([]ExternalImage{{
		Reference: "ecr.example/app@sha256:aa", Repository: "ecr.example/app", Digest: "sha256:aa",
		Platforms: []ExternalPlatform{{Platform: "linux/amd64", Digest: "sha256:01", Findings: amd}, {Platform: "linux/arm64", Digest: "sha256:02", Findings: arm}},
	}}, []string{"CRITICAL,HIGH"})
	if err != nil {
		t.Fatal(err)
	}
	img := res.Images[0]
	var got []string
	for _, f := range img.Findings {
		got = append(got, f.ID+" "+f.Severity+" "+f.PkgName+" "+joinPlatforms(f))
	}
	want := []string{"CVE-1 CRITICAL openssl linux/amd64,linux/arm64", "CVE-4 HIGH glibc linux/arm64"}
	if !slices.Equal(got, want) {
		t.Errorf("findings = %q, want %q", got, want)
	}
	// An unrecognised severity is UNKNOWN; filtered-out findings still gate.
	if len(img.HiddenBySeverity) != 2 || img.HiddenBySeverity[0].ID != "CVE-3" || img.HiddenBySeverity[1].Severity != "UNKNOWN" {
		t.Errorf("hidden = %+v", img.HiddenBySeverity)
	}
	if res.Counts != (SeverityCounts{Critical: 1, High: 1}) || res.Fixable != 1 {
		t.Errorf("counts %+v fixable %d", res.Counts, res.Fixable)
	}
	if c := img.Platforms[1].Counts; c != (SeverityCounts{Critical: 1, High: 1}) {
		t.Errorf("arm64 counts %+v", c)
	}
	if failed, verdict := gate(t, res, "MEDIUM"); !failed || verdict != "failed: 1 CRITICAL, 1 HIGH, 1 MEDIUM (fail-on: MEDIUM or worse; MEDIUM not listed because severity excludes it)" {
		t.Errorf("gate %v %q", failed, verdict)
	}
	if _, err := Assemble(nil, []string{"SEVERE"}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("bad severity: %v", err)
	}
}

func joinPlatforms(f Finding) string {
	p := slices.Clone(f.Platforms)
	slices.Sort(p)
	out := ""
	for i, s := range p {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func TestIgnoreListForExternalFindings(t *testing.T) {
	for name, content := range map[string]string{
		".trivyignore":      "CVE-1\nCVE-2 exp:2000-01-01\n",
		".trivyignore.yaml": "vulnerabilities:\n  - id: CVE-1\n  - id: CVE-2\n    expired_at: 2000-01-01\n",
	} {
		l, err := ReadIgnoreFile(context.Background(), writeFile(t, name, content))
		if err != nil {
			t.Fatal(err)
		}
		if !l.Ignored("CVE-1") || l.Ignored("CVE-2") || l.Ignored("CVE-3") {
			t.Errorf("%s: CVE-1 %v, expired CVE-2 %v, CVE-3 %v", name, l.Ignored("CVE-1"), l.Ignored("CVE-2"), l.Ignored("CVE-3"))
		}
	}
	if _, err := ReadIgnoreFile(context.Background(), writeFile(t, ".trivyignore.yaml", "vulnerabilities: [")); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("bad YAML: %v", err)
	}
	var none *IgnoreList
	if none.Ignored("CVE-1") {
		t.Error("a nil list ignores nothing")
	}
}

func TestResolveListsPlatformsLikeScan(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	ri, err := Resolve(context.Background(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ri.Digest != ref.DigestStr() || ri.Repository != host+"/demo/app" || len(ri.Platforms) != 2 ||
		ri.Platforms[0].Platform != vulndb.PlatformAlpine || ri.Platforms[1].Platform != vulndb.PlatformDebian {
		t.Fatalf("resolved %+v", ri)
	}
	alpine, _ := vulndb.AlpineImage()
	d, _ := alpine.Digest()
	if ri.Platforms[0].Digest != d.String() {
		t.Errorf("amd64 digest %s, want %s", ri.Platforms[0].Digest, d)
	}
	if _, err := Resolve(context.Background(), ref, nil, []string{"linux/s390x"}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("platform filter: %v", err)
	}
}

func TestCategoryWithPrefix(t *testing.T) {
	img := ImageResult{Repository: "ghcr.io/acme/app", Reference: "ghcr.io/acme/app@sha256:aa"}
	if got := CategoryWithPrefix("")(img); got != "registry-scan/acme/app/" {
		t.Errorf("default %q", got)
	}
	if got := CategoryWithPrefix(" container/ ")(img); got != "container/acme/app/" {
		t.Errorf("prefixed %q", got)
	}
	if got := CategoryWithPrefix("container")(ImageResult{Reference: "/tmp/build/app.tar"}); got != "container/app/" {
		t.Errorf("path %q", got)
	}
}

func TestSetDB(t *testing.T) {
	var r Result
	now := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	r.SetDB("Amazon ECR basic scanning", now.Add(-36*time.Hour), now)
	if r.DB.Source != "Amazon ECR basic scanning" || r.DB.AgeSeconds != 36*3600 {
		t.Errorf("DB %+v", r.DB)
	}
}
