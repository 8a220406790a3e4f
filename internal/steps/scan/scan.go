// Package scan is the scan stage: it scans every platform of each image with
// Trivy (or reads ECR's or Amazon Inspector's findings), the repository's
// configuration files and a Kubernetes cluster's workloads, gates on fail-on
// independently of what is reported, and writes every requested report
// format from one scan.
package scan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/outdir"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
)

// Scanners: where findings come from.
const (
	ScannerTrivy     = "trivy"
	ScannerECR       = "ecr"
	ScannerInspector = "inspector"
)

// Report formats written into OutputDir.
const (
	FormatSARIF = "sarif"
	FormatJSON  = "json"
	FormatSBOM  = "sbom"
)

// Target is one image to scan: a registry reference or a local path (OCI
// layout, OCI archive, docker-save tarball).
type Target struct {
	Ref  string
	Path string
	// Local, with Ref (repository@digest), is Ref's image already at hand:
	// the OCI layout or archive a chain just pushed as Ref. It is scanned
	// from there, not pulled back, and reported as Ref.
	Local scanner.Artifact
}

func (t Target) String() string {
	if t.Path != "" {
		return t.Path
	}
	return t.Ref
}

// Options is everything the scan stage needs.
type Options struct {
	Targets []Target
	// Scanner is ScannerTrivy (default), ScannerECR or ScannerInspector
	// (Targets are then ECR repositories, optionally narrowed by tag or
	// digest).
	Scanner string
	// Trivy configures the engine; RemoteOptions are filled from Registry
	// unless set. For ScannerECR, Severities, IgnoreUnfixed, IgnoreFile and
	// Platforms apply to ECR's findings too.
	Trivy scanner.Options
	// FailOn is the gate (see scanner.ParseFailOn); empty means CRITICAL.
	FailOn []string
	// Formats to write: FormatSARIF, FormatJSON, FormatSBOM.
	Formats []string
	// SARIFCategory prefixes each image's code-scanning category.
	SARIFCategory string
	// OutputDir receives the reports; WorkDir, when OutputDir is inside it,
	// makes the paths in outputs relative, so that they resolve both inside
	// the Action's container and in later steps on the runner.
	OutputDir string
	WorkDir   string

	ECR       ECROptions
	Inspector InspectorOptions
	// Config scans files and directories for misconfigurations.
	Config ConfigOptions
	// Cluster, when set, scans a Kubernetes cluster's workloads.
	Cluster *ClusterOptions

	Registry *registry.Client
	Log      report.Logger
	// BeforeWrite, when set, is waited for once the findings are known and
	// before any report file is written; an error stops the stage there,
	// with nothing written. A chain scanning an image while push uploads it
	// writes reports only for an image that was pushed.
	BeforeWrite func(ctx context.Context) error
	// Now is the clock for DB ages (tests); nil means time.Now.
	Now func() time.Time
}

// ECROptions configure scanner: ecr.
type ECROptions struct {
	// Client returns the ECR API for a registry host.
	Client func(ctx context.Context, host registry.ECRHost) (Findings, error)
	// Wait bounds the wait for a scan in progress; StartGrace covers a scan
	// that ECR has not registered yet, right after a push.
	Wait ecr.WaitOptions
}

// ConfigOptions configure configuration scanning.
type ConfigOptions struct {
	// Paths are files or directories, relative to WorkDir (or absolute
	// inside it); "." is the whole checkout.
	Paths []string
	// SkipFiles and SkipDirs are glob patterns relative to WorkDir.
	SkipFiles []string
	SkipDirs  []string
	// ChecksBundleRepositories are mirrors of Trivy's checks bundle, tried
	// in order; empty means the checks embedded in this build.
	ChecksBundleRepositories []string
}

// ClusterOptions say which cluster and namespaces to scan.
type ClusterOptions struct {
	// Kubeconfig lists kubeconfig files; empty means $KUBECONFIG, then
	// ~/.kube/config.
	Kubeconfig []string
	Context    string
	// Namespaces to scan; empty means all.
	Namespaces []string
}

// Findings is the part of the ECR API scan reads.
type Findings interface {
	ScanFindings(ctx context.Context, repo, digest string, opts ecr.WaitOptions) (ecr.ScanFindings, error)
}

