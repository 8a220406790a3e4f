// Command signbench measures signing and verifying a two-platform index with
// a key (transparency log off) with this tool and with the cosign CLI, in the
// same run, alternating tools, each on a freshly pushed image, and prints
// median wall-time ratios as a markdown table.
//
//	go run ./test/bench/signbench -registry bin/registry -cosign /path/to/cosign
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

	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/test/bench/benchutil"
)

const keyPassword = "bench-password"

type options struct {
	registry, cosign string
	runs             int
}

func main() {
	var o options
	flag.StringVar(&o.registry, "registry", "bin/registry", "registry binary under test")
	flag.StringVar(&o.cosign, "cosign", "cosign", "cosign CLI (v2.6.5, the version this module links)")
	flag.IntVar(&o.runs, "runs", 5, "runs per tool")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "signbench: %v\n", err)
		os.Exit(1)
	}
}

// tool runs one sign or verify of an image reference.
type tool struct {
	name           string
	sign, verify   func(ref string) *exec.Cmd
	signT, verifyT []time.Duration
}

func run(o options) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "signbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	benchutil.Absolute(&o.registry, &o.cosign)
	reg, err := localregistry.Start(ctx, localregistry.Options{})
	if err != nil {
		return err
	}
	defer reg.Close()

	// Both tools use the same cosign key pair, made by cosign itself. Each
	// gets its own HOME so neither reads the user's configuration.
	env := func(home string) []string {
		return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"),
			"DOCKER_CONFIG=" + filepath.Join(home, "docker"), "COSIGN_PASSWORD=" + keyPassword}
	}
	homes := map[string]string{}
	for _, t := range []string{"registry", "cosign", "keys"} {
		homes[t] = filepath.Join(work, t)
		if err := os.MkdirAll(homes[t], 0o755); err != nil {
			return err
		}
	}
	gen := exec.Command(o.cosign, "generate-key-pair")
	gen.Dir, gen.Env = homes["keys"], env(homes["keys"])
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("cosign generate-key-pair: %v\n%s", err, out)
	}
	key, pub := filepath.Join(homes["keys"], "cosign.key"), filepath.Join(homes["keys"], "cosign.pub")

	command := func(home, bin string, args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Dir, c.Env = home, env(home)
		return c
	}
	tools := []*tool{
		{
			name: "registry",
			sign: func(ref string) *exec.Cmd {
				return command(homes["registry"], o.registry, "sign", "--images", ref, "--key", key, "--key-password", keyPassword, "--tlog-upload=false")
			},
			verify: func(ref string) *exec.Cmd {
				return command(homes["registry"], o.registry, "verify", "--images", ref, "--public-key", pub, "--tlog-upload=false")
			},
		},
		{
			name: "cosign",
			sign: func(ref string) *exec.Cmd {
				return command(homes["cosign"], o.cosign, "sign", "--yes", "--key", key, "--tlog-upload=false", "--recursive", "--allow-http-registry", ref)
			},
			verify: func(ref string) *exec.Cmd {
				return command(homes["cosign"], o.cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", ref)
			},
		},
	}

	// One warm-up each so neither pays for a cold page cache in the figures.
	for i, t := range tools {
		ref, err := pushIndex(ctx, reg.Host, "warmup-"+t.name, uint64(900+i))
		if err != nil {
			return err
		}
		if _, _, err := benchutil.Timed(t.sign(ref)); err != nil {
			return fmt.Errorf("%s sign: %w", t.name, err)
		}
		if _, _, err := benchutil.Timed(t.verify(ref)); err != nil {
			return fmt.Errorf("%s verify: %w", t.name, err)
		}
	}

	for r := 0; r < o.runs; r++ {
		order := []*tool{tools[0], tools[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for i, t := range order {
			ref, err := pushIndex(ctx, reg.Host, fmt.Sprintf("%s-%d", t.name, r), uint64(r*10+i))
			if err != nil {
				return err
			}
			d, _, err := benchutil.Timed(t.sign(ref))
			if err != nil {
				return fmt.Errorf("%s sign: %w", t.name, err)
			}
			t.signT = append(t.signT, d)
			if d, _, err = benchutil.Timed(t.verify(ref)); err != nil {
				return fmt.Errorf("%s verify: %w", t.name, err)
			}
			t.verifyT = append(t.verifyT, d)
			fmt.Fprintf(os.Stderr, "run %d %-8s sign %6.0f ms  verify %6.0f ms\n", r+1, t.name, benchutil.Ms(t.signT[r]), benchutil.Ms(d))
		}
	}

	ours, theirs := tools[0], tools[1]
	fmt.Printf("Two-platform index (index + 2 platform manifests), key-signed, transparency log off, legacy format; in-process distribution registry on loopback; %d runs per tool, alternating; medians of wall time per command.\n\n", o.runs)
	fmt.Println("| Operation | registry | cosign CLI | ratio (registry / cosign) |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| sign (`registry sign` vs `cosign sign --recursive`) | %.0f ms | %.0f ms | %.2f |\n",
		benchutil.Ms(benchutil.Median(ours.signT)), benchutil.Ms(benchutil.Median(theirs.signT)), benchutil.Ratio(ours.signT, theirs.signT))
	fmt.Printf("| verify (`registry verify`: index + 2 platforms, vs `cosign verify`: the index) | %.0f ms | %.0f ms | %.2f |\n",
		benchutil.Ms(benchutil.Median(ours.verifyT)), benchutil.Ms(benchutil.Median(theirs.verifyT)), benchutil.Ratio(ours.verifyT, theirs.verifyT))
	return nil
}

// pushIndex pushes a fresh two-platform index and returns repo@digest.
func pushIndex(ctx context.Context, host, repo string, seed uint64) (string, error) {
	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, 2, 64<<10, seed)
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag(host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		return "", err
	}
	if err := synth.Push(ctx, tag, idx); err != nil {
		return "", fmt.Errorf("push fixture: %w", err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(d.String()).String(), nil
}
