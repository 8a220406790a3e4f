// Command clusterbench measures a cluster scan: 50 workloads (Deployments,
// StatefulSets, DaemonSets, Jobs, CronJobs, bare Pods in five namespaces)
// running 10 distinct images, listed from a stand-in Kubernetes API server
// (test/fakek8s) and pulled from an in-process registry, scanned with the
// fixture vulnerability DB. It compares `registry scan --kubeconfig` with
// the trivy CLI of the Trivy version this module links: `trivy k8s` when it
// runs against the stand-in, else one `trivy image` per distinct image (the
// least a per-workload scanner must do), alternating; and it checks from the
// registry's side that each image was scanned once: one manifest GET per
// image digest.
//
//	go run ./test/bench/clusterbench -registry bin/registry -trivy /path/to/trivy
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/bench/benchutil"
	"github.com/registry-actions/registry/test/fakek8s"
)

type options struct {
	registry, trivy   string
	runs              int
	workloads, images int
}

func main() {
	var o options
	flag.StringVar(&o.registry, "registry", "bin/registry", "registry binary under test")
	flag.StringVar(&o.trivy, "trivy", "trivy", "trivy CLI of the Trivy version this module links")
	flag.IntVar(&o.runs, "runs", 5, "runs per case")
	flag.IntVar(&o.workloads, "workloads", 50, "workloads in the cluster")
	flag.IntVar(&o.images, "images", 10, "distinct images they run")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "clusterbench: %v\n", err)
		os.Exit(1)
	}
}

// manifestGets counts manifest GETs by digest (or tag) at the registry.
type manifestGets struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *manifestGets) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if _, ref, ok := strings.Cut(r.URL.Path, "/manifests/"); ok {
				m.mu.Lock()
				m.n[ref]++
				m.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (m *manifestGets) reset() {
	m.mu.Lock()
	m.n = map[string]int{}
	m.mu.Unlock()
}

func (m *manifestGets) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.n {
		n += c
	}
	return n
}

func (m *manifestGets) of(ref string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[ref]
}

type benchCase struct {
	name  string
	run   func(cache, out string) error
	times []time.Duration
}

