package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/inspector"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
	"github.com/registry-actions/registry/internal/steps/scan"
	"github.com/registry-actions/registry/internal/version"
)

// dbRetry lets one DB repository retry once, briefly: on 429 or an outage the
// next repository in db-repository is the better retry.
var dbRetry = registry.RetryPolicy{Attempts: 2, BaseDelay: 500 * time.Millisecond, MaxDelay: 2 * time.Second, MaxRetryAfter: 2 * time.Second, Budget: 15 * time.Second}

// ecrScanStartGrace is how long a scan ECR has not registered yet is waited
// for right after push wrote the image in the same chain.
const ecrScanStartGrace = 2 * time.Minute

func runScan(ctx context.Context, r *Run) (report.Result, error) {
	v := r.Values
	cluster := r.clusterOptions()
	var images []string
	if len(v.List("images")) > 0 || len(r.State.Pushed) > 0 || (len(v.List("config")) == 0 && cluster == nil) {
		var err error
		if images, err = r.targetImages(inputs.Scan); err != nil {
			return nil, err
		}
	}
	var targets []scan.Target
	sources := registry.Sources{Dir: r.IO.Dir}
	local, closeLocal, haveLocal := r.pushedLocally()
	if haveLocal {
		defer closeLocal()
	}
	for _, s := range images {
		// The source resolver tells files from references; what it cannot
		// read as a file is a reference, which scan checks itself.
		spec, err := sources.Parse(s)
		switch {
		case err == nil && spec.Local():
			targets = append(targets, scan.Target{Path: spec.String()})
		case haveLocal && slices.Contains(r.State.Pushed, s):
			targets = append(targets, scan.Target{Ref: s, Local: local})
		default:
			targets = append(targets, scan.Target{Ref: s})
		}
	}
	timeout, _ := v.Duration("timeout")
	dbRepos := v.List("db-repository")
	insecure := slices.Clone(v.List("insecure-registries"))
	for _, repo := range dbRepos {
		if host, _, _ := strings.Cut(repo, "/"); registry.IsLoopback(host) {
			insecure = append(insecure, host)
		}
	}
	formats := v.List("formats")
	// A sign stage attesting scan results needs the files written.
	for _, a := range v.List("attest") {
		switch strings.ToLower(a) {
		case "vuln":
			formats = appendMissing(formats, scan.FormatJSON)
		case "sbom":
			formats = appendMissing(formats, scan.FormatSBOM)
		}
	}
	var vex []string
	for _, p := range v.List("vex") {
		vex = append(vex, r.Path(p))
	}
	fast := registry.New(registry.Options{UserAgent: version.UserAgent(), Insecure: insecure, Retry: dbRetry})
	opts := scan.Options{
		BeforeWrite: r.scanBeforeWrite,
		Targets:     targets,
		Scanner:     v.String("scanner"),
		Trivy: scanner.Options{
			Severities:         v.List("severity"),
			IgnoreUnfixed:      v.Bool("ignore-unfixed"),
			PkgTypes:           v.List("pkg-types"),
			Scanners:           v.List("scanners"),
			IgnoreFile:         r.ignoreFile(),
			VEX:                vex,
			Timeout:            timeout,
			Platforms:          v.List("platforms"),
			DBRepositories:     dbRepos,
			CacheDir:           r.Path(v.String("cache-dir")),
			SkipDBUpdate:       v.Bool("skip-db-update"),
			Server:             v.String("trivy-server"),
			ServerToken:        v.String("trivy-server-token"),
			RemoteOptions:      r.Registry.Remote(ctx),
			DBRemoteOptions:    r.Registry.Remote(ctx, remote.WithTransport(fast.Transport())),
			InsecureRegistries: insecure,
		},
		FailOn:        v.List("fail-on"),
		Formats:       formats,
		SARIFCategory: v.String("sarif-category"),
		OutputDir:     r.Path(v.String("output-dir")),
		WorkDir:       r.IO.Dir,
		ECR: scan.ECROptions{
			Client: func(ctx context.Context, host registry.ECRHost) (scan.Findings, error) {
				return ecr.New(ctx, ecr.Options{Region: host.Region, RegistryID: host.AccountID})
			},
			Wait: ecr.WaitOptions{Timeout: timeout},
		},
		Inspector: scan.InspectorOptions{
			Client: func(ctx context.Context, host registry.ECRHost) (scan.InspectorFindings, error) {
				return inspector.New(ctx, inspector.Options{Region: host.Region})
			},
		},
		Config: scan.ConfigOptions{
			Paths:                    v.List("config"),
			SkipFiles:                v.List("skip-files"),
			SkipDirs:                 v.List("skip-dirs"),
			ChecksBundleRepositories: v.List("checks-bundle-repository"),
		},
		Cluster:  cluster,
		Registry: r.Registry,
		Log:      r.Log,
	}
	if len(r.State.Pushed) > 0 {
		opts.ECR.Wait.StartGrace = ecrScanStartGrace
		opts.Inspector.JustPushed = true
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	// Never write into a directory this program did not make: the scan
	// stage claims output-dir before writing its reports, and cache-dir is
	// claimed here, before Trivy opens it.
	if usesTrivyCache(opts) {
		if err := r.claimTrivyCache(opts.Trivy.CacheDir); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
	}
	res, err := scan.Run(ctx, opts)
	if res == nil {
		return nil, err
	}
	for _, rep := range res.Reports() {
		r.State.Scans = append(r.State.Scans, ScannedImage{Image: rep.Image, Platform: rep.Platform, Digest: rep.Digest, TrivyJSON: rep.TrivyJSON, SBOM: rep.SBOM})
	}
	return res, err
}

// usesTrivyCache tells a scan that keeps Trivy's DB and layer cache in
// cache-dir from one that reads findings elsewhere (ECR, a Trivy server).
func usesTrivyCache(opts scan.Options) bool {
	s := strings.ToLower(strings.TrimSpace(opts.Scanner))
	return (s == "" || s == scan.ScannerTrivy) && opts.Trivy.Server == "" && opts.Trivy.CacheDir != ""
}

// clusterOptions says which cluster to scan: one is scanned when kubeconfig,
// k8s-context or k8s-namespaces is set; kubeconfig defaults to $KUBECONFIG
// (a list, as kubectl reads it), then ~/.kube/config.
func (r *Run) clusterOptions() *scan.ClusterOptions {
	v := r.Values
	kubeconfig, context, namespaces := v.String("kubeconfig"), v.String("k8s-context"), v.List("k8s-namespaces")
	if kubeconfig == "" && context == "" && len(namespaces) == 0 {
		return nil
	}
	var files []string
	if kubeconfig != "" {
		files = []string{r.Path(kubeconfig)}
	} else if env := r.IO.Getenv("KUBECONFIG"); env != "" {
		for _, f := range filepath.SplitList(env) {
			if f != "" {
				files = append(files, r.Path(f))
			}
		}
	}
	return &scan.ClusterOptions{Kubeconfig: files, Context: context, Namespaces: namespaces}
}

// ignoreFile is the ignore-file input, or Trivy's ignore file in the
// working directory when there is one (.trivyignore first, as Trivy does).
func (r *Run) ignoreFile() string {
	if f := r.Values.String("ignore-file"); f != "" {
		return r.Path(f)
	}
	var found []string
	for _, name := range []string{".trivyignore", ".trivyignore.yaml"} {
		if st, err := os.Stat(r.Path(name)); err == nil && !st.IsDir() {
			found = append(found, name)
		}
	}
	switch len(found) {
	case 0:
		return ""
	case 2:
		r.Log.Warnf("both .trivyignore and .trivyignore.yaml are in the working directory: using .trivyignore; set ignore-file to choose")
	}
	r.Log.Infof("using the ignore file %s found in the working directory", found[0])
	return r.Path(found[0])
}

func appendMissing(list []string, item string) []string {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), item) {
			return list
		}
	}
	return append(list, item)
}
