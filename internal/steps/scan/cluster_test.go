package scan

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/test/fakek8s"
)

func TestClusterScanScansEachDigestOnceAndTabulatesWorkloads(t *testing.T) {
	host := startRegistry(t)
	index := pushIndex(t, host, "team/app")
	tag, _ := name.NewTag(host+"/team/app:1", name.Insecure)
	idx, _ := vulndb.Index()
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	alpine, _ := vulndb.AlpineImage()
	worker, _ := name.NewTag(host+"/team/worker:2", name.Insecure)
	if err := remote.Write(worker, alpine); err != nil {
		t.Fatal(err)
	}

	k8s := fakek8s.Start(t)
	k8s.Add(
		fakek8s.Deployment("shop", "web", tag.String()),
		fakek8s.StatefulSet("shop", "cache", index.String()), // the same image by digest
		fakek8s.CronJob("batch", "report", worker.String()),
		fakek8s.Pod("debug", "toolbox", tag.String(), worker.String()),
		fakek8s.Deployment("shop", "broken", host+"/team/missing:1"),
	)
	kubeconfig := k8s.WriteKubeconfig(t, filepath.Join(t.TempDir(), "kubeconfig"), "ci")

	opts := options(t)
	opts.Cluster = &ClusterOptions{Kubeconfig: []string{kubeconfig}}
	opts.FailOn = []string{"none"}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Cluster
	if c == nil || c.Images != 2 || len(res.Scan.Images) != 2 || len(c.Workloads) != 5 {
		t.Fatalf("cluster %+v, %d images scanned", c, len(res.Scan.Images))
	}
	byID := map[string]WorkloadReport{}
	for _, w := range c.Workloads {
		byID[w.ID()] = w
	}
	web, cache, toolbox := byID["shop/Deployment/web"], byID["shop/StatefulSet/cache"], byID["debug/Pod/toolbox"]
	if web.Digests[0] != index.DigestStr() || cache.Digests[0] != index.DigestStr() {
		t.Errorf("a tag and a digest of one image resolve apart: %v %v", web.Digests, cache.Digests)
	}
	// The index's findings: 2 CRITICAL, 4 HIGH, 3 MEDIUM, 3 LOW, 1 UNKNOWN.
	if v := web.Vulnerabilities; v.Critical != 2 || v.High != 4 || v.Unknown != 1 {
		t.Errorf("web vulnerabilities %+v", v)
	}
	// The pod runs the index and its amd64 image: shared findings count once.
	if toolbox.Vulnerabilities != web.Vulnerabilities {
		t.Errorf("toolbox %+v, web %+v", toolbox.Vulnerabilities, web.Vulnerabilities)
	}
	if web.Misconfigurations.Total() == 0 || web.Misconfigurations.High == 0 {
		t.Errorf("the web Deployment's own checks found nothing: %+v", web.Misconfigurations)
	}
	broken := byID["shop/Deployment/broken"]
	if broken.Digests[0] != "" || len(c.Unscanned) != 1 || !strings.Contains(c.Unscanned[0], "team/missing:1") {
		t.Errorf("unresolvable image: %+v, unscanned %q", broken, c.Unscanned)
	}
	// Workloads' findings are named after the workload and gate like any.
	if len(res.Scan.Config) != 1 || res.Scan.Config[0].ID != "cluster/ci" {
		t.Fatalf("config scans %+v", res.Scan.Config)
	}
	for _, f := range res.Scan.Config[0].Findings {
		if !strings.Contains(f.PkgPath, "/") || strings.HasSuffix(f.PkgPath, ".yaml") {
			t.Errorf("workload finding named %q", f.PkgPath)
		}
	}
	out := outputs(res)
	if out["sarif-category"] != "registry-scan/" {
		t.Errorf("sarif-category %q", out["sarif-category"])
	}
	var md report.Markdown
	res.Summary(&md)
	s := md.String()
	for _, want := range []string{
		"### Cluster ci", "Kubernetes " + fakek8s.GitVersion, "2 distinct images scanned once each",
		"| Namespace | Workload | Vuln C | Vuln H | Vuln M | Vuln L | Vuln U | Misconf C |",
		"| `shop` | Deployment/web | 2 | 4 | 3 | 3 | 1 |", "Deployment/broken ⚠️",
		"### Workload configuration (cluster ci)", "shop/Deployment/web:",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	var text strings.Builder
	res.Text(&text)
	if !strings.Contains(text.String(), "NAMESPACE") || !strings.Contains(text.String(), "Deployment/web") {
		t.Errorf("text:\n%s", text.String())
	}
	var clusterJSON string
	for _, f := range res.JSON {
		if strings.HasSuffix(f, "cluster-ci.json") {
			clusterJSON = f
		}
	}
	data, err := os.ReadFile(filepath.Join(opts.WorkDir, clusterJSON))
	if err != nil || !json.Valid(data) || !strings.Contains(string(data), `"kind": "CronJob"`) {
		t.Errorf("cluster JSON %q: %v", clusterJSON, err)
	}
}

func TestClusterErrors(t *testing.T) {
	k8s := fakek8s.Start(t)
	kubeconfig := k8s.WriteKubeconfig(t, filepath.Join(t.TempDir(), "kubeconfig"), "ci")
	opts := options(t)
	opts.Cluster = &ClusterOptions{Kubeconfig: []string{kubeconfig}, Context: "prod"}
	_, err := Run(context.Background(), opts)
	if failure.Code(err) != failure.ExitInvalid || !strings.Contains(err.Error(), `context "prod" is not in kubeconfig`) {
		t.Errorf("unknown context: %v (exit %d)", err, failure.Code(err))
	}
	k8s.Forbid("deployments", "")
	opts.Cluster.Context = ""
	_, err = Run(context.Background(), opts)
	var gate *failure.GateError
	if err == nil || errors.As(err, &gate) || failure.Code(err) != 1 || !strings.Contains(err.Error(), "forbids this identity") {
		t.Errorf("forbidden: %v (exit %d)", err, failure.Code(err))
	}
	opts.Cluster.Context = ""
	opts.Scanner = ScannerECR
	_, err = Run(context.Background(), opts)
	if failure.Code(err) != failure.ExitInvalid {
		t.Errorf("cluster with scanner ecr: %v", err)
	}
}
