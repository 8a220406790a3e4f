package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/configfixture"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/fakek8s"
	"github.com/registry-actions/registry/test/harness"
)

// configRun is a SARIF run as code scanning reads a configuration run.
type configRun struct {
	Tool struct {
		Driver struct {
			Name  string
			Rules []struct {
				ID         string
				HelpURI    string
				Help       struct{ Text string }
				Properties map[string]any
			}
		}
	}
	AutomationDetails struct{ ID string }
	Results           []struct {
		RuleID    string
		Locations []struct {
			PhysicalLocation struct {
				ArtifactLocation struct{ URI string }
				Region           struct{ StartLine, EndLine int }
			}
		}
	}
}

func configRuns(t *testing.T, path string) []configRun {
	t.Helper()
	var doc struct{ Runs []configRun }
	readSARIF(t, path, &doc)
	return doc.Runs
}

// checkUploadRules applies what code scanning checks on upload: one run per
// tool and category, and every configuration result at a file of the
// repository (a relative path that exists in the checkout) with lines.
func checkUploadRules(t *testing.T, ws string, runs []configRun, configCategory string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range runs {
		key := r.Tool.Driver.Name + " " + r.AutomationDetails.ID
		if seen[key] {
			t.Errorf("two runs of %s", key)
		}
		seen[key] = true
		if r.AutomationDetails.ID != configCategory {
			continue
		}
		if len(r.Results) == 0 {
			t.Errorf("configuration run %s has no results", configCategory)
		}
		for _, res := range r.Results {
			if len(res.Locations) != 1 {
				t.Fatalf("%s: %d locations", res.RuleID, len(res.Locations))
			}
			loc := res.Locations[0].PhysicalLocation
			uri := loc.ArtifactLocation.URI
			u, err := url.Parse(uri)
			if err != nil || u.IsAbs() || u.Host != "" || strings.HasPrefix(uri, "/") || slices.Contains(strings.Split(u.Path, "/"), "..") {
				t.Errorf("%s: location %q is not a repository-relative path", res.RuleID, uri)
				continue
			}
			if st, err := os.Stat(filepath.Join(ws, filepath.FromSlash(u.Path))); err != nil || st.IsDir() {
				t.Errorf("%s: location %q is not a file of the repository", res.RuleID, uri)
			}
			if loc.Region.StartLine < 1 || loc.Region.EndLine < loc.Region.StartLine {
				t.Errorf("%s at %s: lines %d-%d", res.RuleID, uri, loc.Region.StartLine, loc.Region.EndLine)
			}
		}
		for _, rule := range r.Tool.Driver.Rules {
			if rule.Properties["security-severity"] == nil || rule.HelpURI == "" || rule.Help.Text == "" {
				t.Errorf("rule %s lacks security-severity, help or link", rule.ID)
			}
		}
	}
}

func TestScanConfigurationAsTheRunnerWould(t *testing.T) {
	ws := t.TempDir()
	if err := configfixture.Small(ws); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, ".trivyignore"), []byte("DS-0026\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "scan", "config": ".", "fail-on": "HIGH", "severity": "HIGH,CRITICAL,MEDIUM", "skip-dirs": "charts",
	}})
	wantExit(t, "config scan with fail-on HIGH", res, 3)
	if msg := oneLineError(t, res); !strings.HasPrefix(msg, "scan failed: ") || !strings.HasSuffix(msg, " HIGH (fail-on: HIGH or worse)") {
		t.Errorf("error %q", msg)
	}
	if res.Outputs["result"] != "fail" || res.Outputs["high"] == "0" || res.Outputs["low"] != "0" ||
		res.Outputs["sarif"] != "registry-reports/scan.sarif" || res.Outputs["sarif-category"] != "registry-scan/config/" ||
		res.Outputs["json"] != "registry-reports/config.trivy.json" {
		t.Errorf("outputs %v", res.Outputs)
	}
	runs := configRuns(t, filepath.Join(ws, res.Outputs["sarif"]))
	if len(runs) != 1 || runs[0].Tool.Driver.Name != "Trivy" {
		t.Fatalf("runs %+v", runs)
	}
	checkUploadRules(t, ws, runs, "registry-scan/config/")
	var ids []string
	for _, r := range runs[0].Results {
		loc := r.Locations[0].PhysicalLocation
		ids = append(ids, fmt.Sprintf("%s@%s:%d-%d", r.RuleID, loc.ArtifactLocation.URI, loc.Region.StartLine, loc.Region.EndLine))
		if strings.HasPrefix(loc.ArtifactLocation.URI, "charts/") || r.RuleID == "DS-0026" {
			t.Errorf("%s: skipped directory or ignored check reported", ids[len(ids)-1])
		}
	}
	for _, want := range []string{"DS-0029@Dockerfile:2-2", "DS-0002@Dockerfile:1-1", "KSV-0017@deploy/k8s/deployment.yaml:17-20", "AWS-0092@infra/main.tf:7-7"} {
		if !slices.Contains(ids, want) {
			t.Errorf("SARIF lacks %s: %v", want, ids)
		}
	}
	for _, want := range []string{"## Scan", "### Configuration", "| `deploy/k8s/deployment.yaml` | kubernetes | 0 | 3 | 3 | 0 | 0 |",
		"`deploy/k8s/deployment.yaml:17-20` | Privileged |", "(fail-on: HIGH or worse)**"} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}

	// The CLI: the same scan with an image beside it, two runs in one file.
	seeded := seededWorkspace(t)
	if err := configfixture.Small(seeded); err != nil {
		t.Fatal(err)
	}
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := pushSample(t, reg.Host, "team/app")
	cli := harness.Run(t, harness.Step{Dir: seeded, Args: []string{"scan", "--config", "Dockerfile,deploy", "--images", ref, "--skip-db-update", "--fail-on", "CRITICAL"}})
	wantExit(t, "CLI config and image", cli, 3)
	for _, want := range []string{"scan failed: 2 CRITICAL (fail-on: CRITICAL)", "IMAGE", "configuration: ", "FILE", "deploy/k8s/deployment.yaml", "HIGH  DS-0002"} {
		if !strings.Contains(cli.Stdout, want) {
			t.Errorf("CLI output lacks %q:\n%s", want, cli.Stdout)
		}
	}
	runs = configRuns(t, filepath.Join(seeded, "registry-reports", "scan.sarif"))
	if len(runs) != 2 {
		t.Fatalf("%d runs, want the image's and the configuration's", len(runs))
	}
	checkUploadRules(t, seeded, runs, "registry-scan/config/")

	// A path outside the checkout is refused before anything runs.
	bad := harness.Run(t, harness.Step{Dir: ws, Args: []string{"scan", "--config", "../"}})
	wantExit(t, "config outside the checkout", bad, 2)
}

