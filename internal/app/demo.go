package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/outdir"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/sign"
)

// The demo runs the whole job — every stage — on an embedded default: a
// real OCI registry in this process on loopback, a small two-platform sample
// image, an offline vulnerability database and an ephemeral signing key. It
// goes through the Action's own front door (INPUT_* variables, GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY), so what it leaves behind is exactly what a workflow
// run would show.

func demoCommand(pio IO, exit *int) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole job against an in-process registry and a sample image (offline)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			*exit = runDemo(cmd.Context(), pio, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "demo-output", "directory for the job summary, outputs, log and reports")
	return cmd
}

// demoKeyPassword protects the demo's throwaway signing key.
const demoKeyPassword = "demo-password"

// demoStep is one invocation of the Action within the demo.
type demoStep struct {
	title  string
	inputs map[string]string
}

func runDemo(ctx context.Context, pio IO, out string) int {
	if !filepath.IsAbs(out) {
		out = filepath.Join(pio.Dir, out)
	}
	// Never delete or overwrite what this program did not write: the
	// directory must be new, empty, or marked by an earlier demo.
	if err := outdir.Claim(out); err != nil {
		fmt.Fprintf(pio.Stderr, "demo: %s\n", report.OneLine(err.Error()))
		return failure.Code(err)
	}
	// The demo starts from scratch every time; what it removes are its own
	// files from an earlier run, in a directory that carries its marker.
	if err := removeDemoFiles(out); err != nil {
		fmt.Fprintf(pio.Stderr, "demo: %v\n", err)
		return failure.ExitFailed
	}
	reg, err := localregistry.Start(ctx, localregistry.Options{Deletes: true})
	if err != nil {
		fmt.Fprintf(pio.Stderr, "demo: %v\n", err)
		return failure.ExitFailed
	}
	defer reg.Close()

	fixtures, err := prepareDemo(ctx, out, reg.Host)
	if err != nil {
		fmt.Fprintf(pio.Stderr, "demo: %v\n", err)
		return failure.ExitFailed
	}
	logFile, err := os.Create(filepath.Join(out, "log.txt"))
	if err != nil {
		fmt.Fprintf(pio.Stderr, "demo: %v\n", err)
		return failure.ExitFailed
	}
	defer logFile.Close()

	files := map[string]string{
		"GITHUB_OUTPUT":       filepath.Join(out, "outputs.txt"),
		"GITHUB_STEP_SUMMARY": filepath.Join(out, "step-summary.md"),
		"GITHUB_ENV":          filepath.Join(out, "env.txt"),
	}
	for _, f := range files {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			fmt.Fprintf(pio.Stderr, "demo: %v\n", err)
			return failure.ExitFailed
		}
	}
	fmt.Fprintf(pio.Stderr, "demo: registry at %s, sample image %s\n", reg.Host, fixtures.description)
	code := failure.ExitOK
	for _, step := range fixtures.steps {
		fmt.Fprintf(pio.Stderr, "demo: %s\n", step.title)
		env := map[string]string{
			"GITHUB_ACTIONS":    "true",
			"GITHUB_REPOSITORY": "demo/sample",
			"GITHUB_SHA":        "0000000000000000000000000000000000000000",
			"GITHUB_REF":        "refs/heads/main",
			"GITHUB_WORKFLOW":   "demo",
			"GITHUB_SERVER_URL": "https://github.com",
			"GITHUB_RUN_ID":     "1",
			"GITHUB_ACTOR":      "demo",
			"GITHUB_WORKSPACE":  out,
			"HOME":              pio.Getenv("HOME"),
		}
		for k, v := range files {
			env[k] = v
		}
		for k, v := range step.inputs {
			env["INPUT_"+strings.ToUpper(k)] = v
		}
		stdout := io.MultiWriter(logFile, pio.Stderr)
		code = Main(ctx, IO{Getenv: func(k string) string { return env[k] }, Stdout: stdout, Stderr: stdout, Dir: out, Environ: os.Environ})
		if code != failure.ExitOK {
			fmt.Fprintf(pio.Stderr, "demo: %s failed with exit code %d\n", step.title, code)
			break
		}
	}
	fmt.Fprintf(pio.Stdout, "\nJob summary:   %s\nStep outputs:  %s\nLog:           %s\nReports:       %s\n",
		files["GITHUB_STEP_SUMMARY"], files["GITHUB_OUTPUT"], filepath.Join(out, "log.txt"), filepath.Join(out, "reports"))
	if entries, err := os.ReadDir(filepath.Join(out, "reports")); err == nil {
		var names []string
		for _, e := range entries {
			// The directory's marker is not a report.
			if !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(pio.Stdout, "  %s\n", n)
		}
	}
	return code
}

// demoFiles are the names the demo writes at the top of its output
// directory; only these are removed when a marked directory is reused.
var demoFiles = []string{
	"sample-image", "trivy-cache", "reports", "cosign.key", "cosign.pub", ".trivyignore",
	"log.txt", "outputs.txt", "step-summary.md", "env.txt",
}

