// Command pushbench measures push against crane and skopeo in the same run,
// alternating tools, on a fresh in-process registry per cold push, and prints
// median wall-time ratios as a markdown table. Scenarios: cold push on
// loopback (with each client's CPU time and the registry's), cold push over a
// WAN model (a round trip per request, per-connection and link bandwidth),
// identical re-push, fan-out to three registries (loopback and behind links of
// fixed bandwidth), and a second repository of the same registry.
//
//	go run ./test/bench/pushbench -registry bin/registry -crane bin/crane
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
	"syscall"
	"time"

	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/test/bench/benchutil"
)

type options struct {
	registry, crane, skopeo string
	runs, layers            int
	layerMiB                int64
	linkMbps                int
	wanRTT                  time.Duration
	wanStreamMbps           int
	wanLinkMbps             int
}

func main() {
	var o options
	flag.StringVar(&o.registry, "registry", "bin/registry", "registry binary under test")
	flag.StringVar(&o.crane, "crane", "bin/crane", "crane binary (built from the go-containerregistry version in go.mod)")
	flag.StringVar(&o.skopeo, "skopeo", "skopeo", "skopeo binary (Debian package); empty to skip")
	flag.IntVar(&o.runs, "runs", 5, "runs per tool and scenario")
	flag.IntVar(&o.layers, "layers", 8, "layers per platform")
	flag.Int64Var(&o.layerMiB, "layer-mib", 16, "MiB of incompressible data per layer")
	flag.IntVar(&o.linkMbps, "link-mbps", 400, "bandwidth of each registry's link in the fan-out scenario (0: unlimited loopback)")
	flag.DurationVar(&o.wanRTT, "wan-rtt", 30*time.Millisecond, "round trip of the WAN model every request pays (0: skip the WAN scenario)")
	flag.IntVar(&o.wanStreamMbps, "wan-stream-mbps", 100, "throughput of one connection over the WAN model")
	flag.IntVar(&o.wanLinkMbps, "wan-link-mbps", 1000, "bandwidth of the WAN model's link, shared by all connections")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "pushbench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	work, err := os.MkdirTemp("", "pushbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	layout := filepath.Join(work, "layout")
	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, o.layers, o.layerMiB<<20, 42)
	if err != nil {
		return err
	}
	if err := synth.WriteLayout(layout, idx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fixture: 2 platforms × %d layers × %d MiB in %s\n", o.layers, o.layerMiB, layout)

	tools := map[string]func(host, repo string) *exec.Cmd{
		"registry": func(host, repo string) *exec.Cmd {
			return exec.Command(o.registry, "push", "--source", layout, "--images", host+"/"+repo, "--tags", "v1", "--json")
		},
		"crane": func(host, repo string) *exec.Cmd {
			return exec.Command(o.crane, "push", "--insecure", layout, host+"/"+repo+":v1")
		},
	}
	order := []string{"registry", "crane"}
	if o.skopeo != "" {
		if _, err := exec.LookPath(o.skopeo); err == nil {
			tools["skopeo"] = func(host, repo string) *exec.Cmd {
				return exec.Command(o.skopeo, "copy", "--all", "--quiet", "--dest-tls-verify=false", "oci:"+layout, "docker://"+host+"/"+repo+":v1")
			}
			order = append(order, "skopeo")
		} else {
			fmt.Fprintf(os.Stderr, "skopeo not found: skipping it (apt-get install skopeo)\n")
		}
	}

	// Wall time is what users wait for; the client's own CPU time shows how
	// much of the machine each tool takes from the registry it talks to.
	cold, coldCPU, serverCPU, wanCold := map[string][]time.Duration{}, map[string][]time.Duration{}, map[string][]time.Duration{}, map[string][]time.Duration{}
	var repush, fanout1, fanout3, linked1, linked3 []time.Duration
	var secondRepoBytes []int64
	for i := 0; i < o.runs; i++ {
		// Alternate the order so no tool always runs on a warmer machine.
		rot := append(order[i%len(order):], order[:i%len(order)]...)
		for _, tool := range rot {
			m, err := timedFresh(nil, func(host string) *exec.Cmd { return tools[tool](host, "bench/app") })
			if err != nil {
				return fmt.Errorf("%s cold push: %w", tool, err)
			}
			cold[tool] = append(cold[tool], m.wall)
			coldCPU[tool] = append(coldCPU[tool], m.clientCPU)
			serverCPU[tool] = append(serverCPU[tool], m.serverCPU)
			if o.wanRTT > 0 {
				m, err := timedFresh(benchutil.WAN(o.wanRTT, o.wanStreamMbps, o.wanLinkMbps), func(host string) *exec.Cmd { return tools[tool](host, "bench/app") })
				if err != nil {
					return fmt.Errorf("%s cold push over the WAN model: %w", tool, err)
				}
				wanCold[tool] = append(wanCold[tool], m.wall)
			}
		}
		// Identical re-push: same registry, second time.
		reg, err := localregistry.Start(context.Background(), localregistry.Options{Disk: true})
		if err != nil {
			return err
		}
		if _, _, err := benchutil.Timed(tools["registry"](reg.Host, "bench/app")); err != nil {
			reg.Close()
			return err
		}
		d, _, err := benchutil.Timed(tools["registry"](reg.Host, "bench/app"))
		reg.Close()
		if err != nil {
			return err
		}
		repush = append(repush, d)

		// Fan-out: one registry vs three, each fresh.
		m1, err := timedFresh(nil, func(host string) *exec.Cmd { return tools["registry"](host, "bench/fan") })
		if err != nil {
			return err
		}
		fanout1 = append(fanout1, m1.wall)
		d3, err := fanOut3(o.registry, layout, 0)
		if err != nil {
			return err
		}
		fanout3 = append(fanout3, d3)
		if o.linkMbps > 0 {
			l1, err := fanOutN(o.registry, layout, 1, o.linkMbps)
			if err != nil {
				return err
			}
			l3, err := fanOutN(o.registry, layout, 3, o.linkMbps)
			if err != nil {
				return err
			}
			linked1, linked3 = append(linked1, l1), append(linked3, l3)
		}

		// Second repository of the same registry in one step.
		b, err := secondRepository(o.registry, layout)
		if err != nil {
			return err
		}
		secondRepoBytes = append(secondRepoBytes, b)
	}

	ours := benchutil.Median(cold["registry"])
	fmt.Printf("| Scenario | Median | Ratio | Target |\n|---|---|---|---|\n")
	fmt.Printf("| cold push, registry | %s | 1.00 | |\n", ours.Round(time.Millisecond))
	for _, tool := range order[1:] {
		m := benchutil.Median(cold[tool])
		fmt.Printf("| cold push, %s | %s | registry/%s = %.2f | ≤ 1.0 |\n", tool, m.Round(time.Millisecond), tool, float64(ours)/float64(m))
	}
	for _, tool := range order {
		fmt.Printf("| cold push, CPU of the %s process (the registry's meanwhile: %s) | %s | registry/%s = %.2f | |\n", tool, benchutil.Median(serverCPU[tool]).Round(time.Millisecond), benchutil.Median(coldCPU[tool]).Round(time.Millisecond), tool, benchutil.Ratio(coldCPU["registry"], coldCPU[tool]))
	}
	if o.wanRTT > 0 {
		wanOurs := benchutil.Median(wanCold["registry"])
		fmt.Printf("| cold push over the WAN model, registry | %s | 1.00 | |\n", wanOurs.Round(time.Millisecond))
		for _, tool := range order[1:] {
			m := benchutil.Median(wanCold[tool])
			fmt.Printf("| cold push over the WAN model, %s | %s | registry/%s = %.2f | ≤ 1.0 |\n", tool, m.Round(time.Millisecond), tool, float64(wanOurs)/float64(m))
		}
	}
	fmt.Printf("| identical re-push | %s | re-push/cold = %.3f | ≤ 0.05 |\n", benchutil.Median(repush).Round(time.Millisecond), float64(benchutil.Median(repush))/float64(ours))
	fmt.Printf("| fan-out to 3 registries, loopback (3 registries in this process on the same cores) | %s | 3/1 = %.2f | ≤ 1.5 |\n", benchutil.Median(fanout3).Round(time.Millisecond), benchutil.Ratio(fanout3, fanout1))
	if len(linked3) > 0 {
		fmt.Printf("| fan-out to 3 registries, %d Mbit/s link each | %s | 3/1 = %.2f | ≤ 1.5 |\n", o.linkMbps, benchutil.Median(linked3).Round(time.Millisecond), benchutil.Ratio(linked3, linked1))
	}
	maxBytes := int64(0)
	for _, b := range secondRepoBytes {
		maxBytes = max(maxBytes, b)
	}
	fmt.Printf("| second repository, same registry | | layer bytes uploaded = %d | 0 |\n", maxBytes)
	fmt.Printf("\nRuns per scenario: %d. Raw cold-push times: ", o.runs)
	for _, tool := range order {
		fmt.Printf("%s %v; ", tool, benchutil.Rounded(cold[tool]))
	}
	fmt.Println()
	return nil
}

