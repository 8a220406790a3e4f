package k8s

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/registry-actions/registry/test/fakek8s"
)

func seeded(t *testing.T) (*fakek8s.Server, string) {
	t.Helper()
	srv := fakek8s.Start(t)
	job := fakek8s.Job("batch", "nightly-28", "registry.example/app/worker:1")
	fakek8s.OwnedBy(&job.ObjectMeta, "CronJob", "nightly")
	owned := fakek8s.Pod("shop", "web-7d9f-abcde", "registry.example/app/web:1")
	fakek8s.OwnedBy(&owned.ObjectMeta, "ReplicaSet", "web-7d9f")
	srv.Add(
		fakek8s.Deployment("shop", "web", "registry.example/app/web:1", "registry.example/app/sidecar:2"),
		fakek8s.StatefulSet("shop", "db", "registry.example/app/db:16"),
		fakek8s.DaemonSet("kube-system", "agent", "registry.example/app/agent:3"),
		fakek8s.CronJob("batch", "nightly", "registry.example/app/worker:1"),
		job,
		fakek8s.Job("batch", "migrate", "registry.example/app/web:1"),
		fakek8s.Pod("debug", "toolbox", "registry.example/app/toolbox:latest"),
		owned,
	)
	return srv, srv.WriteKubeconfig(t, filepath.Join(t.TempDir(), "kubeconfig"), "ci")
}

func TestListEveryWorkloadKindThroughClientGo(t *testing.T) {
	srv, kubeconfig := seeded(t)
	inv, err := List(context.Background(), Options{Kubeconfig: []string{kubeconfig}, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range inv.Workloads {
		got = append(got, w.ID()+"="+strings.Join(w.Images(), "+"))
	}
	want := []string{
		"batch/CronJob/nightly=registry.example/app/worker:1",
		"batch/Job/migrate=registry.example/app/web:1",
		"debug/Pod/toolbox=registry.example/app/toolbox:latest",
		"kube-system/DaemonSet/agent=registry.example/app/agent:3",
		"shop/Deployment/web=registry.example/app/web:1+registry.example/app/sidecar:2",
		"shop/StatefulSet/db=registry.example/app/db:16",
	}
	if !slices.Equal(got, want) {
		t.Errorf("workloads\n got %q\nwant %q", got, want)
	}
	if inv.Cluster.Context != "ci" || inv.Cluster.Version != fakek8s.GitVersion || inv.Cluster.Server != srv.URL() {
		t.Errorf("cluster %+v", inv.Cluster)
	}
	// Page size 1: two jobs take two pages plus the empty end.
	if n := srv.Requests("/apis/batch/v1/jobs"); n != 2 {
		t.Errorf("jobs listed in %d requests, want 2 pages", n)
	}
	var web Workload
	for _, w := range inv.Workloads {
		if w.Name == "web" {
			web = w
		}
	}
	m := string(web.Manifest)
	for _, want := range []string{"apiVersion: apps/v1", "kind: Deployment", "namespace: shop", "image: registry.example/app/web:1"} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "last-applied-configuration") || strings.Contains(m, "resourceVersion") {
		t.Errorf("manifest keeps server bookkeeping:\n%s", m)
	}
}

func TestListNamedNamespacesOnly(t *testing.T) {
	srv, kubeconfig := seeded(t)
	inv, err := List(context.Background(), Options{Kubeconfig: []string{kubeconfig}, Namespaces: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Workloads) != 2 || srv.Requests("/apis/apps/v1/deployments") != 0 || srv.Requests("/apis/apps/v1/namespaces/shop/deployments") != 1 {
		t.Errorf("workloads %+v", inv.Workloads)
	}
}

func TestListSkipsKindsTheServerDoesNotServe(t *testing.T) {
	srv, kubeconfig := seeded(t)
	srv.DropGroupVersion("batch/v1")
	inv, err := List(context.Background(), Options{Kubeconfig: []string{kubeconfig}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inv.Cluster.Skipped, []string{KindCronJob, KindJob}) || srv.Requests("/apis/batch/v1/jobs") != 0 {
		t.Errorf("skipped %v", inv.Cluster.Skipped)
	}
}

func TestListErrorsNameTheFix(t *testing.T) {
	srv, kubeconfig := seeded(t)
	_, err := List(context.Background(), Options{Kubeconfig: []string{kubeconfig}, Context: "prod"})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `context "prod" is not in kubeconfig`) || !strings.Contains(err.Error(), "one of: ci") {
		t.Errorf("unknown context: %v", err)
	}
	_, err = List(context.Background(), Options{Kubeconfig: []string{filepath.Join(t.TempDir(), "missing")}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "no kubeconfig file at") {
		t.Errorf("missing kubeconfig: %v", err)
	}
	srv.Forbid("pods", "")
	_, err = List(context.Background(), Options{Kubeconfig: []string{kubeconfig}})
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "set k8s-namespaces") {
		t.Errorf("forbidden: %v", err)
	}
}
