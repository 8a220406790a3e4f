// Command configbench measures configuration scanning of a generated
// repository (Dockerfiles, Kubernetes manifests, Helm charts, Terraform,
// CloudFormation and Compose files) with this tool (`registry scan --config
// .`) and with the trivy CLI of the Trivy version this module links (`trivy
// config .`), alternating, and prints median wall-time ratios as markdown.
// Both run offline on the checks embedded in them and must report the same
// failed checks.
//
//	go run ./test/bench/configbench -registry bin/registry -trivy /path/to/trivy
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/registry-actions/registry/test/bench/benchutil"
	"github.com/registry-actions/registry/test/configfixture"
)

type options struct {
	registry, trivy string
	runs, files     int
}

func main() {
	var o options
	flag.StringVar(&o.registry, "registry", "bin/registry", "registry binary under test")
	flag.StringVar(&o.trivy, "trivy", "trivy", "trivy CLI of the Trivy version this module links")
	flag.IntVar(&o.runs, "runs", 5, "runs per case")
	flag.IntVar(&o.files, "files", 200, "configuration files in the generated repository")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "configbench: %v\n", err)
		os.Exit(1)
	}
}

type benchCase struct {
	name  string
	cmd   func(out string) *exec.Cmd
	file  string // the JSON report, in out
	times []time.Duration
	cpu   []time.Duration // user + system
}

func run(o options) error {
	work, err := os.MkdirTemp("", "configbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	benchutil.Absolute(&o.registry, &o.trivy)
	repo := filepath.Join(work, "repo")
	if err := configfixture.Mixed(repo, o.files); err != nil {
		return err
	}
	command, err := benchutil.Isolated(work, repo)
	if err != nil {
		return err
	}
	cases := []*benchCase{
		{name: "registry scan --config .", file: "config.trivy.json", cmd: func(out string) *exec.Cmd {
			return command(o.registry, "scan", "--config", ".", "--formats", "json", "--fail-on", "none", "--output-dir", out)
		}},
		// The checks bundle is not downloaded (offline, as ours): trivy
		// falls back to the checks embedded in it.
		{name: "trivy config .", file: "trivy.json", cmd: func(out string) *exec.Cmd {
			return command(o.trivy, "config", "--quiet", "--format", "json", "--output", filepath.Join(out, "trivy.json"),
				"--skip-check-update", "--skip-version-check", "--disable-telemetry", "--cache-dir", filepath.Join(out, "cache"), ".")
		}},
	}
	var failed [2]int
	runCase := func(i int, c *benchCase, r int) (time.Duration, time.Duration, error) {
		// Outside the repository: neither tool should scan the other's report.
		out := filepath.Join(work, fmt.Sprintf("out-%d-%s", r, benchutil.Slug(c.name)))
		if err := os.MkdirAll(out, 0o755); err != nil {
			return 0, 0, err
		}
		defer os.RemoveAll(out)
		cmd := c.cmd(out)
		d, _, err := benchutil.Timed(cmd)
		if err != nil {
			return 0, 0, err
		}
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		n, err := countFailures(filepath.Join(out, c.file))
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", c.name, err)
		}
		if n == 0 {
			return 0, 0, fmt.Errorf("%s found no failed checks", c.name)
		}
		failed[i] = n
		return d, cpu, nil
	}
	for i, c := range cases {
		if _, _, err := runCase(i, c, -1); err != nil {
			return err
		}
	}
	if failed[0] != failed[1] {
		return fmt.Errorf("registry reports %d failed checks, trivy config %d: a fast wrong scan is no win", failed[0], failed[1])
	}
	for r := range o.runs {
		for k := range cases {
			i := k
			if r%2 == 1 {
				i = len(cases) - 1 - k
			}
			d, cpu, err := runCase(i, cases[i], r)
			if err != nil {
				return err
			}
			cases[i].times = append(cases[i].times, d)
			cases[i].cpu = append(cases[i].cpu, cpu)
			fmt.Fprintf(os.Stderr, "run %d %-28s %6.0f ms (CPU %6.0f ms)\n", r+1, cases[i].name, benchutil.Ms(d), benchutil.Ms(cpu))
		}
	}
	ours, theirs := cases[0], cases[1]
	fmt.Printf("A generated repository of %d configuration files (Dockerfiles, Kubernetes manifests, Helm charts, Terraform, CloudFormation, Compose), %d failed checks found by both; offline, the checks embedded in each binary; %d runs per tool, alternating; medians of wall time.\n\n",
		o.files, failed[0], o.runs)
	fmt.Println("| Comparison | this tool | trivy | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| `registry scan --config .` vs `trivy config .` | %.0f ms | %.0f ms | %.2f |\n",
		benchutil.Ms(benchutil.Median(ours.times)), benchutil.Ms(benchutil.Median(theirs.times)), benchutil.Ratio(ours.times, theirs.times))
	fmt.Printf("| CPU time (user + system), same commands | %.0f ms | %.0f ms | %.2f |\n",
		benchutil.Ms(benchutil.Median(ours.cpu)), benchutil.Ms(benchutil.Median(theirs.cpu)), benchutil.Ratio(ours.cpu, theirs.cpu))
	fmt.Printf("\nRaw wall times: registry %s; trivy %s.\n", strings.Join(benchutil.Rounded(ours.times), ", "), strings.Join(benchutil.Rounded(theirs.times), ", "))
	return nil
}

// countFailures counts the failed checks in a Trivy JSON report.
func countFailures(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var rep struct {
		Results []struct {
			Misconfigurations []struct{ Status string }
		}
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rep.Results {
		for _, m := range r.Misconfigurations {
			if m.Status == "FAIL" {
				n++
			}
		}
	}
	return n, nil
}