// Run scans, writes the reports and applies the gate. A failed gate
// returns the full result with a *failure.GateError; a scan that could not
// run returns no result.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = report.Discard{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	threshold, formats, err := validate(&opts)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var res *Result
	switch {
	case opts.Scanner == ScannerECR:
		res, err = runECR(ctx, opts)
	case opts.Scanner == ScannerInspector:
		res, err = runInspector(ctx, opts, threshold)
	case len(opts.Targets) > 0:
		res, err = runTrivy(ctx, opts)
	default:
		var sres *scanner.Result
		if sres, err = scanner.NewResult(opts.Trivy.Severities); err != nil {
			return nil, failure.Invalid(fmt.Errorf("scan: severity: %w", err))
		}
		res = newResult(ScannerTrivy, sres)
	}
	if err != nil {
		return nil, err
	}
	if opts.Cluster != nil {
		if err := runCluster(ctx, opts, res); err != nil {
			return nil, err
		}
	}
	if len(opts.Config.Paths) > 0 {
		if err := runConfig(ctx, opts, res); err != nil {
			return nil, err
		}
	}
	if db := &res.Scan.DB; !db.UpdatedAt.IsZero() {
		db.Age = opts.Now().Sub(db.UpdatedAt).Round(time.Second)
		db.AgeSeconds = int64(db.Age / time.Second)
	}
	res.Threshold = threshold.String()
	res.FailOn = threshold.Severities()
	failed, verdict, err := scanner.GateThreshold(res.Scan, threshold)
	if err != nil {
		return nil, failure.Invalid(fmt.Errorf("scan: %w", err))
	}
	res.Failed, res.Verdict = failed, verdict
	for i := range res.Scan.Images {
		one := &scanner.Result{Images: res.Scan.Images[i : i+1], Severities: res.Scan.Severities}
		_, v, _ := scanner.GateThreshold(one, threshold)
		res.Images[i].Verdict = v
	}
	for i := range res.Scan.Config {
		one := &scanner.Result{Config: res.Scan.Config[i : i+1], Severities: res.Scan.Severities}
		_, v, _ := scanner.GateThreshold(one, threshold)
		res.Config[i].Verdict = v
	}
	if opts.BeforeWrite != nil {
		if err := opts.BeforeWrite(ctx); err != nil {
			return nil, err
		}
	}
	if err := res.writeReports(ctx, opts, formats); err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		opts.Log.Warnf("%s", w)
	}
	res.Duration = time.Since(start)
	res.Seconds = res.Duration.Seconds()
	// The caller reports a failed gate as the step's error: one annotation.
	opts.Log.Infof("scan %s", verdict)
	if failed {
		return res, &failure.GateError{Verdict: "scan " + verdict}
	}
	return res, nil
}

func validate(opts *Options) (scanner.Threshold, []string, error) {
	opts.Scanner = strings.ToLower(strings.TrimSpace(opts.Scanner))
	switch opts.Scanner {
	case "":
		opts.Scanner = ScannerTrivy
	case ScannerTrivy, ScannerECR, ScannerInspector:
	default:
		return scanner.Threshold{}, nil, failure.Invalidf("scan: scanner %q is not supported: use trivy, ecr or inspector", opts.Scanner)
	}
	switch {
	case opts.Scanner == ScannerInspector && len(opts.Targets) == 0:
		return scanner.Threshold{}, nil, failure.Invalidf("scan: scanner: inspector needs ECR repositories in \"images\": name the repositories whose Amazon Inspector findings to read")
	case len(opts.Targets) == 0 && len(opts.Config.Paths) == 0 && opts.Cluster == nil:
		return scanner.Threshold{}, nil, failure.Invalidf("scan: input \"images\" is required: name the images to scan (or config paths, or a cluster with kubeconfig), or run push earlier in the same chain")
	case opts.Cluster != nil && opts.Scanner != ScannerTrivy:
		return scanner.Threshold{}, nil, failure.Invalidf("scan: a cluster's images are scanned with Trivy, not scanner: %s: scan the cluster in a step with scanner: trivy", opts.Scanner)
	}
	if err := validateConfigPaths(opts); err != nil {
		return scanner.Threshold{}, nil, err
	}
	failOn := opts.FailOn
	if len(failOn) == 0 {
		failOn = []string{"CRITICAL"}
	}
	threshold, err := scanner.ParseFailOn(failOn)
	if err != nil {
		return threshold, nil, failure.Invalid(fmt.Errorf("scan: %w", err))
	}
	if _, err := scanner.ParseSeverities(opts.Trivy.Severities); err != nil {
		return threshold, nil, failure.Invalid(fmt.Errorf("scan: severity: %w", err))
	}
	var formats []string
	for _, f := range opts.Formats {
		f = strings.ToLower(strings.TrimSpace(f))
		switch f {
		case "":
			continue
		case FormatSARIF, FormatJSON, FormatSBOM, "cyclonedx":
		default:
			return threshold, nil, failure.Invalidf("scan: formats: %q is not a report format: use sarif, json, sbom", f)
		}
		if f == "cyclonedx" {
			f = FormatSBOM
		}
		if !slices.Contains(formats, f) {
			formats = append(formats, f)
		}
	}
	if len(formats) > 0 && opts.OutputDir == "" {
		return threshold, nil, failure.Invalidf("scan: output-dir is empty: name a directory for the %s reports", strings.Join(formats, ", "))
	}
	return threshold, formats, nil
}

