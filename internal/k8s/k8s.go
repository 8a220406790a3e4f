// Package k8s lists what runs in a Kubernetes cluster through client-go:
// the workloads (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs and
// bare Pods) of every namespace or of the namespaces named, the images of
// their containers, and each workload as a manifest for configuration
// checks. It reads the cluster and never writes to it.
package k8s

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
	typedbatchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/registry-actions/registry/internal/report"
)

// Kinds of workloads listed, in the order the report lists them.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindCronJob     = "CronJob"
	KindJob         = "Job"
	KindPod         = "Pod"
)

// Kinds lists every workload kind, in report order.
var Kinds = []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindCronJob, KindJob, KindPod}

// Error kinds; test with errors.Is.
var (
	// ErrConfig: no usable kubeconfig, or the context is not in it.
	ErrConfig = errors.New("kubeconfig unusable")
	// ErrDenied: the cluster refused the credentials or their permissions.
	ErrDenied = errors.New("cluster refused access")
	// ErrUnavailable: the API server could not be reached or failed.
	ErrUnavailable = errors.New("cluster unavailable")
)

// Error is a failure to list the cluster, one line naming the fix.
type Error struct {
	Kind error
	Msg  string
	Err  error
}

func (e *Error) Error() string { return report.OneLine(e.Msg) }
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Options say which cluster and namespaces.
type Options struct {
	// Kubeconfig lists kubeconfig files, merged as kubectl merges
	// $KUBECONFIG; empty means $KUBECONFIG, then ~/.kube/config.
	Kubeconfig []string
	// Context is the kubeconfig context; empty means its current context.
	Context string
	// Namespaces to list; empty means every namespace.
	Namespaces []string
	// UserAgent is sent with every request.
	UserAgent string
	// PageSize bounds each list request (default 500), as kubectl pages.
	PageSize int64
}

// Cluster describes the cluster listed.
type Cluster struct {
	Context string `json:"context"`
	Server  string `json:"server"`
	Version string `json:"version,omitempty"`
	// Namespaces lists the namespaces asked for; empty means all.
	Namespaces []string `json:"namespaces,omitempty"`
	// Skipped names workload kinds the API server does not serve.
	Skipped []string `json:"skipped,omitempty"`
}

// Container is one container of a workload.
type Container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	// Init is true for init containers (ephemeral ones of pods too).
	Init bool `json:"init,omitempty"`
}

// Workload is one workload and its containers.
type Workload struct {
	Namespace  string      `json:"namespace"`
	Kind       string      `json:"kind"`
	Name       string      `json:"name"`
	Containers []Container `json:"containers"`
	// Manifest is the workload as YAML (apiVersion, kind, metadata, spec),
	// what Trivy's Kubernetes checks read.
	Manifest []byte `json:"-"`
}

// ID is namespace/Kind/name.
func (w Workload) ID() string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

// Images are the workload's distinct image references, in container order.
func (w Workload) Images() []string {
	var out []string
	for _, c := range w.Containers {
		if c.Image != "" && !slices.Contains(out, c.Image) {
			out = append(out, c.Image)
		}
	}
	return out
}

// Inventory is what List found.
type Inventory struct {
	Cluster   Cluster    `json:"cluster"`
	Workloads []Workload `json:"workloads"`
}