func TestScanClusterAsTheRunnerWould(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	index := pushSample(t, reg.Host, "team/app")
	idx, _ := vulndb.Index()
	tag, _ := name.NewTag(reg.Host+"/team/app:1.0", name.Insecure)
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	alpine, _ := vulndb.AlpineImage()
	worker := pushImage(t, reg.Host, "team/worker", alpine)

	k8s := fakek8s.Start(t)
	k8s.Add(
		fakek8s.Deployment("shop", "web", tag.String()),
		fakek8s.StatefulSet("shop", "db", index),
		fakek8s.DaemonSet("kube-system", "agent", worker),
		fakek8s.CronJob("batch", "report", worker),
		fakek8s.Job("batch", "migrate", tag.String()),
		fakek8s.Pod("debug", "toolbox", worker),
	)
	// What scanning the two images once fetches, from a fresh cache.
	direct := harness.Run(t, harness.Step{Dir: seededWorkspace(t), Inputs: scanInputs(index+","+worker, "fail-on", "none", "formats", "json")})
	wantExit(t, "the two images scanned directly", direct, 0)
	onceBlobs := reg.Counter.Requests("GET blobs")

	ws := seededWorkspace(t)
	k8s.WriteKubeconfig(t, filepath.Join(ws, "kubeconfig"), "staging")
	reg.Counter.Reset()

	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "scan", "kubeconfig": "kubeconfig", "skip-db-update": "true", "formats": "sarif,json",
	}})
	wantExit(t, "cluster scan", res, 3)
	if msg := oneLineError(t, res); msg != "scan failed: 2 CRITICAL (fail-on: CRITICAL)" {
		t.Errorf("error %q", msg)
	}
	// The index and the worker image, each scanned once: the blobs fetched
	// are those of one scan of each, although six workloads run them.
	if n := reg.Counter.Requests("GET blobs"); n != onceBlobs || n == 0 {
		t.Errorf("cluster scan fetched %d blobs, scanning each image once fetches %d", n, onceBlobs)
	}
	if n := res.Outputs["critical"]; n != "2" {
		t.Errorf("critical = %s", n)
	}
	for _, want := range []string{
		"### Cluster staging", "Kubernetes " + fakek8s.GitVersion, "6 workloads", "2 distinct images scanned once each",
		"| `shop` | Deployment/web | 2 | 4 | 3 | 3 | 1 |", "| `kube-system` | DaemonSet/agent | 1 | 3 | 2 | 2 | 0 |",
		"### Workload configuration (cluster staging)",
	} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	runs := configRuns(t, filepath.Join(ws, res.Outputs["sarif"]))
	var cats []string
	for _, r := range runs {
		cats = append(cats, r.AutomationDetails.ID)
	}
	if !slices.Contains(cats, "registry-scan/cluster/staging/") || len(runs) != 3 {
		t.Errorf("SARIF categories %q", cats)
	}
	if !strings.Contains(res.Outputs["json"], "registry-reports/cluster-staging.json") {
		t.Errorf("json %q", res.Outputs["json"])
	}

	// The CLI with $KUBECONFIG and one namespace.
	cli := harness.Run(t, harness.Step{Dir: ws, Env: map[string]string{"KUBECONFIG": filepath.Join(ws, "kubeconfig")},
		Args: []string{"scan", "--k8s-namespaces", "batch", "--skip-db-update", "--fail-on", "none", "--formats", "json"}})
	wantExit(t, "CLI cluster scan", cli, 0)
	for _, want := range []string{"cluster staging", "2 workloads, 2 distinct images scanned once each", "NAMESPACE", "batch      CronJob/report"} {
		if !strings.Contains(cli.Stdout, want) {
			t.Errorf("CLI output lacks %q:\n%s", want, cli.Stdout)
		}
	}
	if k8s.Requests("/apis/batch/v1/namespaces/batch/cronjobs") == 0 || k8s.Requests("/apis/apps/v1/namespaces/shop/deployments") != 0 {
		t.Error("k8s-namespaces did not restrict the listing")
	}

	bad := harness.Run(t, harness.Step{Dir: ws, Args: []string{"scan", "--kubeconfig", "kubeconfig", "--k8s-context", "prod"}})
	wantExit(t, "unknown context", bad, 2)
	if !strings.Contains(bad.Log(), `context "prod" is not in kubeconfig`) {
		t.Errorf("log:\n%s", bad.Log())
	}
}

