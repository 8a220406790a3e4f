// Package fakek8s is a stand-in Kubernetes API server speaking the real
// wire protocol of the endpoints a read-only workload inventory uses, so
// that client-go (and kubectl) can be pointed at it through an ordinary
// kubeconfig:
//
//   - discovery: GET /version, /api, /apis, /api/v1, /apis/apps/v1,
//     /apis/batch/v1 (APIVersions, APIGroupList, APIResourceList);
//   - lists of Deployments, StatefulSets, DaemonSets, ReplicaSets
//     (apps/v1), Jobs, CronJobs (batch/v1), Pods and Namespaces (v1), for
//     all namespaces (/apis/apps/v1/deployments) or one
//     (/apis/apps/v1/namespaces/{ns}/deployments), paged with limit and
//     continue like the real server (metadata.continue,
//     metadata.remainingItemCount);
//   - errors as metav1.Status: 401 without the bearer token, 403 for
//     forbidden namespaces, 404 for anything else.
//
// It serves HTTPS with its own CA (the kubeconfig carries it) and counts
// requests per path.
package fakek8s

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
)

// Token is the bearer token the server accepts.
const Token = "fake-k8s-token"

// GitVersion is what /version reports.
const GitVersion = "v1.31.2"

// Server is a running stand-in API server.
type Server struct {
	srv *httptest.Server

	mu        sync.Mutex
	objects   map[string][]runtime.Object // resource → objects, in insertion order
	forbidden map[string]bool             // "<resource>/<namespace>", "<resource>/" for cluster-wide lists
	missing   map[string]bool             // group versions not served ("batch/v1")
	counts    map[string]int
}

// resources served, by group version: resource → kind.
var served = map[string][][2]string{
	"v1":       {{"pods", "Pod"}, {"namespaces", "Namespace"}},
	"apps/v1":  {{"deployments", "Deployment"}, {"statefulsets", "StatefulSet"}, {"daemonsets", "DaemonSet"}, {"replicasets", "ReplicaSet"}},
	"batch/v1": {{"jobs", "Job"}, {"cronjobs", "CronJob"}},
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	return s
}

