package scanner

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/sarifschema"
)

// validateSARIF checks data against the official OASIS SARIF 2.1.0 schema,
// formats included.
func validateSARIF(t *testing.T, data []byte) {
	t.Helper()
	if err := sarifschema.Validate(data); err != nil {
		t.Fatalf("SARIF: %v", err)
	}
}

// sarifLog is the part of a SARIF log the tests read back.
type sarifLog struct {
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID      string `json:"id"`
					HelpURI string `json:"helpUri"`
					Help    struct {
						Text     string `json:"text"`
						Markdown string `json:"markdown"`
					} `json:"help"`
					Properties map[string]any `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		AutomationDetails struct {
			ID string `json:"id"`
		} `json:"automationDetails"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			Properties map[string]any `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func parseSARIF(t *testing.T, data []byte) sarifLog {
	t.Helper()
	var l sarifLog
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSARIFFromScan(t *testing.T) {
	host := startRegistry(t, nil)
	app := pushIndex(t, host, "demo/app")
	alpine, err := vulndb.AlpineImage()
	if err != nil {
		t.Fatal(err)
	}
	tools := pushImage(t, host, "demo/tools", alpine)

	o := offlineOptions(t)
	o.Severities = []string{"CRITICAL", "HIGH"}
	res, err := Scan(context.Background(), []Target{RemoteTarget(app), RemoteTarget(tools)}, o)
	if err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	warnings, err := WriteSARIF(&buf, res, SARIFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("unexpected warnings: %q", warnings)
	}
	validateSARIF(t, buf.Bytes())
	l := parseSARIF(t, buf.Bytes())

	if l.Version != "2.1.0" || len(l.Runs) != 2 {
		t.Fatalf("version %s with %d runs, want 2.1.0 with one run per image", l.Version, len(l.Runs))
	}
	cats := []string{l.Runs[0].AutomationDetails.ID, l.Runs[1].AutomationDetails.ID}
	if !slices.Equal(cats, []string{"registry-scan/demo/app/", "registry-scan/demo/tools/"}) {
		t.Errorf("categories = %q", cats)
	}

	// Exactly the reported severities: 2 CRITICAL + 4 HIGH in the index,
	// 1 CRITICAL + 3 HIGH (busybox, ssl_client, lodash) in the Alpine image.
	for i, want := range []int{6, 4} {
		run := l.Runs[i]
		if len(run.Results) != want {
			t.Errorf("run %d has %d results, want %d", i, len(run.Results), want)
		}
		for _, r := range run.Results {
			rule := run.Tool.Driver.Rules[r.RuleIndex]
			if rule.ID != r.RuleID {
				t.Errorf("result %s points at rule %s", r.RuleID, rule.ID)
			}
			if r.Level != "error" {
				t.Errorf("%s has level %s: only CRITICAL and HIGH are reported", r.RuleID, r.Level)
			}
			score, err := strconv.ParseFloat(fmt.Sprint(rule.Properties["security-severity"]), 64)
			if err != nil || score < 7 {
				t.Errorf("%s security-severity = %v", rule.ID, rule.Properties["security-severity"])
			}
		}
	}
	if n := len(l.Runs[0].Tool.Driver.Rules); n != 5 {
		t.Errorf("index run has %d rules, want 5 (CVE-2099-0002 covers two packages)", n)
	}

	run := l.Runs[0]
	var musl, lodash bool
	for _, r := range run.Results {
		uri := r.Locations[0].PhysicalLocation.ArtifactLocation.URI
		switch r.RuleID {
		case "CVE-2099-0001":
			musl = true
			if uri != "demo/app" {
				t.Errorf("OS package location = %q, want the repository path", uri)
			}
			rule := run.Tool.Driver.Rules[r.RuleIndex]
			for _, want := range []string{"Installed Version: 1.2.5-r10", "Fixed Version: 1.2.5-r11", "Platforms: linux/amd64"} {
				if !strings.Contains(rule.Help.Text, want) {
					t.Errorf("help text lacks %q:\n%s", want, rule.Help.Text)
				}
			}
			if !strings.Contains(rule.Help.Markdown, "| CRITICAL | musl | 1.2.5-r10 | 1.2.5-r11 |") {
				t.Errorf("help markdown:\n%s", rule.Help.Markdown)
			}
			if rule.HelpURI != "https://avd.aquasec.com/nvd/cve-2099-0001" || rule.Properties["security-severity"] != "9.8" {
				t.Errorf("rule = %+v", rule)
			}
		case "CVE-2099-1001":
			lodash = true
			if uri != vulndb.NpmPackagePath("lodash") {
				t.Errorf("npm package location = %q", uri)
			}
			if p := fmt.Sprint(r.Properties["platforms"]); p != "[linux/amd64 linux/arm64/v8]" {
				t.Errorf("lodash platforms = %s", p)
			}
		}
	}
	if !musl || !lodash {
		t.Errorf("missing results: musl %v lodash %v", musl, lodash)
	}
}

func TestSARIFCategoriesNeverCollide(t *testing.T) {
	res := &Result{Images: []ImageResult{
		{Reference: "ghcr.io/org/app@sha256:1", Repository: "ghcr.io/org/app", Digest: "sha256:1"},
		{Reference: "123.dkr.ecr.us-east-1.amazonaws.com/org/app@sha256:1", Repository: "123.dkr.ecr.us-east-1.amazonaws.com/org/app", Digest: "sha256:1"},
		{Reference: "ghcr.io/org/app@sha256:2", Repository: "ghcr.io/org/app", Digest: "sha256:2"},
	}}
	var buf bytes.Buffer
	if _, err := WriteSARIF(&buf, res, SARIFOptions{}); err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, buf.Bytes())
	l := parseSARIF(t, buf.Bytes())
	var cats []string
	for _, r := range l.Runs {
		cats = append(cats, r.AutomationDetails.ID)
	}
	want := []string{"registry-scan/org/app/", "registry-scan/org/app@123.dkr.ecr.us-east-1.amazonaws.com/", "registry-scan/org/app@ghcr.io/"}
	if !slices.Equal(cats, want) {
		t.Errorf("categories = %q, want %q", cats, want)
	}
	if got := SARIFCategories(res, SARIFOptions{}); !slices.Equal(got, want) {
		t.Errorf("SARIFCategories = %q, want what WriteSARIF wrote: %q", got, want)
	}

	custom := SARIFOptions{Category: func(img ImageResult) string { return "images" }}
	buf.Reset()
	if _, err := WriteSARIF(&buf, res, custom); err != nil {
		t.Fatal(err)
	}
	l = parseSARIF(t, buf.Bytes())
	seen := map[string]bool{}
	for _, r := range l.Runs {
		if seen[r.AutomationDetails.ID] {
			t.Errorf("duplicate category %q", r.AutomationDetails.ID)
		}
		seen[r.AutomationDetails.ID] = true
	}
}

// syntheticResult builds one image with counts findings per severity, most
// severe first, each with its own rule.
func syntheticResult(counts map[string]int, descriptionBytes int) *Result {
	img := ImageResult{Reference: "registry.example/org/big@sha256:0", Repository: "registry.example/org/big", Digest: "sha256:0",
		Platforms: []PlatformResult{{Platform: "linux/amd64"}}}
	n := 0
	for _, sev := range SeverityNames {
		for i := 0; i < counts[sev]; i++ {
			n++
			desc := ""
			if descriptionBytes > 0 {
				b := make([]byte, descriptionBytes/2)
				_, _ = rand.Read(b)
				desc = hex.EncodeToString(b)
			}
			img.Findings = append(img.Findings, Finding{
				Kind: KindVulnerability, ID: fmt.Sprintf("CVE-2099-%05d", n), Severity: sev,
				PkgName: fmt.Sprintf("pkg%d", n), PkgType: "debian", PkgClass: "os-pkgs",
				InstalledVersion: "1.0", FixedVersion: "1.1", Title: "synthetic", Description: desc,
				PrimaryURL: "https://example.invalid/" + strconv.Itoa(n), Platforms: []string{"linux/amd64"},
			})
		}
	}
	img.Counts, img.Fixable = countFindings(img.Findings)
	return &Result{Images: []ImageResult{img}, Severities: SeverityNames, TrivyVersion: "0.74.0"}
}

func severitiesOf(t *testing.T, data []byte) map[string]int {
	t.Helper()
	l := parseSARIF(t, data)
	out := map[string]int{}
	for _, r := range l.Runs[0].Results {
		rule := l.Runs[0].Tool.Driver.Rules[r.RuleIndex]
		tags, _ := rule.Properties["tags"].([]any)
		out[fmt.Sprint(tags[2])]++
	}
	return out
}

func TestSARIFTruncatesLeastSevereFirst(t *testing.T) {
	res := syntheticResult(map[string]int{"CRITICAL": 5, "HIGH": 10, "MEDIUM": 15, "LOW": 20}, 0)

	t.Run("results per run", func(t *testing.T) {
		var buf bytes.Buffer
		warnings, err := WriteSARIF(&buf, res, SARIFOptions{Limits: SARIFLimits{ResultsPerRun: 12}})
		if err != nil {
			t.Fatal(err)
		}
		validateSARIF(t, buf.Bytes())
		if got := severitiesOf(t, buf.Bytes()); got["CRITICAL"] != 5 || got["HIGH"] != 7 || len(got) != 2 {
			t.Errorf("kept %v, want 5 CRITICAL and 7 HIGH", got)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "12 of 50") || !strings.Contains(warnings[0], "dropped 3 HIGH, 15 MEDIUM, 20 LOW") {
			t.Errorf("warnings = %q", warnings)
		}
	})

	t.Run("rules per run", func(t *testing.T) {
		var buf bytes.Buffer
		warnings, err := WriteSARIF(&buf, res, SARIFOptions{Limits: SARIFLimits{RulesPerRun: 3}})
		if err != nil {
			t.Fatal(err)
		}
		l := parseSARIF(t, buf.Bytes())
		if len(l.Runs[0].Tool.Driver.Rules) != 3 || len(l.Runs[0].Results) != 3 || len(warnings) != 1 {
			t.Errorf("%d rules, %d results, warnings %q", len(l.Runs[0].Tool.Driver.Rules), len(l.Runs[0].Results), warnings)
		}
	})

	t.Run("compressed size", func(t *testing.T) {
		// Random descriptions do not compress: roughly 700 bytes per result
		// once gzip has folded the copies in each rule's help.
		big := syntheticResult(map[string]int{"CRITICAL": 20, "HIGH": 40, "MEDIUM": 60, "LOW": 80}, 1000)
		const limit = 60_000
		var buf bytes.Buffer
		warnings, err := WriteSARIF(&buf, big, SARIFOptions{Limits: SARIFLimits{CompressedBytes: limit}})
		if err != nil {
			t.Fatal(err)
		}
		validateSARIF(t, buf.Bytes())
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(buf.Bytes())
		_ = zw.Close()
		if gz.Len() > limit {
			t.Fatalf("compressed size %d above the %d limit", gz.Len(), limit)
		}
		got := severitiesOf(t, buf.Bytes())
		t.Logf("kept %v within %d compressed bytes (%d)", got, limit, gz.Len())
		if got["CRITICAL"] != 20 || got["LOW"] != 0 || got["HIGH"]+got["MEDIUM"] == 0 {
			t.Errorf("kept %v: want all CRITICAL, no LOW", got)
		}
		if len(warnings) != 1 {
			t.Errorf("warnings = %q", warnings)
		}
	})

	t.Run("runs", func(t *testing.T) {
		two := &Result{Images: []ImageResult{res.Images[0], res.Images[0]}}
		_, err := WriteSARIF(&bytes.Buffer{}, two, SARIFOptions{Limits: SARIFLimits{Runs: 1}})
		if err == nil || !strings.Contains(err.Error(), "2 images exceed") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSARIFOfExternalFindingsNamesItsTool(t *testing.T) {
	res, err := Assemble([]ExternalImage{{
		Reference: "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app@sha256:aa", Repository: "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app", Digest: "sha256:aa",
		Platforms: []ExternalPlatform{{Platform: "linux/amd64", Digest: "sha256:aa", Findings: []Finding{
			{Kind: KindVulnerability, ID: "CVE-2024-1", Severity: "HIGH", PkgName: "openssl", InstalledVersion: "3.0.1", PkgClass: "os-pkgs", PrimaryURL: "https://nvd.nist.gov/vuln/detail/CVE-2024-1"},
		}}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tool := SARIFTool{Name: "Amazon ECR", FullName: "Amazon ECR image scanning", InformationURI: "https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning.html"}
	if _, err := WriteSARIF(&buf, res, SARIFOptions{Tool: tool, Category: CategoryWithPrefix("ecr")}); err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, buf.Bytes())
	l := parseSARIF(t, buf.Bytes())
	if l.Runs[0].Tool.Driver.Name != "Amazon ECR" || l.Runs[0].AutomationDetails.ID != "ecr/team/app/" || len(l.Runs[0].Results) != 1 {
		t.Errorf("run: tool %q, category %q, %d results", l.Runs[0].Tool.Driver.Name, l.Runs[0].AutomationDetails.ID, len(l.Runs[0].Results))
	}
	if strings.Contains(buf.String(), "Trivy") {
		t.Error("ECR findings attributed to Trivy")
	}
}
