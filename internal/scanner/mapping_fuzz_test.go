package scanner

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aquasecurity/trivy/pkg/types"

	"github.com/registry-actions/registry/test/sarifschema"
)

// The findings mapping turns text from outside the workflow file — a Trivy
// report's vulnerabilities and secrets, another scanner's findings (ECR,
// Inspector) — into the one model every report, count and gate reads. The
// fuzz targets here feed it arbitrary documents: nothing may panic, the
// counts must agree with the findings, severities must stay within the five
// names, and the SARIF written from the result must be valid SARIF 2.1.0
// whatever the strings hold. Seed corpora: testdata/fuzz/<target>/.

// checkResult verifies what every result must satisfy and that its SARIF is
// valid.
func checkResult(t *testing.T, res *Result) {
	t.Helper()
	for _, img := range res.Images {
		if img.Counts.Total() != len(img.Findings) {
			t.Fatalf("image counts %d findings, lists %d", img.Counts.Total(), len(img.Findings))
		}
		fixable := 0
		seen := map[string]bool{}
		for _, f := range img.Findings {
			if !slices.Contains(SeverityNames, f.Severity) {
				t.Fatalf("severity %q is not one of %v", f.Severity, SeverityNames)
			}
			if !slices.Contains(res.Severities, f.Severity) {
				t.Fatalf("finding of severity %s reported outside %v", f.Severity, res.Severities)
			}
			if len(f.Platforms) == 0 {
				t.Fatalf("finding %s names no platform", f.ID)
			}
			if seen[f.key()] {
				t.Fatalf("finding %s listed twice", f.key())
			}
			seen[f.key()] = true
			if f.Fixable() {
				fixable++
			}
		}
		if fixable != img.Fixable {
			t.Fatalf("fixable %d, counted %d", img.Fixable, fixable)
		}
		for _, f := range img.HiddenBySeverity {
			if slices.Contains(res.Severities, f.Severity) {
				t.Fatalf("hidden finding of reported severity %s", f.Severity)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := WriteSARIF(&buf, res, SARIFOptions{}); err != nil {
		t.Fatalf("WriteSARIF: %v", err)
	}
	if err := sarifschema.Validate(buf.Bytes()); err != nil {
		t.Fatalf("SARIF: %v\n%s", err, buf.Bytes())
	}
}

// FuzzExternalFindings fuzzes Assemble with findings as another scanner
// reports them (JSON of []ExternalImage) and a severity input.
func FuzzExternalFindings(f *testing.F) {
	f.Add([]byte(`[{"Reference":"r.example/app@sha256:aa","Repository":"r.example/app","Digest":"sha256:aa","Platforms":[{"Platform":"linux/amd64","Digest":"sha256:bb","Findings":[{"ID":"CVE-2024-1","Severity":"HIGH","PkgName":"openssl","InstalledVersion":"3.0.1","FixedVersion":"3.0.2"}]}]}]`), "HIGH,CRITICAL")
	f.Fuzz(func(t *testing.T, doc []byte, severities string) {
		var images []ExternalImage
		if json.Unmarshal(doc, &images) != nil {
			return
		}
		sevs := strings.Split(severities, ",")
		if severities == "" {
			sevs = nil
		}
		res, err := Assemble(images, sevs)
		if err != nil {
			if !strings.Contains(err.Error(), "severit") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("unexpected error: %q", err)
			}
			return
		}
		checkResult(t, res)
	})
}

// FuzzTrivyReport fuzzes the mapping of one platform's Trivy report (JSON,
// as Trivy writes it) into findings, the severity split the scan makes and
// the merge across two platforms.
func FuzzTrivyReport(f *testing.F) {
	f.Add([]byte(`{"SchemaVersion":2,"ArtifactName":"x","Results":[{"Target":"x (alpine 3.19)","Class":"os-pkgs","Type":"alpine","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-1","PkgName":"musl","InstalledVersion":"1.2.4-r1","FixedVersion":"1.2.4-r2","Severity":"CRITICAL","SeveritySource":"nvd","CVSS":{"nvd":{"V3Score":9.8,"V3Vector":"CVSS:3.1/AV:N"}}}]}]}`), "linux/amd64", "HIGH,CRITICAL")
	f.Fuzz(func(t *testing.T, doc []byte, platform, severities string) {
		var rep types.Report
		if json.Unmarshal(doc, &rep) != nil {
			return
		}
		sevs, err := ParseSeverities(strings.Split(severities, ","))
		if err != nil || len(sevs) == 0 {
			return
		}
		all := findingsOf(rep, platform)
		want := 0
		for _, r := range rep.Results {
			want += len(r.Vulnerabilities) + len(r.Secrets)
		}
		if len(all) != want {
			t.Fatalf("%d vulnerabilities and secrets became %d findings", want, len(all))
		}
		for i := range all {
			// What the engine guarantees before the mapping: Trivy's
			// severities are its five names (anything else is UNKNOWN).
			all[i].Severity = normalSeverity(all[i].Severity)
		}
		img := ImageResult{Reference: "r.example/app@sha256:aa", Repository: "r.example/app", Digest: "sha256:aa"}
		var reported, hidden [][]Finding
		for _, p := range []string{platform, platform + "-other"} {
			var shown, rest []Finding
			for _, f := range all {
				f.Platforms = []string{p}
				if slices.Contains(sevs, f.Severity) {
					shown = append(shown, f)
				} else {
					rest = append(rest, f)
				}
			}
			reported, hidden = append(reported, shown), append(hidden, rest)
			pr := PlatformResult{Platform: p, Digest: "sha256:bb", Report: bySeverity(rep, sevs)}
			pr.Counts, _ = countFindings(mergeFindings(shown))
			img.Platforms = append(img.Platforms, pr)
		}
		img.Findings = mergeFindings(reported...)
		img.HiddenBySeverity = mergeFindings(hidden...)
		img.Counts, img.Fixable = countFindings(img.Findings)
		res := &Result{Images: []ImageResult{img}, Severities: sevs, TrivyVersion: "0.0.0"}
		res.Counts, res.Fixable = countFindings(uniqueAcrossImages(res.Images, false))
		checkResult(t, res)
	})
}
