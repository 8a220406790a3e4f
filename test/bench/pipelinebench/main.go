// Command pipelinebench measures the pipeline users replace three tools
// with: publish a two-platform image with vulnerable OS packages, scan each
// platform, sign the index and its platforms with a key (no transparency
// log). It times `registry run push,scan,sign` against `crane push`, then
// `trivy image --platform …` once per platform, then `cosign sign
// --recursive`, each run against a fresh registry with the vulnerability DB
// already in a fresh cache, alternating which goes first, and prints median
// wall times and their ratio as markdown.
//
//	go run ./test/bench/pipelinebench -registry bin/registry -crane bin/crane -trivy /path/to/trivy -cosign /path/to/cosign
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/bench/benchutil"
)

const keyPassword = "bench-password"

type options struct {
	registry, crane, trivy, cosign string
	runs                           int
	keep                           string
	wrap                           string
	baseline                       string
	wanRTT                         time.Duration
	wanStreamMbps, wanLinkMbps     int
}

func main() {
	var o options
	flag.StringVar(&o.registry, "registry", "bin/registry", "registry binary under test")
	flag.StringVar(&o.crane, "crane", "bin/crane", "crane CLI (the go-containerregistry version this module uses)")
	flag.StringVar(&o.trivy, "trivy", "trivy", "trivy CLI of the Trivy version this module links")
	flag.StringVar(&o.cosign, "cosign", "cosign", "cosign CLI (v2.6.5, the version this module links)")
	flag.IntVar(&o.runs, "runs", 5, "runs per tool")
	flag.DurationVar(&o.wanRTT, "wan-rtt", 0, "put the registry behind a WAN model: every request pays this round trip (0: plain loopback)")
	flag.IntVar(&o.wanStreamMbps, "wan-stream-mbps", 100, "with -wan-rtt: throughput of one upload connection")
	flag.IntVar(&o.wanLinkMbps, "wan-link-mbps", 1000, "with -wan-rtt: bandwidth of the link, shared by all uploads")
	flag.StringVar(&o.baseline, "baseline", "", "another registry binary (e.g. built from the main branch) run as a third side, for before/after figures")
	flag.StringVar(&o.keep, "keep", "", "also write the fixture layout, DB cache and key pair here and keep them (for profiling one tool by hand)")
	flag.StringVar(&o.wrap, "wrap", "", "run the registry binary under this command, e.g. \"perf record -g -o /tmp/perf.data --\" (for profiling; figures are then not comparable)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "pipelinebench: %v\n", err)
		os.Exit(1)
	}
}

// phase is one timed step of a run.
type phase struct {
	name string
	took time.Duration
}

// pipeline runs the whole job once against a fresh registry and returns
// the phases it took (one for registry, four for the three tools).
type pipeline struct {
	name   string
	run    func(host, cache, out string) ([]phase, error)
	totals []time.Duration
	phases map[string][]time.Duration
}