func TestScanInspectorFindingsAsTheRunnerWould(t *testing.T) {
	fake := fakeecr.Start(t)
	pushed := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		digest := fmt.Sprintf("sha256:%064x", i+1)
		tags := []string{fmt.Sprintf("v1.%d", i)}
		for j, sev := range []string{"CRITICAL", "HIGH", "LOW"} {
			fake.AddInspectorFindings(fakeecr.InspectorFinding{Repository: "team/app", Digest: digest, Tags: tags, Architecture: "arm64",
				PushedAt: pushed.Add(time.Duration(i) * time.Hour),
				EnhancedFinding: fakeecr.EnhancedFinding{VulnerabilityID: fmt.Sprintf("CVE-2026-%04d", j), Severity: sev, Title: "openssl issue", Score: 8.1,
					SourceURL: "https://nvd.nist.gov/vuln/detail/CVE-2026-000" + fmt.Sprint(j),
					Packages:  []fakeecr.VulnerablePackage{{Name: "openssl", Version: "3.0.1", FixedInVersion: "3.0.9", PackageManager: "OS"}}}})
		}
	}
	env := ecrEnv(fake)
	env["AWS_ENDPOINT_URL_INSPECTOR2"] = fake.URL()
	ws := t.TempDir()
	res := harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: map[string]string{
		"stage": "scan", "scanner": "inspector", "images": ecrHost + "/team/app", "severity": "CRITICAL,HIGH",
	}})
	wantExit(t, "Inspector findings", res, 3)
	if msg := oneLineError(t, res); msg != "scan failed: 1 CRITICAL (fail-on: CRITICAL)" {
		t.Errorf("error %q", msg)
	}
	if res.Outputs["critical"] != "1" || res.Outputs["high"] != "1" || res.Outputs["low"] != "0" || res.Outputs["sarif-category"] != "registry-scan/team/app/" {
		t.Errorf("outputs %v", res.Outputs)
	}
	runs := validSARIF(t, filepath.Join(ws, res.Outputs["sarif"]))
	if len(runs) != 1 || runs[0].Tool.Driver.Name != "Amazon Inspector" || len(runs[0].Results) != 2 {
		t.Errorf("runs %+v", runs)
	}
	for _, want := range []string{"Amazon Inspector (ECR repository findings)", "| every image | CRITICAL, HIGH |", "Tags: `v1.2`", "### " + ecrHost + "/team/app@sha256:"} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	if n := fake.Calls(fakeecr.OpListFindings); n != 1 {
		t.Errorf("%d ListFindings calls", n)
	}
	if leaks(res, "secret-access-key-example") {
		t.Fatal("a credential reached the log")
	}

	cli := harness.Run(t, harness.Step{Dir: ws, Env: env, Args: []string{"scan", "--scanner", "inspector", "--images", ecrHost + "/team/app:v1.0", "--fail-on", "none"}})
	wantExit(t, "CLI Inspector", cli, 0)
	if !strings.Contains(cli.Stdout, "IMAGE") || !strings.Contains(cli.Stdout, "Amazon Inspector") || strings.Count(cli.Stdout, "team/app@sha256:") != 2 {
		t.Errorf("CLI output (one image, its table row and top findings):\n%s", cli.Stdout)
	}
}