func run(o options) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	benchutil.Absolute(&o.registry, &o.trivy)
	gets := &manifestGets{n: map[string]int{}}
	reg, err := localregistry.Start(ctx, localregistry.Options{Wrap: gets.wrap})
	if err != nil {
		return err
	}
	defer reg.Close()

	// Distinct images: the fixture's Alpine image plus a layer of its own.
	base, err := vulndb.AlpineImage()
	if err != nil {
		return err
	}
	var tags []string
	var digests []string
	for i := range o.images {
		layer, err := crane.Layer(map[string][]byte{"etc/bench-image": []byte(fmt.Sprintf("image %d\n", i))})
		if err != nil {
			return err
		}
		img, err := mutate.AppendLayers(base, layer)
		if err != nil {
			return err
		}
		tag, err := name.NewTag(fmt.Sprintf("%s/bench/app%02d:v1", reg.Host, i), name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push %s: %w", tag, err)
		}
		d, _ := img.Digest()
		tags, digests = append(tags, tag.String()), append(digests, d.String())
	}

	k8s := fakek8s.New()
	defer k8s.Close()
	kinds := []func(ns, name string, images ...string) runtime.Object{
		func(ns, n string, i ...string) runtime.Object { return fakek8s.Deployment(ns, n, i...) },
		func(ns, n string, i ...string) runtime.Object { return fakek8s.StatefulSet(ns, n, i...) },
		func(ns, n string, i ...string) runtime.Object { return fakek8s.DaemonSet(ns, n, i...) },
		func(ns, n string, i ...string) runtime.Object { return fakek8s.Job(ns, n, i...) },
		func(ns, n string, i ...string) runtime.Object { return fakek8s.CronJob(ns, n, i...) },
		func(ns, n string, i ...string) runtime.Object { return fakek8s.Pod(ns, n, i...) },
	}
	for i := range o.workloads {
		ns := fmt.Sprintf("team%d", i%5)
		k8s.Add(kinds[i%len(kinds)](ns, fmt.Sprintf("w%02d", i), tags[i%len(tags)]))
	}
	kubeconfig := filepath.Join(work, "kubeconfig")
	if err := os.WriteFile(kubeconfig, k8s.Kubeconfig("bench"), 0o600); err != nil {
		return err
	}
	db := filepath.Join(work, "db-seed")
	if err := vulndb.SeedCache(db, vulndb.MetadataAt(time.Now().Add(-time.Hour))); err != nil {
		return err
	}
	command, err := benchutil.Isolated(work, work)
	if err != nil {
		return err
	}
	perImageFindings := len(vulndb.ExpectedFor(vulndb.PlatformAlpine))

	ours := &benchCase{name: "registry scan --kubeconfig", run: func(cache, out string) error {
		gets.reset()
		_, _, err := benchutil.Timed(command(o.registry, "scan", "--kubeconfig", kubeconfig, "--cache-dir", cache, "--skip-db-update",
			"--formats", "json", "--fail-on", "none", "--output-dir", out))
		if err != nil {
			return err
		}
		var c struct {
			Images    int
			Workloads []struct{ Vulnerabilities struct{ Critical int } }
		}
		data, err := os.ReadFile(filepath.Join(out, "cluster-bench.json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		if c.Images != o.images || len(c.Workloads) != o.workloads {
			return fmt.Errorf("%d images, %d workloads reported, want %d and %d", c.Images, len(c.Workloads), o.images, o.workloads)
		}
		for _, w := range c.Workloads {
			if w.Vulnerabilities.Critical == 0 {
				return fmt.Errorf("a workload without the fixture's CRITICAL finding: %+v", w)
			}
		}
		// Scanned once: each image's manifest fetched by digest once.
		for _, d := range digests {
			if n := gets.of(d); n != 1 {
				return fmt.Errorf("manifest %s fetched %d times by digest, want 1 (one scan per image)", d, n)
			}
		}
		return nil
	}}

	// `trivy k8s` first; if it cannot run against the stand-in, one
	// `trivy image` per image.
	trivyK8s := func(cache, out string) *exec.Cmd {
		// The workload kinds the stand-in serves (trivy k8s lists many
		// more by default); vulnerabilities and the workloads' own
		// misconfigurations, as registry scan reports them; offline.
		return command(o.trivy, "k8s", "--kubeconfig", kubeconfig, "--report", "summary", "--format", "json", "--output", filepath.Join(out, "trivy-k8s.json"),
			"--include-kinds", "Deployment,StatefulSet,DaemonSet,Job,CronJob,Pod",
			"--scanners", "vuln,misconfig", "--disable-node-collector", "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update",
			"--skip-check-update", "--skip-version-check", "--disable-telemetry", "--insecure", "--timeout", "10m")
	}
	probeCache, probeOut := filepath.Join(work, "probe-cache"), filepath.Join(work, "probe-out")
	os.MkdirAll(probeOut, 0o755)
	if err := benchutil.CopyDir(filepath.Join(db, "db"), filepath.Join(probeCache, "db")); err != nil {
		return err
	}
	peerNote := ""
	peerGets := 0
	var theirs *benchCase
	if _, _, err := benchutil.Timed(trivyK8s(probeCache, probeOut)); err == nil {
		theirs = &benchCase{name: "trivy k8s --report summary", run: func(cache, out string) error {
			gets.reset()
			if _, _, err := benchutil.Timed(trivyK8s(cache, out)); err != nil {
				return err
			}
			peerGets = gets.total()
			var rep struct {
				Findings []struct {
					Results []struct{ Vulnerabilities []json.RawMessage }
				}
			}
			data, err := os.ReadFile(filepath.Join(out, "trivy-k8s.json"))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(data, &rep); err != nil {
				return err
			}
			vulns := 0
			for _, r := range rep.Findings {
				for _, res := range r.Results {
					vulns += len(res.Vulnerabilities)
				}
			}
			if len(rep.Findings) < o.workloads || vulns == 0 {
				return fmt.Errorf("trivy k8s reported %d resources and %d vulnerabilities", len(rep.Findings), vulns)
			}
			return nil
		}}
	} else {
		peerNote = fmt.Sprintf("`trivy k8s` does not run against the stand-in API server (%s), so the peer is one `trivy image` per distinct image, run one after another over one cache — what any per-image scanner must do at the least.",
			firstLine(err.Error()))
		theirs = &benchCase{name: fmt.Sprintf("%d × trivy image", o.images), run: func(cache, out string) error {
			for i, tag := range tags {
				_, _, err := benchutil.Timed(command(o.trivy, "image", "--quiet", "--format", "json", "--output", filepath.Join(out, fmt.Sprintf("trivy-%d.json", i)),
					"--scanners", "vuln", "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update", "--skip-version-check",
					"--disable-telemetry", "--insecure", "--image-src", "remote", tag))
				if err != nil {
					return err
				}
				n, err := benchutil.CountVulnerabilities(filepath.Join(out, fmt.Sprintf("trivy-%d.json", i)))
				if err != nil {
					return err
				}
				if n != perImageFindings {
					return fmt.Errorf("trivy image %s: %d vulnerabilities, want %d", tag, n, perImageFindings)
				}
			}
			return nil
		}}
	}
	cases := []*benchCase{ours, theirs}
	runCase := func(c *benchCase, r int) (time.Duration, error) {
		cache := filepath.Join(work, fmt.Sprintf("cache-%d-%s", r, benchutil.Slug(c.name)))
		out := filepath.Join(work, fmt.Sprintf("out-%d-%s", r, benchutil.Slug(c.name)))
		defer os.RemoveAll(cache)
		defer os.RemoveAll(out)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return 0, err
		}
		if err := benchutil.CopyDir(filepath.Join(db, "db"), filepath.Join(cache, "db")); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := c.run(cache, out); err != nil {
			return 0, fmt.Errorf("%s: %w", c.name, err)
		}
		return time.Since(start), nil
	}
	for _, c := range cases {
		if _, err := runCase(c, -1); err != nil {
			return err
		}
	}
	for r := range o.runs {
		for k := range cases {
			c := cases[k]
			if r%2 == 1 {
				c = cases[len(cases)-1-k]
			}
			d, err := runCase(c, r)
			if err != nil {
				return err
			}
			c.times = append(c.times, d)
			fmt.Fprintf(os.Stderr, "run %d %-28s %6.0f ms\n", r+1, c.name, benchutil.Ms(d))
		}
	}
	fmt.Printf("%d workloads in 5 namespaces running %d distinct images (the fixture's Alpine image plus a layer of its own each), listed from the stand-in API server and pulled from an in-process registry on loopback; the fixture DB, a cold layer cache every run; %d runs per case, alternating; medians of wall time. Each image scanned once: every run checks one manifest GET per image digest at the registry and %d scanned images in the report.\n\n",
		o.workloads, o.images, o.runs, o.images)
	if peerNote != "" {
		fmt.Println(peerNote)
		fmt.Println()
	}
	fmt.Println("| Comparison | this tool | trivy | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| `registry scan --kubeconfig` vs %s | %.0f ms | %.0f ms | %.2f |\n", theirs.name,
		benchutil.Ms(benchutil.Median(ours.times)), benchutil.Ms(benchutil.Median(theirs.times)), benchutil.Ratio(ours.times, theirs.times))
	fmt.Printf("\nRaw: registry %s; trivy %s.\n", strings.Join(benchutil.Rounded(ours.times), ", "), strings.Join(benchutil.Rounded(theirs.times), ", "))
	if peerGets > 0 {
		fmt.Printf("\nManifest GETs at the registry per run: registry scan %d (one per image digest: %d images), trivy k8s %d.\n", o.images, o.images, peerGets)
	}
	return nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "FATAL") || strings.Contains(l, "ERROR") || strings.Contains(l, "error") {
			if len(l) > 300 {
				l = l[:300] + "…"
			}
			return strings.TrimSpace(l)
		}
	}
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}