func run(o options) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "pipelinebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	benchutil.Absolute(&o.registry, &o.crane, &o.trivy, &o.cosign)

	// The fixture: vulndb's large two-platform index (linux/amd64 Alpine,
	// linux/arm64/v8 Debian, the fixture's vulnerable packages among
	// hundreds of others) as an OCI layout, the way a build leaves it.
	idx, err := vulndb.LargeIndex(vulndb.DefaultLargeOptions)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	src := filepath.Join(work, "layout")
	lp, err := layout.Write(src, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx); err != nil {
		return err
	}
	db := filepath.Join(work, "db-seed")
	if err := vulndb.SeedCache(db, vulndb.MetadataAt(time.Now().Add(-time.Hour))); err != nil {
		return err
	}
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, "docker"),
		"TUF_ROOT=" + filepath.Join(home, "tuf"), "TMPDIR=" + os.TempDir(), "COSIGN_PASSWORD=" + keyPassword}
	command := func(bin string, args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Dir, c.Env = work, env
		return c
	}
	// One key pair for both, made by this tool (the cosign CLI reads it).
	if _, _, err := benchutil.Timed(command(o.registry, "generate-key-pair")); err != nil {
		return err
	}
	key := filepath.Join(work, "cosign.key")
	if o.keep != "" {
		if err := keep(o.keep, src, db, work); err != nil {
			return err
		}
	}

	amd64, arm64 := len(vulndb.ExpectedFor(vulndb.PlatformAlpine)), len(vulndb.ExpectedFor(vulndb.PlatformDebian))
	registryRun := func(bin string) func(host, cache, out string) ([]phase, error) {
		return func(host, cache, out string) ([]phase, error) {
			return runRegistry(command, o.wrap, bin, src, key, host, cache, out, amd64+arm64)
		}
	}
	ours := &pipeline{name: "registry", run: registryRun(o.registry)}
	theirs := &pipeline{name: "crane + trivy + cosign", run: func(host, cache, out string) ([]phase, error) {
		ref := host + "/bench/app@" + digest.String()
		steps := []struct {
			name string
			cmd  *exec.Cmd
		}{
			{"crane push", command(o.crane, "push", "--insecure", src, host+"/bench/app:v1")},
			{"trivy linux/amd64", trivy(command, o.trivy, cache, filepath.Join(out, "amd64.json"), "linux/amd64", ref)},
			{"trivy linux/arm64", trivy(command, o.trivy, cache, filepath.Join(out, "arm64.json"), "linux/arm64", ref)},
			{"cosign sign", command(o.cosign, "sign", "--yes", "--key", key, "--tlog-upload=false", "--recursive", "--allow-http-registry", ref)},
		}
		var phases []phase
		var used time.Duration
		start := time.Now()
		for _, s := range steps {
			took, _, err := benchutil.Timed(s.cmd)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			phases = append(phases, phase{s.name, took})
			used += cpu(s.cmd)
		}
		phases = append([]phase{{"total", time.Since(start)}, {"CPU", used}}, phases...)
		return phases, benchutil.CheckFindings(out, amd64+arm64)
	}}
	tools := []*pipeline{ours, theirs}
	var baseline *pipeline
	if o.baseline != "" {
		benchutil.Absolute(&o.baseline)
		baseline = &pipeline{name: "baseline registry", run: registryRun(o.baseline)}
		tools = append(tools, baseline)
	}

	once := func(p *pipeline, i int) ([]phase, error) {
		var wrap func(http.Handler) http.Handler
		if o.wanRTT > 0 {
			wrap = benchutil.WAN(o.wanRTT, o.wanStreamMbps, o.wanLinkMbps)
		}
		reg, err := localregistry.Start(ctx, localregistry.Options{Disk: true, Wrap: wrap})
		if err != nil {
			return nil, err
		}
		defer reg.Close()
		cache := filepath.Join(work, fmt.Sprintf("cache-%d", i))
		out := filepath.Join(work, fmt.Sprintf("out-%d", i))
		defer os.RemoveAll(cache)
		defer os.RemoveAll(out)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
		if err := benchutil.CopyDir(filepath.Join(db, "db"), filepath.Join(cache, "db")); err != nil {
			return nil, err
		}
		phases, err := p.run(reg.Host, cache, out)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		// Both must have signed the index and both platforms.
		if err := checkSigned(ctx, reg.Host, digest.String()); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		return phases, nil
	}

	// One warm-up each: page cache and binaries are warm for every timed run.
	for i, p := range tools {
		if _, err := once(p, -1-i); err != nil {
			return err
		}
	}
	for r := range o.runs {
		// Rotate which side goes first.
		order := append(slices.Clone(tools[r%len(tools):]), tools[:r%len(tools)]...)
		for _, p := range order {
			phases, err := once(p, r)
			if err != nil {
				return err
			}
			if p.phases == nil {
				p.phases = map[string][]time.Duration{}
			}
			var line []string
			for _, ph := range phases {
				p.phases[ph.name] = append(p.phases[ph.name], ph.took)
				line = append(line, fmt.Sprintf("%s %.0f ms", ph.name, benchutil.Ms(ph.took)))
			}
			p.totals = append(p.totals, phases[0].took)
			fmt.Fprintf(os.Stderr, "run %d %-24s %s\n", r+1, p.name, strings.Join(line, ", "))
		}
	}

	size, err := os.ReadDir(filepath.Join(src, "blobs", "sha256"))
	if err != nil {
		return err
	}
	var bytes int64
	for _, e := range size {
		if info, err := e.Info(); err == nil {
			bytes += info.Size()
		}
	}
	fmt.Printf("Two-platform index (vulndb.LargeIndex: linux/amd64 Alpine, linux/arm64/v8 Debian, the fixture's vulnerable packages among %d OS and %d npm packages per platform; %.0f MB in the OCI layout), pushed to a fresh disk-backed distribution registry %s every run, the fixture vulnerability DB already in a fresh cache (cold layer cache), key signing without a transparency log; %d runs per side, alternating which goes first; medians of wall time.\n\n",
		vulndb.DefaultLargeOptions.OSPackages, vulndb.DefaultLargeOptions.NpmPackages, float64(bytes)/1e6, where(o), o.runs)
	fmt.Println("| Pipeline | median | ratio |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| `registry run push,scan,sign` | %.0f ms | %.2f |\n", benchutil.Ms(benchutil.Median(ours.totals)), benchutil.Ratio(ours.totals, theirs.totals))
	fmt.Printf("| `crane push` + `trivy image --platform` × 2 + `cosign sign --recursive` | %.0f ms | 1.00 |\n", benchutil.Ms(benchutil.Median(theirs.totals)))
	if baseline != nil {
		fmt.Printf("| baseline `registry run push,scan,sign` (%s) | %.0f ms | %.2f |\n", filepath.Base(o.baseline), benchutil.Ms(benchutil.Median(baseline.totals)), benchutil.Ratio(baseline.totals, theirs.totals))
	}
	fmt.Println()
	fmt.Println("| Phase (CPU: user + system time of the tools' processes, not the registry's) | median |")
	fmt.Println("|---|---|")
	for _, p := range tools {
		for _, name := range phaseOrder(p) {
			fmt.Printf("| %s: %s | %.0f ms |\n", p.name, name, benchutil.Ms(benchutil.Median(p.phases[name])))
		}
	}
	fmt.Printf("\nRaw totals: registry %v; three tools %v", benchutil.Rounded(ours.totals), benchutil.Rounded(theirs.totals))
	if baseline != nil {
		fmt.Printf("; baseline %v", benchutil.Rounded(baseline.totals))
	}
	fmt.Println()
	return nil
}