// New starts a server outside a test (benchmarks); Close stops it.
func New() *Server {
	s := &Server{objects: map[string][]runtime.Object{}, forbidden: map[string]bool{}, missing: map[string]bool{}, counts: map[string]int{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the API server's address.
func (s *Server) URL() string { return s.srv.URL }

// Add seeds objects: Deployments, StatefulSets, DaemonSets, ReplicaSets,
// Jobs, CronJobs, Pods, Namespaces. A namespaced object's namespace is
// added to the namespace list when missing.
func (s *Server) Add(objs ...runtime.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range objs {
		res := resourceOf(o)
		if res == "" {
			panic(fmt.Sprintf("fakek8s: unsupported object %T", o))
		}
		s.objects[res] = append(s.objects[res], o)
		if ns := metaOf(o).Namespace; ns != "" && !s.hasNamespace(ns) {
			s.objects["namespaces"] = append(s.objects["namespaces"], &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
	}
}

func (s *Server) hasNamespace(name string) bool {
	return slices.ContainsFunc(s.objects["namespaces"], func(o runtime.Object) bool { return metaOf(o).Name == name })
}

// Forbid makes lists of resource ("deployments") in namespace answer 403;
// an empty namespace forbids the cluster-wide list.
func (s *Server) Forbid(resource, namespace string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[resource+"/"+namespace] = true
}

// DropGroupVersion stops serving a group version ("batch/v1"), as an old
// or trimmed API server would.
func (s *Server) DropGroupVersion(gv string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.missing[gv] = true
}

// Requests is how many requests a path received (query excluded).
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

// WriteKubeconfig writes a kubeconfig for this server (CA, token) with the
// given context name as its current context, and returns its path.
func (s *Server) WriteKubeconfig(t testing.TB, path, context string) string {
	t.Helper()
	if err := os.WriteFile(path, s.Kubeconfig(context), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Kubeconfig is a kubeconfig for this server (CA, token) with the given
// context name as its current context.
func (s *Server) Kubeconfig(context string) []byte {
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: ci
  user:
    token: %s
contexts:
- name: %s
  context:
    cluster: fake
    user: ci
current-context: %s
`, s.srv.URL, base64.StdEncoding.EncodeToString(pemData), Token, context, context))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[r.URL.Path]++
	if r.Header.Get("Authorization") != "Bearer "+Token {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	if r.Method != http.MethodGet {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource")
		return
	}
	p := strings.Trim(r.URL.Path, "/")
	switch p {
	case "version":
		writeJSON(w, version.Info{Major: "1", Minor: "31", GitVersion: GitVersion, Platform: "linux/amd64"})
		return
	case "api":
		writeJSON(w, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
		return
	case "apis":
		list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		for _, g := range []string{"apps", "batch"} {
			if s.missing[g+"/v1"] {
				continue
			}
			gv := metav1.GroupVersionForDiscovery{GroupVersion: g + "/v1", Version: "v1"}
			list.Groups = append(list.Groups, metav1.APIGroup{Name: g, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv})
		}
		writeJSON(w, list)
		return
	}
	gv, rest, ok := splitGroupVersion(p)
	if !ok || s.missing[gv] {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	if rest == "" {
		list := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
		for _, rk := range served[gv] {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: rk[0], Kind: rk[1], Namespaced: rk[0] != "namespaces",
				Verbs: metav1.Verbs{"get", "list", "watch"},
			})
		}
		writeJSON(w, list)
		return
	}
	namespace, resource := "", rest
	if after, ok := strings.CutPrefix(rest, "namespaces/"); ok {
		ns, res, found := strings.Cut(after, "/")
		if found {
			namespace, resource = ns, res
		}
	}
	kind := ""
	for _, rk := range served[gv] {
		if rk[0] == resource {
			kind = rk[1]
		}
	}
	if kind == "" || strings.Contains(resource, "/") {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	if s.forbidden[resource+"/"+namespace] {
		scope := "at the cluster scope"
		if namespace != "" {
			scope = fmt.Sprintf("in the namespace %q", namespace)
		}
		writeStatus(w, http.StatusForbidden, "Forbidden", fmt.Sprintf(`%s is forbidden: User "system:serviceaccount:ci:scanner" cannot list resource %q in API group %q %s`,
			resource, resource, strings.TrimSuffix(strings.TrimSuffix(gv, "v1"), "/"), scope))
		return
	}
	var items []runtime.Object
	for _, o := range s.objects[resource] {
		if namespace == "" || metaOf(o).Namespace == namespace {
			items = append(items, o)
		}
	}
	s.writeList(w, r, gv, kind, items)
}

// writeList pages items: limit caps a page, continue is the offset of the
// next one, as opaque to the client as the real server's token.
func (s *Server) writeList(w http.ResponseWriter, r *http.Request, gv, kind string, items []runtime.Object) {
	start := 0
	if c := r.URL.Query().Get("continue"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "offset-"))
		if err != nil || n < 0 || n > len(items) {
			writeStatus(w, http.StatusGone, "Expired", "The provided continue parameter is too old to display a consistent list result.")
			return
		}
		start = n
	}
	end := len(items)
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 && start+l < end {
		end = start + l
	}
	meta := map[string]any{"resourceVersion": "1000"}
	if end < len(items) {
		meta["continue"] = fmt.Sprintf("offset-%d", end)
		meta["remainingItemCount"] = len(items) - end
	}
	page := items[start:end]
	if page == nil {
		page = []runtime.Object{}
	}
	writeJSON(w, map[string]any{"kind": kind + "List", "apiVersion": gv, "metadata": meta, "items": page})
}

func splitGroupVersion(p string) (gv, rest string, ok bool) {
	switch {
	case p == "api/v1" || strings.HasPrefix(p, "api/v1/"):
		return "v1", strings.TrimPrefix(strings.TrimPrefix(p, "api/v1"), "/"), true
	case strings.HasPrefix(p, "apis/"):
		parts := strings.SplitN(strings.TrimPrefix(p, "apis/"), "/", 3)
		if len(parts) < 2 {
			return "", "", false
		}
		gv = parts[0] + "/" + parts[1]
		if _, known := served[gv]; !known {
			return "", "", false
		}
		if len(parts) == 3 {
			rest = parts[2]
		}
		return gv, rest, true
	}
	return "", "", false
}

func resourceOf(o runtime.Object) string {
	switch o.(type) {
	case *appsv1.Deployment:
		return "deployments"
	case *appsv1.StatefulSet:
		return "statefulsets"
	case *appsv1.DaemonSet:
		return "daemonsets"
	case *appsv1.ReplicaSet:
		return "replicasets"
	case *batchv1.Job:
		return "jobs"
	case *batchv1.CronJob:
		return "cronjobs"
	case *corev1.Pod:
		return "pods"
	case *corev1.Namespace:
		return "namespaces"
	}
	return ""
}

func metaOf(o runtime.Object) *metav1.ObjectMeta {
	switch v := o.(type) {
	case *appsv1.Deployment:
		return &v.ObjectMeta
	case *appsv1.StatefulSet:
		return &v.ObjectMeta
	case *appsv1.DaemonSet:
		return &v.ObjectMeta
	case *appsv1.ReplicaSet:
		return &v.ObjectMeta
	case *batchv1.Job:
		return &v.ObjectMeta
	case *batchv1.CronJob:
		return &v.ObjectMeta
	case *corev1.Pod:
		return &v.ObjectMeta
	case *corev1.Namespace:
		return &v.ObjectMeta
	}
	return &metav1.ObjectMeta{}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
	})
}
