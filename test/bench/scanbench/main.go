// Command scanbench measures scanning the same image with the same
// vulnerability DB with this tool (registry scan) and with the trivy CLI of
// the Trivy version this module links, alternating, and prints median
// wall-time ratios as a markdown table. Every run starts with a cold layer
// cache and a ready DB (no download is timed).
//
//	go run ./test/bench/scanbench -registry bin/registry -trivy /path/to/trivy
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/bench/benchutil"
)

type options struct {
	registry, trivy string
	runs            int
}

func main() {
	var o options
	flag.StringVar(&o.registry, "registry", "bin/registry", "registry binary under test")
	flag.StringVar(&o.trivy, "trivy", "trivy", "trivy CLI of the Trivy version this module links")
	flag.IntVar(&o.runs, "runs", 5, "runs per case")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "scanbench: %v\n", err)
		os.Exit(1)
	}
}

// benchCase is one command measured o.runs times.
type benchCase struct {
	name  string
	cmd   func(cache, out string) *exec.Cmd
	check func(out string) error
	times []time.Duration
}

func run(o options) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "scanbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	benchutil.Absolute(&o.registry, &o.trivy)
	reg, err := localregistry.Start(ctx, localregistry.Options{})
	if err != nil {
		return err
	}
	defer reg.Close()

	idx, err := vulndb.LargeIndex(vulndb.DefaultLargeOptions)
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	ref, err := name.NewDigest(reg.Host+"/bench/app@"+d.String(), name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push the benchmark image: %w", err)
	}
	size, err := imageSize(idx)
	if err != nil {
		return err
	}
	// The DB is built once and copied into each run's fresh cache.
	db := filepath.Join(work, "db-seed")
	if err := vulndb.SeedCache(db, vulndb.MetadataAt(time.Now().Add(-time.Hour))); err != nil {
		return err
	}
	command, err := benchutil.Isolated(work, work)
	if err != nil {
		return err
	}
	registryScan := func(platforms string) func(cache, out string) *exec.Cmd {
		return func(cache, out string) *exec.Cmd {
			args := []string{"scan", "--images", ref.String(), "--cache-dir", cache, "--skip-db-update", "--formats", "json", "--fail-on", "none", "--output-dir", out}
			if platforms != "" {
				args = append(args, "--platforms", platforms)
			}
			return command(o.registry, args...)
		}
	}
	trivyImage := func(cache, out string) *exec.Cmd {
		return command(o.trivy, "image", "--quiet", "--format", "json", "--output", filepath.Join(out, "trivy.json"),
			"--scanners", "vuln", "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update", "--skip-version-check", "--disable-telemetry",
			"--insecure", "--image-src", "remote", "--platform", "linux/amd64", ref.String())
	}
	// Both must find the fixture's findings: a fast wrong scan is no win.
	findings := func(want int) func(out string) error {
		return func(out string) error { return benchutil.CheckFindings(out, want) }
	}
	amd64Findings := len(vulndb.ExpectedFor(vulndb.PlatformAlpine))
	bothFindings := amd64Findings + len(vulndb.ExpectedFor(vulndb.PlatformDebian))
	cases := []*benchCase{
		{name: "registry scan, linux/amd64", cmd: registryScan("linux/amd64"), check: findings(amd64Findings)},
		{name: "trivy image --platform linux/amd64", cmd: trivyImage, check: findings(amd64Findings)},
		{name: "registry scan, both platforms", cmd: registryScan(""), check: findings(bothFindings)},
	}

	runCase := func(c *benchCase, i int) (time.Duration, error) {
		cache := filepath.Join(work, fmt.Sprintf("cache-%d-%s", i, benchutil.Slug(c.name)))
		out := filepath.Join(work, fmt.Sprintf("out-%d-%s", i, benchutil.Slug(c.name)))
		for _, dir := range []string{cache, out} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return 0, err
			}
		}
		if err := benchutil.CopyDir(filepath.Join(db, "db"), filepath.Join(cache, "db")); err != nil {
			return 0, err
		}
		dur, _, err := benchutil.Timed(c.cmd(cache, out))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", c.name, err)
		}
		if err := c.check(out); err != nil {
			return 0, fmt.Errorf("%s: %w", c.name, err)
		}
		os.RemoveAll(cache)
		os.RemoveAll(out)
		return dur, nil
	}
	// One warm-up each: page cache and registry are warm for every timed run.
	for _, c := range cases {
		if _, err := runCase(c, -1); err != nil {
			return err
		}
	}
	for r := range o.runs {
		order := append([]*benchCase{}, cases...)
		if r%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, c := range order {
			dur, err := runCase(c, r)
			if err != nil {
				return err
			}
			c.times = append(c.times, dur)
			fmt.Fprintf(os.Stderr, "run %d %-38s %6.0f ms\n", r+1, c.name, benchutil.Ms(dur))
		}
	}

	ours, theirs, both := cases[0], cases[1], cases[2]
	fmt.Printf("Two-platform index (linux/amd64 Alpine, linux/arm64 Debian; %d OS and %d npm packages per platform beside the fixture's; %.0f MB of compressed layers, %.0f MB shared), the fixture vulnerability DB, vulnerability scanner only, JSON report; in-process distribution registry on loopback; a cold layer cache every run; %d runs per case, alternating; medians of wall time per command.\n\n",
		vulndb.DefaultLargeOptions.OSPackages, vulndb.DefaultLargeOptions.NpmPackages, float64(size.total)/(1<<20), float64(size.shared)/(1<<20), o.runs)
	fmt.Println("| Comparison | this tool | other | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| one platform: `registry scan --platforms linux/amd64` vs `trivy image --platform linux/amd64` | %.0f ms | %.0f ms | %.2f |\n",
		benchutil.Ms(benchutil.Median(ours.times)), benchutil.Ms(benchutil.Median(theirs.times)), benchutil.Ratio(ours.times, theirs.times))
	fmt.Printf("| the whole index vs one platform, both `registry scan` | %.0f ms | %.0f ms | %.2f |\n",
		benchutil.Ms(benchutil.Median(both.times)), benchutil.Ms(benchutil.Median(ours.times)), benchutil.Ratio(both.times, ours.times))
	fmt.Printf("| the whole index (`registry scan`) vs `trivy image` once per platform (estimated: 2 × one platform) | %.0f ms | %.0f ms | %.2f |\n",
		benchutil.Ms(benchutil.Median(both.times)), 2*benchutil.Ms(benchutil.Median(theirs.times)), benchutil.Ms(benchutil.Median(both.times))/(2*benchutil.Ms(benchutil.Median(theirs.times))))
	return nil
}

type sizes struct{ total, shared int64 }

// imageSize sums the compressed layers of the index, counting shared ones once.
func imageSize(idx v1.ImageIndex) (sizes, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return sizes{}, err
	}
	seen := map[v1.Hash]int{}
	layerSize := map[v1.Hash]int64{}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			return sizes{}, err
		}
		layers, err := img.Layers()
		if err != nil {
			return sizes{}, err
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return sizes{}, err
			}
			n, err := l.Size()
			if err != nil {
				return sizes{}, err
			}
			seen[d]++
			layerSize[d] = n
		}
	}
	var s sizes
	for d, n := range layerSize {
		s.total += n
		if seen[d] > 1 {
			s.shared += n
		}
	}
	return s, nil
}
