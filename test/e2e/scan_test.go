package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/harness"
	"github.com/registry-actions/registry/test/sarifschema"
)

// The sample index (vulndb.Index) scanned with the fixture DB has exactly
// these findings (vulndb.Expected): 2 CRITICAL, 4 HIGH, 3 MEDIUM, 3 LOW,
// 1 UNKNOWN, 10 of them fixable.
var sampleCounts = map[string]string{"critical": "2", "high": "4", "medium": "3", "low": "3", "unknown": "1", "fixable": "10"}

// pushSample pushes the sample index to a plain-HTTP loopback registry and
// returns host/repo@digest.
func pushSample(t *testing.T, host, repo string, opts ...remote.Option) string {
	t.Helper()
	idx, err := vulndb.Index()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	ref, err := name.NewDigest(host+"/"+repo+"@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		t.Fatalf("push sample: %v", err)
	}
	return ref.String()
}

func pushImage(t *testing.T, host, repo string, img v1.Image) string {
	t.Helper()
	d, _ := img.Digest()
	ref, err := name.NewDigest(host+"/"+repo+"@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push image: %v", err)
	}
	return ref.String()
}

// seededWorkspace is a workspace whose default cache-dir (.cache/trivy)
// holds the fixture DB, built three hours ago.
func seededWorkspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	if err := vulndb.SeedCache(filepath.Join(ws, ".cache", "trivy"), vulndb.MetadataAt(time.Now().Add(-3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	return ws
}

// scanInputs are the inputs every offline scan passes.
func scanInputs(images string, extra ...string) map[string]string {
	in := map[string]string{"stage": "scan", "images": images, "skip-db-update": "true", "formats": "sarif,json,sbom"}
	for i := 0; i+1 < len(extra); i += 2 {
		in[extra[i]] = extra[i+1]
	}
	return in
}

// validSARIF validates a SARIF file against the official 2.1.0 schema and
// returns its runs.
func validSARIF(t *testing.T, path string) []sarifRun {
	t.Helper()
	var doc struct {
		Runs []sarifRun `json:"runs"`
	}
	readSARIF(t, path, &doc)
	return doc.Runs
}

// readSARIF validates a SARIF file against the 2.1.0 schema and decodes it
// into doc.
func readSARIF(t *testing.T, path string, doc any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sarifschema.Validate(data); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(data, doc); err != nil {
		t.Fatal(err)
	}
}

type sarifRun struct {
	Tool struct {
		Driver struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"driver"`
	} `json:"tool"`
	AutomationDetails struct {
		ID string `json:"id"`
	} `json:"automationDetails"`
	Results []struct {
		RuleID string `json:"ruleId"`
		Level  string `json:"level"`
	} `json:"results"`
}

func wantExit(t *testing.T, what string, res harness.Result, code int) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("%s: exit %d, want %d\n%s", what, res.Code, code, res.Log())
	}
}

func TestScanTheSampleIndexAsTheRunnerWould(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := pushSample(t, reg.Host, "team/app")
	ws := seededWorkspace(t)

	res := harness.Run(t, harness.Step{Dir: ws, Inputs: scanInputs(ref)})
	wantExit(t, "default fail-on CRITICAL", res, 3)
	if msg := oneLineError(t, res); msg != "scan failed: 2 CRITICAL (fail-on: CRITICAL)" {
		t.Errorf("error %q", msg)
	}
	for k, v := range sampleCounts {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %s", k, res.Outputs[k], v)
		}
	}
	if res.Outputs["result"] != "fail" || res.Outputs["sarif"] != "registry-reports/scan.sarif" || res.Outputs["sarif-category"] != "registry-scan/team/app/" {
		t.Errorf("outputs %v", res.Outputs)
	}
	runs := validSARIF(t, filepath.Join(ws, res.Outputs["sarif"]))
	if len(runs) != 1 || runs[0].AutomationDetails.ID != "registry-scan/team/app/" || len(runs[0].Results) != 13 ||
		runs[0].Tool.Driver.Name != "Trivy" || runs[0].Tool.Driver.Version != "0.74.0" {
		t.Errorf("SARIF runs %+v", runs)
	}
	for _, kind := range []string{"json", "sbom"} {
		files := strings.Split(res.Outputs[kind], "\n")
		if len(files) != 2 {
			t.Fatalf("%s output %q: want one file per platform", kind, res.Outputs[kind])
		}
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(ws, f))
			if err != nil || !json.Valid(data) {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	var report struct {
		Trivy   struct{ Version string }
		Results []struct {
			Vulnerabilities []struct{ VulnerabilityID string }
		}
	}
	data, _ := os.ReadFile(filepath.Join(ws, strings.Split(res.Outputs["json"], "\n")[0]))
	json.Unmarshal(data, &report)
	if report.Trivy.Version != "0.74.0" {
		t.Errorf("the Trivy JSON names Trivy %q: the binary must link Trivy's version", report.Trivy.Version)
	}
	for _, want := range []string{
		"## Scan", "❌ **failed: 2 CRITICAL (fail-on: CRITICAL)**", "Trivy 0.74.0", "(3h old)",
		"| `linux/amd64` | alpine 3.23.2 | 1 | 3 | 2 | 2 | 0 | 7 |", "| `linux/arm64/v8` | debian 12.11 | 1 | 2 | 2 | 2 | 1 | 5 |",
		"**Top findings**", "<details><summary>All 13 findings</summary>",
	} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	if !strings.Contains(res.Stdout, "Detected OS") {
		t.Errorf("Trivy's own log is missing:\n%s", res.Stdout)
	}

	// The CLI: the same scan, a compact table, exit 3.
	cli := harness.Run(t, harness.Step{Dir: ws, Args: []string{"scan", "--images", ref, "--skip-db-update", "--formats", "sarif"}})
	wantExit(t, "CLI", cli, 3)
	for _, want := range []string{"scan failed: 2 CRITICAL (fail-on: CRITICAL)", "IMAGE", "CRITICAL  CVE-2099-0001", "reports: registry-reports/scan.sarif"} {
		if !strings.Contains(cli.Stdout, want) {
			t.Errorf("CLI output lacks %q:\n%s", want, cli.Stdout)
		}
	}
}

func TestScanGatesIndependentlyOfWhatIsReported(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := pushSample(t, reg.Host, "team/app")
	ws := seededWorkspace(t)
	openVEX := `{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.invalid/vex/app-1",
  "author": "App maintainers",
  "timestamp": "2026-11-01T00:00:00Z",
  "version": 1,
  "statements": [{"vulnerability": {"name": "CVE-2099-0001"}, "products": [{"@id": "pkg:apk/alpine/musl@1.2.5-r10"}],
    "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]
}`
	os.WriteFile(filepath.Join(ws, "app.openvex.json"), []byte(openVEX), 0o644)

	cases := []struct {
		name    string
		extra   []string
		code    int
		verdict string
		outputs map[string]string
	}{
		{"fail-on MEDIUM with only CRITICAL reported", []string{"severity", "CRITICAL", "fail-on", "MEDIUM"}, 3,
			"scan failed: 2 CRITICAL, 4 HIGH, 3 MEDIUM (fail-on: MEDIUM or worse; HIGH,MEDIUM not listed because severity excludes it)",
			map[string]string{"critical": "2", "high": "0", "medium": "0", "result": "fail"}},
		{"HIGH fails on CRITICAL too", []string{"fail-on", "HIGH"}, 3, "scan failed: 2 CRITICAL, 4 HIGH (fail-on: HIGH or worse)",
			map[string]string{"high": "4", "result": "fail"}},
		{"none never fails", []string{"fail-on", "none"}, 0, "", map[string]string{"critical": "2", "result": "pass"}},
		{"ignore-unfixed", []string{"ignore-unfixed", "true", "fail-on", "LOW"}, 3, "scan failed: 2 CRITICAL, 4 HIGH, 2 MEDIUM, 1 LOW (fail-on: LOW or worse)",
			map[string]string{"medium": "2", "low": "1", "unknown": "1", "fixable": "10"}},
		{"VEX", []string{"vex", "app.openvex.json"}, 3, "scan failed: 1 CRITICAL (fail-on: CRITICAL)", map[string]string{"critical": "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := harness.Run(t, harness.Step{Dir: ws, Inputs: scanInputs(ref, c.extra...)})
			wantExit(t, c.name, res, c.code)
			if c.code != 0 && oneLineError(t, res) != c.verdict {
				t.Errorf("verdict %q, want %q", oneLineError(t, res), c.verdict)
			}
			for k, v := range c.outputs {
				if res.Outputs[k] != v {
					t.Errorf("output %s = %q, want %s", k, res.Outputs[k], v)
				}
			}
			// SARIF honours severity exactly.
			runs := validSARIF(t, filepath.Join(ws, res.Outputs["sarif"]))
			if want := atoi(res.Outputs["critical"]) + atoi(res.Outputs["high"]) + atoi(res.Outputs["medium"]) + atoi(res.Outputs["low"]) + atoi(res.Outputs["unknown"]); len(runs[0].Results) != want {
				t.Errorf("SARIF has %d results, outputs count %d", len(runs[0].Results), want)
			}
		})
	}

	// A .trivyignore in the working directory is used without being named.
	t.Run("trivyignore found in the workspace", func(t *testing.T) {
		ignoring := seededWorkspace(t)
		os.WriteFile(filepath.Join(ignoring, ".trivyignore"), []byte("# accepted until the base image moves\nCVE-2099-0001\nCVE-2099-0101\n"), 0o644)
		res := harness.Run(t, harness.Step{Dir: ignoring, Inputs: scanInputs(ref)})
		wantExit(t, ".trivyignore", res, 0)
		if res.Outputs["critical"] != "0" || res.Outputs["result"] != "pass" || !strings.Contains(res.Stdout, "using the ignore file .trivyignore found in the working directory") {
			t.Errorf("outputs %v\n%s", res.Outputs, res.Stdout)
		}
		if !strings.Contains(res.Summary, "✅ **passed: no CRITICAL findings (fail-on: CRITICAL)**") {
			t.Errorf("summary:\n%s", res.Summary)
		}
	})
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

func TestScanSeveralImagesOneSARIFRunEach(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	app := pushSample(t, reg.Host, "team/app")
	alpine, err := vulndb.AlpineImage()
	if err != nil {
		t.Fatal(err)
	}
	tools := pushImage(t, reg.Host, "team/tools", alpine)
	ws := seededWorkspace(t)
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: scanInputs(app+"\n"+tools, "sarif-category", "container", "fail-on", "none")})
	wantExit(t, "two images", res, 0)
	runs := validSARIF(t, filepath.Join(ws, res.Outputs["sarif"]))
	var cats []string
	for _, r := range runs {
		cats = append(cats, r.AutomationDetails.ID)
	}
	if !slices.Equal(cats, []string{"container/team/app/", "container/team/tools/"}) || res.Outputs["sarif-category"] != "container/team/" {
		t.Errorf("categories %q, output %q", cats, res.Outputs["sarif-category"])
	}
	// Unique vulnerability × package across images: tools adds nothing new.
	if res.Outputs["critical"] != "2" || len(strings.Split(res.Outputs["json"], "\n")) != 3 {
		t.Errorf("outputs %v", res.Outputs)
	}
}

func TestScanDownloadsTheDBPastARateLimitedMirror(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := pushSample(t, reg.Host, "team/app")
	art, err := vulndb.Artifact(vulndb.MetadataAt(time.Now().Add(-5 * time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	dbTag, _ := name.NewTag(reg.Host+"/mirror/trivy-db:2", name.Insecure)
	if err := remote.Write(dbTag, art); err != nil {
		t.Fatal(err)
	}
	limited := &harness.FaultRule{Match: pathHas("/v2/limited/trivy-db/"), Status: http.StatusTooManyRequests, Times: 1000}
	reg.Faults.Add(limited)

	ws := t.TempDir()
	in := map[string]string{
		"stage": "scan", "images": ref, "fail-on": "none",
		"db-repository": reg.Host + "/limited/trivy-db:2\n" + reg.Host + "/mirror/trivy-db:2",
	}
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: in})
	wantExit(t, "DB fallback", res, 0)
	if reg.Faults.Hits(limited) == 0 {
		t.Fatal("the rate-limited repository was never asked")
	}
	for k, v := range sampleCounts {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %s", k, res.Outputs[k], v)
		}
	}
	if !strings.Contains(res.Stdout, "::warning::vulnerability DB: fell back to "+reg.Host+"/mirror/trivy-db:2 after "+reg.Host+"/limited/trivy-db:2: HTTP 429") {
		t.Errorf("no fallback warning:\n%s", res.Stdout)
	}
	if !strings.Contains(res.Summary, "downloaded from `"+reg.Host+"/mirror/trivy-db:2`") || !strings.Contains(res.Summary, "(5h old)") {
		t.Errorf("summary does not state the DB's source and age:\n%s", res.Summary)
	}
	if _, err := os.Stat(filepath.Join(ws, ".cache", "trivy", "db", "trivy.db")); err != nil {
		t.Errorf("the DB is not cached inside the workspace: %v", err)
	}

	// Cached now: the next run downloads nothing and says where it came from.
	reg.Counter.Reset()
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: in})
	wantExit(t, "cached DB", res, 0)
	if !strings.Contains(res.Summary, "cached, from `"+reg.Host+"/mirror/trivy-db:2`") {
		t.Errorf("summary:\n%s", res.Summary)
	}
}

func pathHas(s string) func(*http.Request) bool {
	return func(r *http.Request) bool { return strings.Contains(r.URL.Path, s) }
}

func TestScanErrorsAreOneLineWithTheirExitCode(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := pushSample(t, reg.Host, "team/app")
	seeded := seededWorkspace(t)

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	reg.Faults.Add(&harness.FaultRule{Match: pathHas("/v2/limited/trivy-db/"), Status: http.StatusTooManyRequests, Times: 1000})
	reg.Faults.Add(&harness.FaultRule{Match: pathHas("/v2/broken/trivy-db/"), Status: http.StatusServiceUnavailable, Times: 1000})

	// A layer whose bytes are not the gzip tar its media type says.
	junk := make([]byte, 4096)
	rand.Read(junk)
	corruptImg, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: static.NewLayer(junk, types.OCILayer)})
	if err != nil {
		t.Fatal(err)
	}
	junkID := mustDigest(t, static.NewLayer(junk, types.OCILayer))
	corruptImg, _ = mutate.ConfigFile(corruptImg, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{junkID}}})
	corrupt := pushImage(t, reg.Host, "team/corrupt", corruptImg)

	corruptDB := t.TempDir()
	os.MkdirAll(filepath.Join(corruptDB, ".cache", "trivy", "db"), 0o755)
	os.WriteFile(filepath.Join(corruptDB, ".cache", "trivy", "db", "trivy.db"), junk, 0o644)
	os.WriteFile(filepath.Join(corruptDB, ".cache", "trivy", "db", "metadata.json"), []byte(`{"Version":2,"NextUpdate":"2099-01-01T00:00:00Z","UpdatedAt":"2026-11-01T00:00:00Z"}`), 0o644)

	cases := []struct {
		name string
		dir  string
		in   map[string]string
		code int
		want string // the whole message, or its start when it ends in "…"
	}{
		{"unknown severity", seeded, scanInputs(ref, "severity", "HIGH,SEVERE"), 2,
			`scan: severity: unknown severity "SEVERE": valid severities are CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN`},
		{"unknown fail-on", seeded, scanInputs(ref, "fail-on", "urgent"), 2,
			`scan: fail-on: unknown severity "URGENT": valid severities are CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, or none`},
		{"image not found", seeded, scanInputs(reg.Host + "/team/none:v1"), 2,
			"scan: image " + reg.Host + "/team/none:v1 not found (…"},
		{"every DB repository failing", t.TempDir(), map[string]string{"stage": "scan", "images": ref,
			"db-repository": reg.Host + "/limited/trivy-db:2," + reg.Host + "/broken/trivy-db:2," + dead + "/gone/trivy-db:2", "insecure-registries": dead}, 1,
			"scan: vulnerability DB download failed from every repository (" + reg.Host + "/limited/trivy-db:2: HTTP 429 …"},
		{"skip-db-update without a DB", t.TempDir(), scanInputs(ref, "cache-dir", "ci-cache"), 1, ""},
		{"corrupt DB", corruptDB, scanInputs(ref), 1, ""},
		{"corrupt layer", seeded, scanInputs(corrupt), 1, "scan: layer " + junkID.String() + " of " + corrupt +
			" (linux/amd64) cannot be analysed (failed to extract the archive: archive/tar: invalid tar header): the image is corrupt; rebuild and push it"},
		{"bad ignore file", seeded, scanInputs(ref, "ignore-file", "missing.trivyignore"), 2, "scan: ignore file …"},
		{"unknown scanner", seeded, scanInputs(ref, "scanner", "grype"), 2, `scan: scanner "grype" is not supported: use trivy, ecr or inspector`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := harness.Run(t, harness.Step{Dir: c.dir, Inputs: c.in})
			wantExit(t, c.name, res, c.code)
			msg := oneLineError(t, res)
			t.Logf("exit %d: %s", res.Code, msg)
			switch {
			case c.name == "skip-db-update without a DB":
				c.want = "scan: no vulnerability DB in " + filepath.Join(c.dir, "ci-cache", "db") + " and skip-db-update is set: run once without skip-db-update to download it, or restore the cache directory (e.g. with actions/cache on cache-dir)"
			case c.name == "corrupt DB":
				c.want = "scan: vulnerability DB in " + filepath.Join(c.dir, ".cache", "trivy", "db") + " is unusable (…"
			}
			if prefix, ok := strings.CutSuffix(c.want, "…"); ok {
				if !strings.HasPrefix(msg, prefix) {
					t.Errorf("error %q\nwant it to start %q", msg, prefix)
				}
			} else if msg != c.want {
				t.Errorf("error %q\nwant %q", msg, c.want)
			}
			if strings.Count(res.Stdout, "::error::") != 1 {
				t.Errorf("want exactly one error annotation:\n%s", res.Stdout)
			}
			if c.code != 3 && (res.Outputs["result"] != "" || strings.Contains(res.Summary, "## Scan")) {
				t.Errorf("a scan that could not run reported a result: %v", res.Outputs)
			}
			if c.name == "every DB repository failing" {
				for _, want := range []string{"HTTP 429", reg.Host + "/broken/trivy-db:2: HTTP 503", dead + "/gone/trivy-db:2: ", "db-repository"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error does not name %q: %s", want, msg)
					}
				}
			}
			if c.name == "corrupt DB" && !strings.HasSuffix(msg, "delete that directory and scan again without skip-db-update") {
				t.Errorf("corrupt DB: %s", msg)
			}
		})
	}
}

func mustDigest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestScanTimesOut(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := pushSample(t, reg.Host, "team/app")
	reg.Faults.Add(&harness.FaultRule{Match: pathHas("/blobs/"), Delay: 4 * time.Second, Status: http.StatusServiceUnavailable, Times: 1000})
	res := harness.Run(t, harness.Step{Dir: seededWorkspace(t), Inputs: scanInputs(ref, "timeout", "2s")})
	wantExit(t, "timeout", res, 1)
	if msg := oneLineError(t, res); msg != "scan: timed out after 2s: raise the timeout input" {
		t.Errorf("error %q", msg)
	}
}

func TestPushScanSignChainAttestsEveryPlatform(t *testing.T) {
	s := newSignSetup(t)
	if err := vulndb.WriteSampleLayout(filepath.Join(s.ws, "image")); err != nil {
		t.Fatal(err)
	}
	if err := vulndb.SeedCache(filepath.Join(s.ws, ".cache", "trivy"), vulndb.MetadataAt(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	idx, _ := vulndb.Index()
	digest, _ := idx.Digest()
	res := s.run(t, map[string]string{
		"stage": "push,scan,sign", "source": "./image", "images": s.reg.Host + "/chain/app", "tags": "v1",
		"skip-db-update": "true", "fail-on": "none", "formats": "sarif",
		"key": "cosign.key", "key-password": keyPassword, "tlog-upload": "false", "attest": "vuln,sbom",
	})
	mustSucceed(t, "push,scan,sign", res)
	image := s.reg.Host + "/chain/app@" + digest.String()
	if res.Outputs["digest"] != digest.String() || res.Outputs["critical"] != "2" || res.Outputs["sarif-category"] != "registry-scan/chain/app/" {
		t.Fatalf("outputs %v", res.Outputs)
	}
	// attest asked for the JSON and SBOM files, although formats did not.
	if len(strings.Split(res.Outputs["json"], "\n")) != 2 || len(strings.Split(res.Outputs["sbom"], "\n")) != 2 {
		t.Fatalf("json %q sbom %q", res.Outputs["json"], res.Outputs["sbom"])
	}
	if strings.Contains(res.Stdout, "resolved to") {
		t.Errorf("a stage resolved a tag in the chain:\n%s", res.Stdout)
	}
	// Scanned by the digest push produced.
	if !strings.Contains(res.Summary, "### "+image) {
		t.Errorf("scan did not scan the pushed digest:\n%s", res.Summary)
	}
	// Each platform manifest carries its own vuln and SBOM attestation, and
	// the index one of each listing both platforms.
	im, _ := idx.IndexManifest()
	var subjects []string
	for _, m := range im.Manifests {
		if m.Platform.OS == "unknown" {
			continue // BuildKit's attestation manifest: nothing to scan
		}
		platform := s.reg.Host + "/chain/app@" + m.Digest.String()
		subjects = append(subjects, platform)
		types := map[string]int{}
		for _, st := range s.attestationStatements(t, platform) {
			types[st.PredicateType]++
			if st.PredicateType != "https://cosign.sigstore.dev/attestation/vuln/v1" {
				continue
			}
			var pred struct {
				Scanner struct {
					Version string          `json:"version"`
					Result  json.RawMessage `json:"result"`
				} `json:"scanner"`
			}
			json.Unmarshal(st.Predicate, &pred)
			var rep struct {
				Metadata struct{ ImageConfig struct{ Architecture string } }
			}
			json.Unmarshal(pred.Scanner.Result, &rep)
			if pred.Scanner.Version != "0.74.0" || rep.Metadata.ImageConfig.Architecture != m.Platform.Architecture {
				t.Errorf("%s: vuln predicate of scanner %q for %q", m.Platform, pred.Scanner.Version, rep.Metadata.ImageConfig.Architecture)
			}
		}
		if types["https://cosign.sigstore.dev/attestation/vuln/v1"] != 1 || types["https://cyclonedx.org/bom"] != 1 || len(types) != 2 {
			t.Errorf("%s attestations %v, want one vuln and one SBOM", m.Platform, types)
		}
	}
	subjects = append(subjects, image)
	indexTypes := map[string]int{}
	for _, st := range s.attestationStatements(t, image) {
		indexTypes[st.PredicateType]++
		if st.PredicateType == "https://cosign.sigstore.dev/attestation/vuln/v1" {
			var pred struct {
				Scanner struct {
					Result struct {
						Platforms []struct{ Platform, Digest string }
					} `json:"result"`
				} `json:"scanner"`
			}
			json.Unmarshal(st.Predicate, &pred)
			if len(pred.Scanner.Result.Platforms) != 2 {
				t.Errorf("the index's vuln predicate lists %+v, want both platforms", pred.Scanner.Result.Platforms)
			}
		}
	}
	if indexTypes["https://cosign.sigstore.dev/attestation/vuln/v1"] != 1 || indexTypes["https://cyclonedx.org/bom"] != 1 {
		t.Errorf("index attestations %v, want one of each type", indexTypes)
	}
	cmds := res.Outputs["cosign-verify-commands"]
	if !strings.Contains(cmds, "cosign verify-attestation --type=vuln --key=cosign.pub --insecure-ignore-tlog=true "+strings.Join(subjects, " ")) {
		t.Errorf("verify commands %q do not name every platform and the index", cmds)
	}
	s.noSecrets(t, res)

	verify := s.run(t, map[string]string{"stage": "verify", "images": image, "public-key": "cosign.pub", "tlog-upload": "false", "require-attestations": "vuln,sbom"})
	mustSucceed(t, "verify of every platform's attestations", verify)
}

func TestScanWithECRFindingsAfterPush(t *testing.T) {
	fake := fakeecr.Start(t)
	fake.SetPassword("ecr-registry-password")
	fake.AddRepository(fakeecr.Repository{Name: "team/app", ScanOnPush: true})
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Hostnames: []string{ecrHost}, Users: map[string]string{"AWS": "ecr-registry-password"}})
	proxy := harness.StartProxy(t)
	proxy.Route(ecrHost, reg.Host)
	ws := t.TempDir()
	if err := vulndb.WriteSampleLayout(filepath.Join(ws, "image")); err != nil {
		t.Fatal(err)
	}
	alpine, _ := vulndb.AlpineImage()
	debian, _ := vulndb.DebianImage()
	amd, _ := alpine.Digest()
	arm, _ := debian.Digest()
	fake.AddImages("team/app", fakeecr.Image{Digest: amd.String()}, fakeecr.Image{Digest: arm.String()})
	updated := time.Date(2026, 10, 30, 12, 0, 0, 0, time.UTC)
	// Right after the push, ECR has not registered the amd64 scan yet.
	fake.ScriptScan("team/app", amd.String(), fakeecr.Scan{Statuses: []string{"SCAN_NOT_FOUND", "COMPLETE"}, VulnerabilitySourceUpdatedAt: updated, Findings: []fakeecr.BasicFinding{
		{Name: "CVE-2099-0001", Severity: "CRITICAL", URI: "https://nvd.example/CVE-2099-0001", Attributes: []fakeecr.Attribute{{Key: "package_name", Value: "musl"}, {Key: "package_version", Value: "1.2.5-r10"}, {Key: "CVSS3_SCORE", Value: "9.8"}}},
		{Name: "CVE-2099-0003", Severity: "INFORMATIONAL", Attributes: []fakeecr.Attribute{{Key: "package_name", Value: "zlib"}, {Key: "package_version", Value: "1.3.1-r2"}}},
	}})
	fake.ScriptScan("team/app", arm.String(), fakeecr.Scan{VulnerabilitySourceUpdatedAt: updated, Findings: []fakeecr.BasicFinding{
		{Name: "CVE-2099-0102", Severity: "HIGH", Attributes: []fakeecr.Attribute{{Key: "package_name", Value: "libc6"}, {Key: "package_version", Value: "2.36-9+deb12u10"}}},
		{Name: "CVE-2099-0104", Severity: "UNDEFINED", Attributes: []fakeecr.Attribute{{Key: "package_name", Value: "tar"}, {Key: "package_version", Value: "1.34+dfsg-1.2+deb12u1"}}},
	}})
	env := ecrEnv(fake)
	env["SSL_CERT_FILE"], env["HTTPS_PROXY"] = reg.CAFile, proxy.URL
	res := harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: map[string]string{
		"stage": "push,scan", "source": "image", "images": ecrHost + "/team/app", "tags": "v1",
		"scanner": "ecr", "fail-on": "HIGH",
	}})
	wantExit(t, "push,scan with ECR findings", res, 3)
	if msg := oneLineError(t, res); msg != "scan failed: 1 CRITICAL, 1 HIGH (fail-on: HIGH or worse)" {
		t.Errorf("error %q", msg)
	}
	want := map[string]string{"critical": "1", "high": "1", "medium": "0", "low": "1", "unknown": "1", "fixable": "0", "result": "fail", "sarif-category": "registry-scan/team/app/"}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %s", k, res.Outputs[k], v)
		}
	}
	runs := validSARIF(t, filepath.Join(ws, res.Outputs["sarif"]))
	if len(runs) != 1 || runs[0].Tool.Driver.Name != "Amazon ECR" || len(runs[0].Results) != 4 {
		t.Errorf("SARIF runs %+v", runs)
	}
	if n := fake.Calls(fakeecr.OpDescribeImageScanFindings); n != 3 {
		t.Errorf("DescribeImageScanFindings called %d times, want 3 (amd64 twice: the scan was not registered at first)", n)
	}
	for _, want := range []string{"Amazon ECR basic scanning", "vulnerability data updated 2026-10-30 12:00 UTC", "| `linux/arm64/v8` | — | 0 | 1 | 0 | 0 | 1 | 0 |"} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	if leaks(res, "ecr-registry-password") || leaks(res, "secret-access-key-example") {
		t.Fatal("a credential reached the log")
	}

	// Outside a chain a scan ECR never registered fails at once, naming the fix.
	fake.ScriptScan("team/app", amd.String(), fakeecr.Scan{Statuses: []string{"SCAN_NOT_FOUND"}})
	idx, _ := vulndb.Index()
	d, _ := idx.Digest()
	res = harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: map[string]string{"stage": "scan", "images": ecrHost + "/team/app@" + d.String(), "scanner": "ecr"}})
	wantExit(t, "no ECR scan", res, 1)
	if msg := oneLineError(t, res); !strings.HasPrefix(msg, "scan: linux/amd64: ECR has no scan of team/app@"+amd.String()) || !strings.Contains(msg, "ecr-scan-on-push: true") {
		t.Errorf("error %q", msg)
	}
}

// TestScanAgainstATrivyServer runs the trivy CLI of the same version as a
// server (client/server mode) when TRIVY_CLI names it; the in-process
// server test in internal/scanner covers the mode without it.
func TestScanAgainstATrivyServer(t *testing.T) {
	cli := os.Getenv("TRIVY_CLI")
	if cli == "" {
		t.Skip("TRIVY_CLI is not set")
	}
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := pushSample(t, reg.Host, "team/app")
	serverCache := t.TempDir()
	if err := vulndb.SeedCache(serverCache, vulndb.MetadataAt(time.Now().Add(-2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const token = "server-token-not-for-logs"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	server := exec.CommandContext(ctx, cli, "server", "--listen", addr, "--cache-dir", serverCache, "--skip-db-update", "--token", token)
	server.Env = append(os.Environ(), "HOME="+t.TempDir())
	var serverLog bytes.Buffer
	server.Stdout, server.Stderr = &serverLog, &serverLog
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); server.Wait() })
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("trivy server did not start:\n%s", serverLog.String())
		}
	}
	ws := t.TempDir()
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "scan", "images": ref, "trivy-server": "http://" + addr, "trivy-server-token": token, "fail-on": "none",
	}})
	wantExit(t, "client/server", res, 0)
	for k, v := range sampleCounts {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %s", k, res.Outputs[k], v)
		}
	}
	if !strings.Contains(res.Summary, "from trivy server `http://"+addr+"`") || !strings.Contains(res.Summary, "(2h old)") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	if _, err := os.Stat(filepath.Join(ws, ".cache", "trivy", "db", "trivy.db")); err == nil {
		t.Error("client/server mode downloaded a DB")
	}
	if leaks(res, token) {
		t.Fatal("the server token reached the log")
	}
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{"stage": "scan", "images": ref, "trivy-server": "http://" + addr, "trivy-server-token": "wrong-token-xyz"}})
	wantExit(t, "wrong token", res, 1)
	if msg := oneLineError(t, res); !strings.Contains(msg, "rejected the token") || leaks(res, "wrong-token-xyz") {
		t.Errorf("error %q", msg)
	}
}
