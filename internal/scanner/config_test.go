package scanner

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/test/configfixture"
	"github.com/registry-actions/registry/test/sarifschema"
)

func smallRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := configfixture.Small(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func scanRepo(t *testing.T, dir string, opts ConfigOptions, paths ...string) *ConfigResult {
	t.Helper()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var targets []ConfigTarget
	for _, p := range paths {
		targets = append(targets, ConfigTarget{Path: filepath.Join(dir, p), Name: p})
	}
	opts.Root = dir
	res, err := ScanConfig(context.Background(), targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func findingAt(res *ConfigResult, id, file string) (Finding, bool) {
	for _, f := range append(slices.Clone(res.Findings), res.HiddenBySeverity...) {
		if f.ID == id && f.PkgPath == file {
			return f, true
		}
	}
	return Finding{}, false
}

func TestConfigScanDetectsEachFileTypeWithTrivysLines(t *testing.T) {
	res := scanRepo(t, smallRepo(t), ConfigOptions{})
	types := map[string]string{}
	for _, f := range res.Files {
		types[f.Path] = f.Type
	}
	for file, typ := range map[string]string{
		configfixture.Dockerfile:                           "dockerfile",
		configfixture.Clean:                                "dockerfile",
		configfixture.Deployment:                           "kubernetes",
		configfixture.Chart + "/templates/deployment.yaml": "helm",
		configfixture.Terraform:                            "terraform",
		configfixture.CFN:                                  "cloudformation",
	} {
		if types[file] != typ {
			t.Errorf("%s detected as %q, want %q (files %v)", file, types[file], typ, types)
		}
	}
	if _, ok := types[configfixture.Compose]; ok {
		t.Errorf("Trivy has no Compose checks, yet %s is listed", configfixture.Compose)
	}
	for _, want := range []struct {
		id, file   string
		start, end int
		severity   string
	}{
		{"DS-0029", configfixture.Dockerfile, 2, 2, "HIGH"},
		{"DS-0001", configfixture.Dockerfile, 1, 1, "MEDIUM"},
		{"DS-0002", configfixture.Dockerfile, 0, 0, "HIGH"}, // no USER: no line
		{"KSV-0017", configfixture.Deployment, 17, 20, "HIGH"},
		{"AWS-0092", configfixture.Terraform, 7, 7, "HIGH"},
		{"AWS-0092", configfixture.CFN, 6, 6, "HIGH"},
		{"KSV-0009", configfixture.Chart + "/templates/deployment.yaml", 6, 18, "HIGH"},
	} {
		f, ok := findingAt(res, want.id, want.file)
		if !ok {
			t.Errorf("%s in %s not found", want.id, want.file)
			continue
		}
		if f.Line != want.start || f.EndLine != want.end || f.Severity != want.severity || f.Kind != KindMisconfiguration ||
			!strings.HasPrefix(f.PrimaryURL, "https://") || f.Title == "" || f.Resolution == "" {
			t.Errorf("%s in %s: %+v, want lines %d-%d %s", want.id, want.file, f, want.start, want.end, want.severity)
		}
	}
	for _, f := range res.Files {
		if f.Path == configfixture.Clean && f.Counts.Total() != 0 {
			t.Errorf("the clean Dockerfile has findings: %+v", f.Counts)
		}
	}
	if res.Checks.Source != ChecksEmbedded || res.Counts.Total() != len(res.Findings) {
		t.Errorf("checks %+v, counts %+v for %d findings", res.Checks, res.Counts, len(res.Findings))
	}
}

func TestConfigPathsNameRepositoryFiles(t *testing.T) {
	dir := smallRepo(t)
	whole := scanRepo(t, dir, ConfigOptions{})
	parts := scanRepo(t, dir, ConfigOptions{}, "deploy", "Dockerfile", "infra/main.tf")
	var files []string
	for _, f := range parts.Files {
		files = append(files, f.Path)
	}
	want := []string{configfixture.Dockerfile, configfixture.Deployment, "infra", configfixture.Terraform}
	for _, w := range want {
		if !slices.Contains(files, w) {
			t.Errorf("files %q lack %q", files, w)
		}
	}
	if _, ok := findingAt(parts, "KSV-0017", configfixture.Deployment); !ok {
		t.Errorf("a directory's findings are not named from the repository root: %v", files)
	}
	// Overlapping paths report each file once.
	both := scanRepo(t, dir, ConfigOptions{}, ".", "deploy")
	if len(both.Findings) != len(whole.Findings) {
		t.Errorf(". and deploy: %d findings, . alone: %d", len(both.Findings), len(whole.Findings))
	}
}

func TestConfigInlineIgnore(t *testing.T) {
	dir := smallRepo(t)
	inline := "# trivy:ignore:DS-0001\nFROM alpine:latest\nCMD [\"true\"]\n"
	if err := os.MkdirAll(filepath.Join(dir, "inline"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inline", "Dockerfile"), []byte(inline), 0o644); err != nil {
		t.Fatal(err)
	}
	res := scanRepo(t, dir, ConfigOptions{}, "Dockerfile", "inline")
	if _, ok := findingAt(res, "DS-0001", "inline/Dockerfile"); ok {
		t.Error("a trivy:ignore comment did not apply")
	}
	if _, ok := findingAt(res, "DS-0001", configfixture.Dockerfile); !ok {
		t.Error("DS-0001 without the comment is gone too")
	}
	if _, ok := findingAt(res, "DS-0002", "inline/Dockerfile"); !ok {
		t.Error("the comment ignored more than its check")
	}
}

func TestConfigIgnoreSkipAndSeverity(t *testing.T) {
	dir := smallRepo(t)
	ignore := filepath.Join(dir, ".trivyignore")
	if err := os.WriteFile(ignore, []byte("DS-0002\nAVD-KSV-0017\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := scanRepo(t, dir, ConfigOptions{IgnoreFile: ignore, SkipDirs: []string{"infra"}, SkipFiles: []string{"**/values.yaml", "charts/web/templates/deployment.yaml"}, Severities: []string{"HIGH", "CRITICAL"}})
	if _, ok := findingAt(res, "DS-0002", configfixture.Dockerfile); ok {
		t.Error("DS-0002 is in the ignore file")
	}
	if _, ok := findingAt(res, "KSV-0017", configfixture.Deployment); ok {
		t.Error("AVD-KSV-0017 is in the ignore file")
	}
	for _, f := range res.Files {
		if strings.HasPrefix(f.Path, "infra") || strings.HasPrefix(f.Path, "charts/") {
			t.Errorf("%s is under a skipped directory or a skipped file", f.Path)
		}
	}
	for _, f := range res.Findings {
		if f.Severity != "HIGH" && f.Severity != "CRITICAL" {
			t.Errorf("reported %s %s", f.Severity, f.ID)
		}
	}
	if _, ok := findingAt(res, "DS-0001", configfixture.Dockerfile); !ok || len(res.HiddenBySeverity) == 0 {
		t.Fatal("MEDIUM and LOW failures must stay visible to the gate")
	}
	r, _ := NewResult([]string{"HIGH", "CRITICAL"})
	r.AddConfig(res)
	failed, verdict, err := Gate(r, []string{"MEDIUM"})
	if err != nil || !failed || !strings.Contains(verdict, "MEDIUM not listed because severity excludes it") {
		t.Errorf("gate: %v %q %v", failed, verdict, err)
	}
	if r.Counts.High == 0 || r.Counts.Medium != 0 || r.Counts.Total() != len(res.Findings) {
		t.Errorf("counts %+v", r.Counts)
	}
}

func TestConfigSARIFAnnotatesRepositoryFiles(t *testing.T) {
	res := scanRepo(t, smallRepo(t), ConfigOptions{})
	r, _ := NewResult(nil)
	r.AddConfig(res)
	var buf bytes.Buffer
	if _, err := WriteSARIF(&buf, r, SARIFOptions{ConfigCategory: ConfigCategoryWithPrefix("team")}); err != nil {
		t.Fatal(err)
	}
	if err := sarifschema.Validate(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			AutomationDetails struct{ ID string }
			Tool              struct {
				Driver struct {
					Rules []struct {
						ID         string
						HelpURI    string
						Help       struct{ Text, Markdown string }
						Properties map[string]any
					}
				}
			}
			Results []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine, EndLine int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 1 || doc.Runs[0].AutomationDetails.ID != "team/config/" {
		t.Fatalf("runs %+v", doc.Runs)
	}
	run := doc.Runs[0]
	if len(run.Results) != len(res.Findings) {
		t.Errorf("%d results for %d findings", len(run.Results), len(res.Findings))
	}
	sawDS0029 := false
	for _, r := range run.Results {
		if len(r.Locations) != 1 {
			t.Fatalf("%s: %d locations", r.RuleID, len(r.Locations))
		}
		loc := r.Locations[0].PhysicalLocation
		assertRepositoryPath(t, loc.ArtifactLocation.URI)
		if loc.Region.StartLine < 1 || loc.Region.EndLine < loc.Region.StartLine {
			t.Errorf("%s at %s: lines %d-%d", r.RuleID, loc.ArtifactLocation.URI, loc.Region.StartLine, loc.Region.EndLine)
		}
		if r.RuleID == "DS-0029" && loc.ArtifactLocation.URI == "Dockerfile" && loc.Region.StartLine == 2 && loc.Region.EndLine == 2 {
			sawDS0029 = true
		}
		if r.RuleID == "KSV-0017" && (loc.ArtifactLocation.URI != configfixture.Deployment || loc.Region.StartLine != 17 || loc.Region.EndLine != 20) {
			t.Errorf("KSV-0017 at %+v", loc)
		}
	}
	if !sawDS0029 {
		t.Error("DS-0029 is not at Dockerfile line 2")
	}
	for _, rule := range run.Tool.Driver.Rules {
		if rule.Properties["security-severity"] == nil || !strings.HasPrefix(rule.HelpURI, "https://") ||
			!strings.Contains(rule.Help.Text, "Resolution:") || !strings.Contains(rule.Help.Markdown, rule.HelpURI) {
			t.Errorf("rule %s: %+v", rule.ID, rule)
		}
	}
}

// assertRepositoryPath fails unless uri is a relative path inside the
// repository: what code scanning needs to place an alert on a file.
func assertRepositoryPath(t *testing.T, uri string) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil || u.IsAbs() || u.Host != "" || uri == "" || strings.HasPrefix(uri, "/") || strings.HasPrefix(uri, "../") || strings.Contains(uri, "/../") || strings.Contains(uri, `\`) {
		t.Errorf("location %q is not a repository-relative path", uri)
	}
}

func TestConfigAndImageRunsKeepDistinctCategories(t *testing.T) {
	res := scanRepo(t, smallRepo(t), ConfigOptions{}, "Dockerfile")
	r := &Result{Images: []ImageResult{{Reference: "r.example/config@sha256:aa", Repository: "r.example/config", Digest: "sha256:aa"}}}
	r.AddConfig(res)
	images, configs := SARIFCategories(r, SARIFOptions{}), SARIFConfigCategories(r, SARIFOptions{})
	if configs[0] != "registry-scan/config/" || images[0] == configs[0] {
		t.Errorf("image categories %q, config categories %q", images, configs)
	}
}

// checksBundle is an OCI artifact of Trivy's checks bundle format holding
// one check of its own (DS-9999: alpine base images), so a scan proves
// which checks ran.
func checksBundle(t *testing.T) []byte {
	t.Helper()
	const check = `# METADATA
# title: Alpine base image
# description: A check from a test bundle.
# scope: package
# custom:
#   id: DS-9999
#   avd_id: AVD-DS-9999
#   severity: CRITICAL
#   short_code: no-alpine
#   recommended_action: Use another base image.
#   input:
#     selector:
#     - type: dockerfile
package builtin.dockerfile.DS9999

import rego.v1

deny contains res if {
	some stage in input.Stages
	some cmd in stage.Commands
	cmd.Cmd == "from"
	startswith(cmd.Value[0], "alpine")
	res := result.new("alpine base image", cmd)
}
`
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "checks/docker/ds9999.rego", Mode: 0o644, Size: int64(len(check))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(check))
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func pushBundle(t *testing.T, host string, data []byte) string {
	t.Helper()
	layer := static.NewLayer(data, "application/vnd.cncf.openpolicyagent.layer.v1.tar+gzip")
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, Annotations: map[string]string{"org.opencontainers.image.title": "bundle.tar.gz"}})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.cncf.openpolicyagent.config.v1+json")
	img = mutate.Annotations(img, map[string]string{"org.opencontainers.image.version": "2.0.0"}).(v1.Image)
	ref := host + "/aquasec/trivy-checks:2"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestChecksBundleFromMirrorsWithFallback(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	good := pushBundle(t, host, checksBundle(t))
	bad := strings.TrimPrefix(down.URL, "http://") + "/aquasec/trivy-checks:2"
	dir, cache := smallRepo(t), t.TempDir()
	opts := ConfigOptions{CacheDir: cache, ChecksBundleRepositories: []string{bad, good},
		InsecureRegistries: []string{strings.TrimPrefix(down.URL, "http://"), host}}

	res := scanRepo(t, dir, opts, "Dockerfile")
	if _, ok := findingAt(res, "DS-9999", configfixture.Dockerfile); !ok {
		t.Fatalf("the bundle's check did not run: %+v", res.Findings)
	}
	if _, ok := findingAt(res, "DS-0029", configfixture.Dockerfile); ok {
		t.Error("embedded checks ran beside the bundle")
	}
	if res.Checks.Source != good || !res.Checks.Downloaded || !strings.HasPrefix(res.Checks.Version, "sha256:") ||
		len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "fell back to "+good) || !strings.Contains(res.Warnings[0], "HTTP 503") {
		t.Errorf("checks %+v, warnings %q", res.Checks, res.Warnings)
	}

	// The next scan finds the same digest cached and downloads nothing.
	again := scanRepo(t, dir, ConfigOptions{CacheDir: cache, ChecksBundleRepositories: []string{good}, InsecureRegistries: []string{host}}, "Dockerfile")
	if again.Checks.Downloaded || again.Checks.Version != res.Checks.Version {
		t.Errorf("second scan: %+v", again.Checks)
	}

	// Nothing answers: the cached bundle; with no cache, the embedded checks.
	offline := scanRepo(t, dir, ConfigOptions{CacheDir: cache, ChecksBundleRepositories: []string{bad}, InsecureRegistries: []string{strings.TrimPrefix(down.URL, "http://")}}, "Dockerfile")
	if _, ok := findingAt(offline, "DS-9999", configfixture.Dockerfile); !ok || len(offline.Warnings) != 1 || !strings.Contains(offline.Warnings[0], "using the bundle cached in") {
		t.Errorf("offline with a cache: %+v %q", offline.Checks, offline.Warnings)
	}
	bare := scanRepo(t, dir, ConfigOptions{CacheDir: t.TempDir(), ChecksBundleRepositories: []string{bad}, InsecureRegistries: []string{strings.TrimPrefix(down.URL, "http://")}}, "Dockerfile")
	if _, ok := findingAt(bare, "DS-0029", configfixture.Dockerfile); !ok || bare.Checks.Source != ChecksEmbedded ||
		len(bare.Warnings) != 1 || !strings.Contains(bare.Warnings[0], "using the checks embedded in this build") {
		t.Errorf("offline without a cache: %+v %q", bare.Checks, bare.Warnings)
	}
}

// Every configuration analyzer Trivy has is in exactly one group: a new
// file type in a Trivy upgrade must not go unscanned.
func TestConfigGroupsCoverEveryConfigAnalyzer(t *testing.T) {
	seen := map[string]int{}
	for _, g := range configGroups {
		for _, a := range g {
			seen[string(a)]++
		}
	}
	for _, a := range analyzer.TypeConfigFiles {
		if seen[string(a)] != 1 {
			t.Errorf("analyzer %s is in %d groups", a, seen[string(a)])
		}
	}
	if len(seen) != len(analyzer.TypeConfigFiles) {
		t.Errorf("groups hold %d analyzers, Trivy has %d configuration analyzers", len(seen), len(analyzer.TypeConfigFiles))
	}
}