// cpu is the user and system time a finished command used.
func cpu(c *exec.Cmd) time.Duration {
	return c.ProcessState.UserTime() + c.ProcessState.SystemTime()
}

// runRegistry runs the whole pipeline as one registry command and reads
// each stage's time from its log.
func runRegistry(command func(string, ...string) *exec.Cmd, wrap, bin, src, key, host, cache, out string, findings int) ([]phase, error) {
	args := []string{bin, "run", "push,scan,sign", "--source", src, "--images", host + "/bench/app", "--tags", "v1",
		"--cache-dir", cache, "--skip-db-update", "--formats", "json", "--fail-on", "none", "--output-dir", out,
		"--key", key, "--key-password", keyPassword, "--tlog-upload=false"}
	if wrap != "" {
		args = append(strings.Fields(wrap), args...)
	}
	c := command(args[0], args[1:]...)
	var stderr strings.Builder
	took, _, err := timedWithStderr(c, &stderr)
	if err != nil {
		return nil, err
	}
	phases := []phase{{"total", took}, {"CPU", cpu(c)}}
	stageTime := regexp.MustCompile(`(?m)^(push|scan|sign) finished in (\S+)`)
	for _, m := range stageTime.FindAllStringSubmatch(stderr.String(), -1) {
		if d, err := time.ParseDuration(m[2]); err == nil {
			phases = append(phases, phase{m[1], d})
		}
	}
	return phases, benchutil.CheckFindings(out, findings)
}

func phaseOrder(p *pipeline) []string {
	var names []string
	for _, n := range []string{"CPU", "push", "scan", "sign", "crane push", "trivy linux/amd64", "trivy linux/arm64", "cosign sign"} {
		if _, ok := p.phases[n]; ok {
			names = append(names, n)
		}
	}
	return names
}

func trivy(command func(string, ...string) *exec.Cmd, bin, cache, out, platform, ref string) *exec.Cmd {
	return command(bin, "image", "--quiet", "--format", "json", "--output", out,
		"--scanners", "vuln", "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update", "--skip-version-check", "--disable-telemetry",
		"--insecure", "--image-src", "remote", "--platform", platform, ref)
}

func timedWithStderr(c *exec.Cmd, stderr *strings.Builder) (time.Duration, []byte, error) {
	var stdout strings.Builder
	c.Stdout, c.Stderr = &stdout, stderr
	start := time.Now()
	err := c.Run()
	took := time.Since(start)
	if err != nil {
		return took, nil, fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, stderr.String())
	}
	return took, []byte(stdout.String()), nil
}

// checkSigned fails unless the index and each platform carry a signature.
func checkSigned(ctx context.Context, host, digest string) error {
	ref, err := name.NewDigest(host+"/bench/app@"+digest, name.Insecure)
	if err != nil {
		return err
	}
	idx, err := remote.Index(ref, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	digests := []string{digest}
	for _, m := range im.Manifests {
		digests = append(digests, m.Digest.String())
	}
	for _, d := range digests {
		tag := ref.Context().Tag(strings.Replace(d, ":", "-", 1) + ".sig")
		if _, err := remote.Head(tag, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("no signature for %s: %w", d, err)
		}
	}
	return nil
}

// keep copies the fixture into dir, which must not exist yet.
func keep(dir, src, db, work string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("-keep %s exists: name a new directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("cp", "-r", src, db, filepath.Join(work, "cosign.key"), filepath.Join(work, "cosign.pub"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("keep the fixture: %v: %s", err, out)
	}
	return nil
}

// where says how the registry was reached.
func where(o options) string {
	if o.wanRTT <= 0 {
		return "on loopback"
	}
	return fmt.Sprintf("behind a WAN model (every request pays %s, %d Mbit/s per upload connection, %d Mbit/s shared; downloads unthrottled)", o.wanRTT, o.wanStreamMbps, o.wanLinkMbps)
}