// measure is one timed command: wall time, the CPU time (user + system) the
// command used, and the CPU time this process — the registry — used meanwhile.
type measure struct {
	wall, clientCPU, serverCPU time.Duration
}

// timedFresh runs cmd against a brand-new registry, reached through wrap when
// it is not nil.
func timedFresh(wrap func(http.Handler) http.Handler, cmd func(host string) *exec.Cmd) (measure, error) {
	reg, err := localregistry.Start(context.Background(), localregistry.Options{Disk: true, Wrap: wrap})
	if err != nil {
		return measure{}, err
	}
	defer reg.Close()
	c := cmd(reg.Host)
	before := selfCPU()
	wall, _, err := benchutil.Timed(c)
	if err != nil {
		return measure{}, err
	}
	return measure{wall: wall, clientCPU: c.ProcessState.UserTime() + c.ProcessState.SystemTime(), serverCPU: selfCPU() - before}, nil
}

func fanOut3(bin, layout string, mbps int) (time.Duration, error) {
	return fanOutN(bin, layout, 3, mbps)
}

// fanOutN pushes to n fresh registries in one step; with mbps > 0 each
// registry receives through a link of that bandwidth, as registries across
// a network do.
func fanOutN(bin, layout string, n, mbps int) (time.Duration, error) {
	var hosts []string
	for i := 0; i < n; i++ {
		opts := localregistry.Options{Disk: true}
		if mbps > 0 {
			opts.Wrap = benchutil.Throttle(mbps)
		}
		reg, err := localregistry.Start(context.Background(), opts)
		if err != nil {
			return 0, err
		}
		defer reg.Close()
		hosts = append(hosts, reg.Host+"/bench/fan")
	}
	d, _, err := benchutil.Timed(exec.Command(bin, "push", "--source", layout, "--images", strings.Join(hosts, ","), "--tags", "v1", "--json"))
	return d, err
}

// secondRepository pushes to two repositories of one registry and returns
// the layer bytes the second one uploaded (mounts should make it zero).
func secondRepository(bin, layout string) (int64, error) {
	reg, err := localregistry.Start(context.Background(), localregistry.Options{Disk: true})
	if err != nil {
		return 0, err
	}
	defer reg.Close()
	_, out, err := benchutil.Timed(exec.Command(bin, "push", "--source", layout, "--images", reg.Host+"/staging/app,"+reg.Host+"/prod/app", "--tags", "v1", "--json"))
	if err != nil {
		return 0, err
	}
	var doc struct {
		Stages []struct {
			Result struct {
				Targets []struct {
					BytesUploaded int64 `json:"bytesUploaded"`
					BytesMounted  int64 `json:"bytesMounted"`
				} `json:"targets"`
			} `json:"result"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, err
	}
	t := doc.Stages[0].Result.Targets
	if len(t) != 2 || t[1].BytesMounted == 0 {
		return 0, fmt.Errorf("second repository did not mount: %s", out)
	}
	return t[1].BytesUploaded, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