func removeDemoFiles(out string) error {
	for _, name := range demoFiles {
		if err := os.RemoveAll(filepath.Join(out, name)); err != nil {
			return fmt.Errorf("remove the earlier demo's %s: %w", name, err)
		}
	}
	return nil
}

// demoFixtures are what the demo's steps work on.
type demoFixtures struct {
	description string
	steps       []demoStep
}

// prepareDemo writes the sample image and everything the stages need, and
// returns the steps to run.
func prepareDemo(ctx context.Context, out, host string) (*demoFixtures, error) {
	layout := filepath.Join(out, "sample-image")
	if err := writeDemoImage(layout); err != nil {
		return nil, fmt.Errorf("sample image: %w", err)
	}
	f := &demoFixtures{description: "demo-output/sample-image (two platforms)"}
	if err := seedDemoHistory(ctx, host+"/demo/app"); err != nil {
		return nil, fmt.Errorf("seed the demo repository: %w", err)
	}
	// An ephemeral signing key: the demo signs offline, without Fulcio or Rekor.
	keys, err := sign.NewKeyPair(demoKeyPassword)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, "cosign.key"), keys.PrivatePEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, "cosign.pub"), keys.PublicPEM, 0o644); err != nil {
		return nil, err
	}

	// An offline vulnerability database with advisories for the sample's
	// packages, in the cache the scan stage reads.
	if err := vulndb.SeedCache(filepath.Join(out, "trivy-cache"), vulndb.MetadataAt(time.Now().Add(-6*time.Hour))); err != nil {
		return nil, fmt.Errorf("vulnerability database: %w", err)
	}
	// The team has accepted two findings until the next base-image update;
	// scan finds this ignore file in the workspace by itself.
	ignore := "# Accepted until the base images are rebuilt; tracked in the release checklist.\nCVE-2099-0001\nCVE-2099-0101\n"
	if err := os.WriteFile(filepath.Join(out, ".trivyignore"), []byte(ignore), 0o644); err != nil {
		return nil, err
	}

	repos := host + "/demo/app\n" + host + "/mirror/app"
	policy := map[string]string{
		"keep-tagged":         "1",
		"tag-patterns":        "pr-*",
		"untagged-older-than": "7d",
		"protect-tags":        "latest,v*",
		"output-dir":          "reports",
	}
	chain := map[string]string{
		"stage":        "push,scan,sign,verify,clean",
		"source":       "sample-image",
		"images":       repos,
		"tags":         "v1.0.0,latest",
		"key":          "cosign.key",
		"key-password": demoKeyPassword,
		"tlog-upload":  "false",
		"public-key":   "cosign.pub",
		"mode":         "preview",
		// scan: the offline DB, every report format, the default gate.
		"cache-dir":      "trivy-cache",
		"skip-db-update": "true",
		"formats":        "sarif,json,sbom",
		// sign attaches the scan as attestations; verify requires them.
		"attest":               "vuln,sbom",
		"require-attestations": "vuln,sbom",
	}
	enforce := map[string]string{"stage": "clean", "images": host + "/demo/app", "mode": "enforce"}
	for k, v := range policy {
		chain[k], enforce[k] = v, v
	}
	f.steps = append(f.steps,
		demoStep{title: "push to two repositories, scan, sign, verify, and preview the lifecycle policy", inputs: chain},
		demoStep{title: "clean: enforce the lifecycle policy", inputs: enforce},
	)
	return f, nil
}

// writeDemoImage writes the sample image — linux/amd64 on Alpine and
// linux/arm64 on Debian, sharing a base layer, with known vulnerable
// packages and a buildx-style attestation — as an OCI layout.
func writeDemoImage(dir string) error {
	idx, err := vulndb.Index()
	if err != nil {
		return err
	}
	return synth.WriteLayout(dir, idx)
}

// seedDemoHistory gives the demo repository a history for clean to work on:
// two old pull-request images (multi-arch, with attestations and a
// signature), a recent one and an old release.
func seedDemoHistory(ctx context.Context, repository string) error {
	repo, err := name.NewRepository(repository, name.Insecure)
	if err != nil {
		return err
	}
	now := time.Now()
	multi := []string{"linux/amd64", "linux/arm64"}
	for _, img := range []cleanfixture.Image{
		{Tags: []string{"pr-1"}, Created: now.AddDate(0, 0, -40), Platforms: multi, Attestations: true, Signature: true, Seed: 1},
		{Tags: []string{"pr-2"}, Created: now.AddDate(0, 0, -35), Platforms: multi, Attestations: true, Signature: true, Seed: 2},
		{Tags: []string{"pr-3"}, Created: now.AddDate(0, 0, -2), Seed: 3},
		{Tags: []string{"v0.9.0"}, Created: now.AddDate(0, 0, -200), Annotate: true, Seed: 4},
	} {
		if _, err := cleanfixture.Push(ctx, repo, img, remote.WithContext(ctx)); err != nil {
			return err
		}
	}
	return nil
}