func runTrivy(ctx context.Context, opts Options) (*Result, error) {
	targets, err := trivyTargets(opts)
	if err != nil {
		return nil, err
	}
	so := opts.Trivy
	if so.RemoteOptions == nil {
		so.RemoteOptions = remoteOptions(ctx, opts)
	}
	if so.Server != "" {
		opts.Log.Infof("scanning %s on trivy server %s", plural(len(targets), "image"), so.Server)
	} else {
		opts.Log.Infof("scanning %s with Trivy; vulnerability DB cache %s", plural(len(targets), "image"), so.CacheDir)
	}
	end := opts.Log.Group("scan " + targetList(targets))
	sres, err := scanner.Scan(ctx, targets, so)
	end()
	if err != nil {
		return nil, trivyError(err)
	}
	res := newResult(ScannerTrivy, sres)
	res.Warnings = append(res.Warnings, sres.Warnings...)
	res.logImages(opts.Log)
	return res, nil
}

func trivyTargets(opts Options) ([]scanner.Target, error) {
	var out []scanner.Target
	seen := map[string]bool{}
	for _, t := range opts.Targets {
		if t.Path != "" {
			out = append(out, scanner.PathTarget(t.Path))
			continue
		}
		ref, err := parseRef(opts, t.Ref)
		if err != nil {
			return nil, err
		}
		// The same digest in several repositories (push wrote one image to
		// several registries) is scanned once.
		d, isDigest := ref.(name.Digest)
		if isDigest {
			if seen[d.DigestStr()] {
				opts.Log.Infof("%s has the digest of an image already scanned: not scanned again", ref)
				continue
			}
			seen[d.DigestStr()] = true
		}
		if t.Local != nil && isDigest {
			opts.Log.Infof("%s: reading the layers from the source push read, not back from the registry", ref)
			out = append(out, scanner.LocalTarget(d, t.Local))
			continue
		}
		out = append(out, scanner.RemoteTarget(ref))
	}
	return out, nil
}

func remoteOptions(ctx context.Context, opts Options) []remote.Option {
	if opts.Trivy.RemoteOptions != nil || opts.Registry == nil {
		return opts.Trivy.RemoteOptions
	}
	return opts.Registry.Remote(ctx)
}

func parseRef(opts Options, s string) (name.Reference, error) {
	if lowered, changed := registry.LowercaseGHCR(s); changed {
		opts.Log.Infof("%s lower-cased to %s for ghcr.io", s, lowered)
		s = lowered
	}
	var resolver registry.Resolver
	if opts.Registry != nil {
		resolver = opts.Registry.Resolver
	}
	ref, err := resolver.Reference(s)
	if err != nil {
		return nil, failure.Invalid(fmt.Errorf("scan: images: %w", err))
	}
	return ref, nil
}

// trivyError sorts the engine's errors by exit code: bad inputs and images
// that do not exist (2) from scans that could not run (1).
func trivyError(err error) error {
	switch {
	case errors.Is(err, scanner.ErrInvalidOptions):
		return failure.Invalid(fmt.Errorf("scan: %w", err))
	case errors.Is(err, scanner.ErrImageNotFound):
		return failure.Invalid(fmt.Errorf("scan: %w", err))
	}
	return fmt.Errorf("scan: %w", err)
}

func targetList(ts []scanner.Target) string {
	var names []string
	for _, t := range ts {
		names = append(names, t.String())
	}
	if len(names) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// ensureDir claims output-dir (created, or reused when empty or marked by
// an earlier run), as every stage writing there does.
func ensureDir(dir string) error {
	if err := outdir.Claim(dir); err != nil {
		return fmt.Errorf("scan: output-dir: %w", err)
	}
	return nil
}