// List connects with the kubeconfig, asks discovery which workload kinds
// the server serves, and lists them. Pods and Jobs a controller owns are
// left out: their owner is listed.
func List(ctx context.Context, opts Options) (*Inventory, error) {
	cfg, cluster, err := restConfig(opts)
	if err != nil {
		return nil, err
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 500
	}
	inv := &Inventory{Cluster: cluster}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, &Error{Kind: ErrConfig, Err: err, Msg: fmt.Sprintf("kubeconfig context %s: %v: fix the kubeconfig", cluster.Context, err)}
	}
	if v, err := dc.ServerVersion(); err == nil {
		inv.Cluster.Version = v.GitVersion
	} else {
		return nil, apiError(cluster, "read the server version", err)
	}
	served, err := servedKinds(dc)
	if err != nil {
		return nil, apiError(cluster, "discover the API", err)
	}
	for _, k := range Kinds {
		if !served[k] {
			inv.Cluster.Skipped = append(inv.Cluster.Skipped, k)
		}
	}
	apps, err := typedappsv1.NewForConfig(cfg)
	if err != nil {
		return nil, &Error{Kind: ErrConfig, Err: err, Msg: fmt.Sprintf("kubeconfig context %s: %v: fix the kubeconfig", cluster.Context, err)}
	}
	batch, err := typedbatchv1.NewForConfig(cfg)
	if err != nil {
		return nil, &Error{Kind: ErrConfig, Err: err, Msg: fmt.Sprintf("kubeconfig context %s: %v: fix the kubeconfig", cluster.Context, err)}
	}
	core, err := typedcorev1.NewForConfig(cfg)
	if err != nil {
		return nil, &Error{Kind: ErrConfig, Err: err, Msg: fmt.Sprintf("kubeconfig context %s: %v: fix the kubeconfig", cluster.Context, err)}
	}
	l := lister{apps: apps, batch: batch, core: core, page: opts.PageSize, cluster: cluster}
	namespaces := opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		for _, k := range Kinds {
			if !served[k] {
				continue
			}
			ws, err := l.list(ctx, k, ns)
			if err != nil {
				return nil, err
			}
			inv.Workloads = append(inv.Workloads, ws...)
		}
	}
	slices.SortStableFunc(inv.Workloads, func(a, b Workload) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		if c := slices.Index(Kinds, a.Kind) - slices.Index(Kinds, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return inv, nil
}

// restConfig loads the kubeconfig the way kubectl does.
func restConfig(opts Options) (*rest.Config, Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if len(opts.Kubeconfig) > 0 {
		rules.Precedence = opts.Kubeconfig
		rules.ExplicitPath = ""
	}
	// kubectl skips missing files in $KUBECONFIG silently; with none left
	// the message should say so rather than "no current context".
	if !slices.ContainsFunc(rules.GetLoadingPrecedence(), fileExists) {
		return nil, Cluster{}, &Error{Kind: ErrConfig, Msg: fmt.Sprintf("no kubeconfig file at %s: set kubeconfig (or KUBECONFIG) to the cluster's kubeconfig file",
			orNone(strings.Join(rules.GetLoadingPrecedence(), string(filepath.ListSeparator))))}
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := cc.RawConfig()
	where := strings.Join(rules.GetLoadingPrecedence(), string(filepath.ListSeparator))
	if err != nil {
		return nil, Cluster{}, &Error{Kind: ErrConfig, Err: err, Msg: fmt.Sprintf("kubeconfig %s cannot be read (%v): set kubeconfig to a readable kubeconfig file", where, err)}
	}
	name := opts.Context
	if name == "" {
		name = raw.CurrentContext
	}
	if name == "" {
		return nil, Cluster{}, &Error{Kind: ErrConfig, Msg: fmt.Sprintf("kubeconfig %s has no current context: set k8s-context to one of its contexts", orNone(where))}
	}
	kctx, ok := raw.Contexts[name]
	if !ok {
		var names []string
		for n := range raw.Contexts {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, Cluster{}, &Error{Kind: ErrConfig, Msg: fmt.Sprintf("context %q is not in kubeconfig %s: set k8s-context to one of: %s", name, orNone(where), orNone(strings.Join(names, ", ")))}
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, Cluster{}, &Error{Kind: ErrConfig, Err: err, Msg: fmt.Sprintf("kubeconfig context %s is unusable (%v): fix the kubeconfig", name, err)}
	}
	if opts.UserAgent != "" {
		cfg.UserAgent = opts.UserAgent
	}
	// List requests come in bursts (kinds × namespaces); client-go's default
	// of 5 per second would make a scan of many namespaces wait for nothing.
	cfg.QPS, cfg.Burst = 50, 100
	cluster := Cluster{Context: name, Server: cfg.Host, Namespaces: opts.Namespaces}
	if c, ok := raw.Clusters[kctx.Cluster]; ok && c.Server != "" {
		cluster.Server = c.Server
	}
	if u, err := url.Parse(cluster.Server); err == nil {
		u.User = nil
		cluster.Server = u.String()
	}
	return cfg, cluster, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// servedKinds asks discovery which workload kinds the server serves.
func servedKinds(dc discovery.DiscoveryInterface) (map[string]bool, error) {
	out := map[string]bool{}
	for gv, kinds := range map[string]map[string]string{
		"apps/v1":  {"deployments": KindDeployment, "statefulsets": KindStatefulSet, "daemonsets": KindDaemonSet},
		"batch/v1": {"jobs": KindJob, "cronjobs": KindCronJob},
		"v1":       {"pods": KindPod},
	} {
		list, err := dc.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, r := range list.APIResources {
			if k, ok := kinds[r.Name]; ok && slices.Contains(r.Verbs, "list") {
				out[k] = true
			}
		}
	}
	return out, nil
}

func apiError(c Cluster, what string, err error) error {
	msg := report.Clip(report.OneLine(err.Error()), 300)
	switch {
	case apierrors.IsUnauthorized(err):
		return &Error{Kind: ErrDenied, Err: err, Msg: fmt.Sprintf("cluster %s (context %s) refused the credentials to %s (%s): renew the kubeconfig's credentials", c.Server, c.Context, what, msg)}
	case apierrors.IsForbidden(err):
		return &Error{Kind: ErrDenied, Err: err, Msg: fmt.Sprintf("cluster %s (context %s) forbids this identity to %s (%s): grant it get/list on workloads, or set k8s-namespaces to namespaces it may list", c.Server, c.Context, what, msg)}
	}
	return &Error{Kind: ErrUnavailable, Err: err, Msg: fmt.Sprintf("cluster %s (context %s): cannot %s (%s): check the API server is reachable from here", c.Server, c.Context, what, msg)}
}

type lister struct {
	apps    typedappsv1.AppsV1Interface
	batch   typedbatchv1.BatchV1Interface
	core    typedcorev1.CoreV1Interface
	page    int64
	cluster Cluster
}

// list lists one kind in one namespace (or all), page by page.
func (l lister) list(ctx context.Context, kind, ns string) ([]Workload, error) {
	var out []Workload
	var err error
	switch kind {
	case KindDeployment:
		out, err = pages(ctx, l.page, l.apps.Deployments(ns).List, func(o *appsv1.Deployment) (Workload, bool) {
			return workload(kind, "apps/v1", &o.ObjectMeta, o.Spec, o.Spec.Template.Spec), true
		})
	case KindStatefulSet:
		out, err = pages(ctx, l.page, l.apps.StatefulSets(ns).List, func(o *appsv1.StatefulSet) (Workload, bool) {
			return workload(kind, "apps/v1", &o.ObjectMeta, o.Spec, o.Spec.Template.Spec), true
		})
	case KindDaemonSet:
		out, err = pages(ctx, l.page, l.apps.DaemonSets(ns).List, func(o *appsv1.DaemonSet) (Workload, bool) {
			return workload(kind, "apps/v1", &o.ObjectMeta, o.Spec, o.Spec.Template.Spec), true
		})
	case KindCronJob:
		out, err = pages(ctx, l.page, l.batch.CronJobs(ns).List, func(o *batchv1.CronJob) (Workload, bool) {
			return workload(kind, "batch/v1", &o.ObjectMeta, o.Spec, o.Spec.JobTemplate.Spec.Template.Spec), true
		})
	case KindJob:
		// A CronJob's runs are represented by the CronJob.
		out, err = pages(ctx, l.page, l.batch.Jobs(ns).List, func(o *batchv1.Job) (Workload, bool) {
			return workload(kind, "batch/v1", &o.ObjectMeta, o.Spec, o.Spec.Template.Spec), !ownedByController(o.ObjectMeta)
		})
	case KindPod:
		// Pods a controller owns are represented by their controller.
		out, err = pages(ctx, l.page, l.core.Pods(ns).List, func(o *corev1.Pod) (Workload, bool) {
			return workload(kind, "v1", &o.ObjectMeta, o.Spec, o.Spec), !ownedByController(o.ObjectMeta)
		})
	}
	if err != nil {
		where := "every namespace"
		if ns != "" {
			where = "namespace " + ns
		}
		return nil, apiError(l.cluster, fmt.Sprintf("list %ss in %s", strings.ToLower(kind), where), err)
	}
	return out, nil
}

// list is a typed client's List; its result a typed list.
type list[T any] interface {
	*appsv1.DeploymentList | *appsv1.StatefulSetList | *appsv1.DaemonSetList | *batchv1.CronJobList | *batchv1.JobList | *corev1.PodList
	GetContinue() string
}

// pages reads every page of a list (limit and continue, as kubectl pages)
// and keeps the items convert accepts.
func pages[L list[T], T any](ctx context.Context, size int64, get func(context.Context, metav1.ListOptions) (L, error), convert func(*T) (Workload, bool)) ([]Workload, error) {
	var out []Workload
	cont := ""
	for {
		page, err := get(ctx, metav1.ListOptions{Limit: size, Continue: cont})
		if err != nil {
			return nil, err
		}
		items := itemsOf[T](page)
		for i := range items {
			if w, ok := convert(&items[i]); ok {
				out = append(out, w)
			}
		}
		if cont = page.GetContinue(); cont == "" {
			return out, nil
		}
	}
}

// itemsOf is a typed list's items.
func itemsOf[T any](l any) []T {
	var items any
	switch v := l.(type) {
	case *appsv1.DeploymentList:
		items = v.Items
	case *appsv1.StatefulSetList:
		items = v.Items
	case *appsv1.DaemonSetList:
		items = v.Items
	case *batchv1.CronJobList:
		items = v.Items
	case *batchv1.JobList:
		items = v.Items
	case *corev1.PodList:
		items = v.Items
	}
	out, _ := items.([]T)
	return out
}

func ownedByController(m metav1.ObjectMeta) bool {
	for _, o := range m.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// workload records a listed object: its containers, and a manifest of it
// without status and server-managed fields.
func workload(kind, apiVersion string, meta *metav1.ObjectMeta, spec any, pod corev1.PodSpec) Workload {
	w := Workload{Namespace: meta.Namespace, Kind: kind, Name: meta.Name}
	for _, c := range pod.InitContainers {
		w.Containers = append(w.Containers, Container{Name: c.Name, Image: c.Image, Init: true})
	}
	for _, c := range pod.Containers {
		w.Containers = append(w.Containers, Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range pod.EphemeralContainers {
		w.Containers = append(w.Containers, Container{Name: c.Name, Image: c.Image, Init: true})
	}
	w.Manifest = manifest(kind, apiVersion, meta, spec)
	return w
}

// manifest renders the object as its author would have written it: what
// configuration checks should judge, not the server's bookkeeping.
func manifest(kind, apiVersion string, meta *metav1.ObjectMeta, spec any) []byte {
	m := metav1.ObjectMeta{
		Name:        meta.Name,
		Namespace:   meta.Namespace,
		Labels:      meta.Labels,
		Annotations: map[string]string{},
	}
	for k, v := range meta.Annotations {
		if k != "kubectl.kubernetes.io/last-applied-configuration" {
			m.Annotations[k] = v
		}
	}
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
	doc := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       any               `json:"spec"`
	}{apiVersion, kind, m, spec}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil
	}
	return data
}
