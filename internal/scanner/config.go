package scanner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	fanalartifact "github.com/aquasecurity/trivy/pkg/fanal/artifact"
	"github.com/aquasecurity/trivy/pkg/fanal/artifact/local"
	"github.com/aquasecurity/trivy/pkg/fanal/walker"
	"github.com/aquasecurity/trivy/pkg/iac/rego"
	"github.com/aquasecurity/trivy/pkg/misconf"
	trivyresult "github.com/aquasecurity/trivy/pkg/result"
	"github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	tlocal "github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
)

// KindMisconfiguration is a failed configuration check in one file.
const KindMisconfiguration = "misconfiguration"

// ConfigTarget is a file or directory scanned for misconfigurations.
type ConfigTarget struct {
	// Path is the file or directory on disk.
	Path string
	// Name is what findings call the files under Path: file paths Trivy
	// reports (relative to Path, or to a file's directory) are joined to it,
	// so that they read as repository paths. Empty keeps Trivy's paths.
	Name string
	// Rename, when set, names each file instead of Name (cluster workloads
	// scanned from generated manifests are named after the workload).
	Rename func(trivyPath string) string
}

// ConfigOptions configure ScanConfig.
type ConfigOptions struct {
	// Severities to report; empty means all. The gate sees every severity.
	Severities []string
	// IgnoreFile is a .trivyignore or .trivyignore.yaml file; check IDs
	// (DS-0002, KSV-0014 or their AVD- forms) and path-scoped entries apply.
	IgnoreFile string
	// SkipFiles and SkipDirs are glob patterns (Trivy's, ** included) of
	// paths not scanned, relative to Root or absolute.
	SkipFiles []string
	SkipDirs  []string
	// Root is the directory relative skip patterns start from; empty means
	// the process's working directory.
	Root string
	// ChecksBundleRepositories are OCI repositories of Trivy's checks
	// bundle, tried in order like DB repositories. Empty means the checks
	// embedded in this build: nothing is downloaded.
	ChecksBundleRepositories []string
	// CacheDir keeps a downloaded checks bundle (<CacheDir>/policy). Empty
	// means <user cache dir>/trivy.
	CacheDir string
	// K8sVersion is the Kubernetes version checks of deprecated APIs assume.
	K8sVersion string
	// Timeout bounds the scan, bundle download included. Zero means DefaultTimeout.
	Timeout time.Duration
	// RemoteOptions carry auth and transport for the bundle download.
	RemoteOptions []remote.Option
	// InsecureRegistries are reached over plain HTTP.
	InsecureRegistries []string
}

// ConfigResult is one configuration scan: a repository's files, or a
// cluster's workloads.
type ConfigResult struct {
	// ID names the scan in SARIF categories: "config" for a repository's
	// files (the default), "cluster/<context>" for a cluster's workloads.
	ID string `json:"id"`
	// Name says what was scanned: "configuration" or "cluster <context>".
	Name string `json:"name"`
	// Paths are the scanned paths as given.
	Paths []string `json:"paths"`
	// Files are every configuration file Trivy recognised, with its type
	// (dockerfile, kubernetes, helm, terraform, cloudformation, …).
	Files []ConfigFile `json:"files"`
	// Findings are reported: after the ignore file and severity, most
	// severe first.
	Findings []Finding `json:"findings"`
	// HiddenBySeverity passed every filter but severity: the gate counts them.
	HiddenBySeverity []Finding      `json:"hidden_by_severity,omitempty"`
	Counts           SeverityCounts `json:"counts"`
	Checks           ChecksInfo     `json:"checks"`
	// Warnings say what the scan could not do as asked (a checks bundle
	// that could not be downloaded, so the embedded checks ran).
	Warnings []string `json:"warnings,omitempty"`
	// Report is Trivy's own report (file paths renamed as in Findings),
	// filtered exactly like Findings, for WriteTrivyJSON.
	Report types.Report `json:"-"`
}

// ConfigFile is one configuration file and its reported findings.
type ConfigFile struct {
	Path   string         `json:"path"`
	Type   string         `json:"type"`
	Counts SeverityCounts `json:"counts"`
}

// ChecksInfo says which checks ran.
type ChecksInfo struct {
	// Source is "embedded" (the checks built into this binary) or the
	// repository a bundle came from.
	Source string `json:"source"`
	// Version of the embedded checks module, or the bundle's digest.
	Version string `json:"version,omitempty"`
	// Downloaded is true when this scan fetched the bundle.
	Downloaded bool `json:"downloaded,omitempty"`
}

// ScanConfig scans files and directories for misconfigurations with Trivy's
// configuration engine and its checks, as `trivy config` does: Dockerfile,
// Kubernetes, Helm, Terraform (and plans), CloudFormation, Azure ARM and
// Ansible files are recognised by Trivy's own detection. It returns *Error
// when the scan could not run.
func ScanConfig(ctx context.Context, targets []ConfigTarget, opts ConfigOptions) (_ *ConfigResult, err error) {
	sevs, err := ParseSeverities(opts.Severities)
	if err != nil {
		return nil, err
	}
	if len(sevs) == 0 {
		sevs = slices.Clone(SeverityNames)
	}
	if len(targets) == 0 {
		return nil, invalid("nothing to scan for misconfigurations: give at least one path")
	}
	for _, t := range targets {
		if _, err := os.Stat(t.Path); err != nil {
			return nil, invalid("config path %s cannot be read (%v): name files or directories of the checkout", t.Path, err)
		}
	}
	if opts.IgnoreFile != "" {
		if _, err := os.Stat(opts.IgnoreFile); err != nil {
			return nil, invalid("ignore file %s cannot be read (%v): fix the ignore-file path or remove it", opts.IgnoreFile, err)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheDir == "" && len(opts.ChecksBundleRepositories) > 0 {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, invalid("no cache directory (%v): set cache-dir", err)
		}
		opts.CacheDir = filepath.Join(dir, "trivy")
	}
	bundleRefs, err := parseBundleRepos(opts)
	if err != nil {
		return nil, err
	}

	trivyMu.Lock()
	defer trivyMu.Unlock()
	ensureLogging()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	defer func() {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrTimeout {
			e.Msg = fmt.Sprintf("configuration scan timed out after %s: raise timeout, or scan fewer paths", opts.Timeout)
		}
	}()

	res := &ConfigResult{ID: "config", Name: "configuration"}
	checks, bundleDir, warnings := ensureChecks(ctx, opts, bundleRefs)
	res.Checks = checks
	mopts := misconf.ScannerOption{
		Namespaces:     rego.BuiltinNamespaces(),
		RegoErrorLimit: rego.DefaultAllowedRegoErrors,
		K8sVersion:     opts.K8sVersion,
	}
	if bundleDir != "" {
		mopts.PolicyPaths = []string{bundleDir}
		mopts.DisableEmbeddedPolicies = true
		mopts.DisableEmbeddedLibraries = true
	}
	regoScanner, err := misconf.InitRegoScanner(mopts)
	if err != nil {
		return nil, &Error{Kind: ErrScanFailed, Err: err, Msg: fmt.Sprintf("load the configuration checks (%s): %v", checks.Source, err)}
	}
	mopts.RegoScanner = regoScanner

	rep := types.Report{SchemaVersion: 2, ArtifactName: ".", ArtifactType: "filesystem", CreatedAt: time.Now()}
	rep.Trivy.Version = trivyVersion()
	for _, t := range targets {
		results, err := scanConfigTarget(ctx, t, opts, mopts)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, results...)
	}
	rep.Results = dedupeResults(rep.Results)

	filterOpt := trivyresult.FilterOptions{Severities: allSeverities(), IgnoreFile: opts.IgnoreFile, CacheDir: opts.CacheDir}
	if err := trivyresult.Filter(ctx, rep, filterOpt); err != nil {
		return nil, &Error{Kind: ErrScanFailed, Err: err, Msg: fmt.Sprintf("filter configuration findings: %v: check ignore-file", err)}
	}
	for _, t := range targets {
		res.Paths = append(res.Paths, cmp.Or(t.Name, t.Path))
	}
	all := misconfigFindings(rep)
	res.Findings = mergeFindings(slices.DeleteFunc(slices.Clone(all), func(f Finding) bool { return !slices.Contains(sevs, f.Severity) }))
	res.HiddenBySeverity = mergeFindings(slices.DeleteFunc(all, func(f Finding) bool { return slices.Contains(sevs, f.Severity) }))
	res.Counts, _ = countFindings(res.Findings)
	res.Report = misconfBySeverity(rep, sevs)
	res.Files = configFiles(res.Report, res.Findings)
	res.Warnings = warnings
	return res, nil
}

func (c ConfigResult) id() string { return cmp.Or(strings.Trim(c.ID, "/"), "config") }

// configGroups split Trivy's configuration analyzers (one per file type)
// in two: Kubernetes-style and Dockerfile checks, and cloud templates.
var configGroups = [][]analyzer.Type{
	{analyzer.TypeKubernetes, analyzer.TypeHelm, analyzer.TypeDockerfile, analyzer.TypeAnsible, analyzer.TypeAzureARM},
	{analyzer.TypeTerraform, analyzer.TypeTerraformPlanJSON, analyzer.TypeTerraformPlanSnapshot, analyzer.TypeCloudFormation, analyzer.TypeYAML, analyzer.TypeJSON},
}

// scanConfigTarget scans one path the way `trivy config <path>` does, and
// names the files it reports. Trivy runs its configuration analyzers one
// after another over one artifact; with more than one CPU, the two groups
// of analyzers get an artifact each over the same path and run at once.
// The analyzers are independent — each reads only its own files — so the
// findings are the same; the Rego checks are compiled once and shared,
// which OPA's evaluation allows. (Not one artifact per file type: each
// artifact of a checkout's root also reads its Git status.)
func scanConfigTarget(ctx context.Context, t ConfigTarget, opts ConfigOptions, mopts misconf.ScannerOption) ([]types.Result, error) {
	skipFiles := skipPatterns(opts.SkipFiles, opts.Root)
	skipDirs := skipPatterns(opts.SkipDirs, opts.Root)
	mopts.SkipFiles, mopts.SkipDirs = skipFiles, skipDirs

	groups := configGroups
	if runtime.GOMAXPROCS(0) < 2 {
		groups = [][]analyzer.Type{analyzer.TypeConfigFiles}
	}
	scans := make([]scan.Service, len(groups))
	// Building artifacts initialises Trivy's process-wide analyzers: one
	// at a time, before any scan starts.
	for i, group := range groups {
		disabled := configOnlyAnalyzers()
		for _, other := range analyzer.TypeConfigFiles {
			if !slices.Contains(group, other) {
				disabled = append(disabled, other)
			}
		}
		artOpt := fanalartifact.Option{
			DisabledAnalyzers:    disabled,
			Parallel:             5,
			NoProgress:           true,
			Offline:              true,
			MisconfScannerOption: mopts,
			WalkerOption:         walker.Option{SkipFiles: skipFiles, SkipDirs: skipDirs},
		}
		// Analysed files are kept for this call only, as `trivy config` does.
		c := cache.NewMemoryCache()
		art, err := local.NewArtifact(t.Path, c, walker.NewFS(), artOpt)
		if err != nil {
			return nil, &Error{Kind: ErrScanFailed, Err: err, Msg: fmt.Sprintf("configuration scan of %s cannot start: %v", cmp.Or(t.Name, t.Path), err)}
		}
		scans[i] = scan.NewService(tlocal.NewService(applier.NewApplier(c), ospkg.NewScanner(), langpkg.NewScanner(), vulnerability.NewClient(trivydb.Config{})), art)
	}
	reports := make([]types.Report, len(groups))
	g, gctx := errgroup.WithContext(ctx)
	for i := range scans {
		g.Go(func() error {
			var err error
			reports[i], err = scans[i].ScanArtifact(gctx, types.ScanOptions{Scanners: types.Scanners{types.MisconfigScanner}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, timeoutError(ctx, err)
		}
		return nil, &Error{Kind: ErrScanFailed, Err: err, Msg: fmt.Sprintf("configuration scan of %s failed: %v", cmp.Or(t.Name, t.Path), err)}
	}
	var out []types.Result
	for _, rep := range reports {
		for _, r := range rep.Results {
			if r.Class != types.ClassConfig {
				continue
			}
			r.Target = t.fileName(r.Target)
			out = append(out, r)
		}
	}
	return out, nil
}

// fileName turns a path Trivy reports into the name findings use.
func (t ConfigTarget) fileName(trivyPath string) string {
	if t.Rename != nil {
		return t.Rename(trivyPath)
	}
	p := filepath.ToSlash(trivyPath)
	if t.Name == "" || t.Name == "." {
		return path.Clean(p)
	}
	base := filepath.ToSlash(t.Name)
	if st, err := os.Stat(t.Path); err == nil && !st.IsDir() {
		// A single file: Trivy reports its base name.
		base = path.Dir(base)
	}
	return path.Clean(path.Join(base, p))
}

// skipPatterns makes patterns relative to root absolute, so that Trivy
// resolves them against each scanned path; patterns starting with ** match
// at any depth and stay as they are.
func skipPatterns(patterns []string, root string) []string {
	var out []string
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			continue
		case strings.HasPrefix(p, "**"), filepath.IsAbs(p), root == "":
			out = append(out, p)
		default:
			out = append(out, filepath.Join(root, p))
		}
	}
	return out
}

// configOnlyAnalyzers disables what `trivy config` disables (OS and language
// packages) and what a filesystem scan without those scanners would not
// use, leaving the configuration analyzers.
func configOnlyAnalyzers() []analyzer.Type {
	out := slices.Clone(analyzer.TypeOSes)
	out = append(out, analyzer.TypeLanguages...)
	out = append(out, analyzer.TypeIndividualPkgs...)
	return append(out, analyzer.TypeSBOM, analyzer.TypeSecret, analyzer.TypeLicenseFile, analyzer.TypeApkCommand,
		analyzer.TypeHistoryDockerfile, analyzer.TypeExecutable, analyzer.TypeRpmArchive)
}

// dedupeResults keeps one result per file when overlapping paths (". and
// deploy/") reported it twice.
func dedupeResults(in []types.Result) []types.Result {
	seen := map[string]bool{}
	var out []types.Result
	for _, r := range in {
		k := r.Target + "\x00" + string(r.Type)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b types.Result) int { return cmp.Compare(a.Target, b.Target) })
	return out
}

// misconfigFindings converts the failed checks of a filtered report.
func misconfigFindings(rep types.Report) []Finding {
	var out []Finding
	for _, r := range rep.Results {
		for _, m := range r.Misconfigurations {
			if m.Status != types.MisconfStatusFailure {
				continue
			}
			out = append(out, Finding{
				Kind:        KindMisconfiguration,
				ID:          m.ID,
				Severity:    normalSeverity(m.Severity),
				PkgType:     string(r.Type),
				PkgClass:    string(r.Class),
				PkgPath:     r.Target,
				Title:       m.Title,
				Description: m.Description,
				PrimaryURL:  m.PrimaryURL,
				Message:     m.Message,
				Resolution:  m.Resolution,
				References:  m.References,
				Resource:    m.CauseMetadata.Resource,
				Line:        m.CauseMetadata.StartLine,
				EndLine:     m.CauseMetadata.EndLine,
			})
		}
	}
	return out
}

// misconfBySeverity copies a filtered report keeping the reported severities.
func misconfBySeverity(rep types.Report, sevs []string) types.Report {
	out := rep
	out.Results = slices.Clone(rep.Results)
	for i := range out.Results {
		r := &out.Results[i]
		r.Misconfigurations = slices.DeleteFunc(slices.Clone(r.Misconfigurations), func(m types.DetectedMisconfiguration) bool {
			return !slices.Contains(sevs, normalSeverity(m.Severity))
		})
		if len(r.Misconfigurations) == 0 {
			r.Misconfigurations = nil
		}
	}
	return out
}

// configFiles lists every recognised file with its reported counts.
func configFiles(rep types.Report, findings []Finding) []ConfigFile {
	var files []ConfigFile
	index := map[string]int{}
	for _, r := range rep.Results {
		if _, ok := index[r.Target]; ok {
			continue
		}
		index[r.Target] = len(files)
		files = append(files, ConfigFile{Path: r.Target, Type: string(r.Type)})
	}
	for _, f := range findings {
		i, ok := index[f.PkgPath]
		if !ok {
			i = len(files)
			index[f.PkgPath] = i
			files = append(files, ConfigFile{Path: f.PkgPath, Type: f.PkgType})
		}
		files[i].Counts.Add(f.Severity)
	}
	return files
}

func parseBundleRepos(opts ConfigOptions) ([]name.Reference, error) {
	n := normalized{Options: Options{InsecureRegistries: opts.InsecureRegistries}}
	var refs []name.Reference
	for _, r := range opts.ChecksBundleRepositories {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		var nopts []name.Option
		if n.insecure(r) {
			nopts = append(nopts, name.Insecure)
		}
		ref, err := name.ParseReference(r, nopts...)
		if err != nil {
			return nil, invalid("invalid checks-bundle-repository %q (%v): use registry/repository:tag, e.g. %s", r, err, DefaultChecksBundleRepository)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// EmptyConfigResult is a configuration scan of nothing (a cluster without
// workloads), reporting severities.
func EmptyConfigResult(severities []string) (*ConfigResult, error) {
	if _, err := ParseSeverities(severities); err != nil {
		return nil, err
	}
	return &ConfigResult{ID: "config", Name: "configuration", Checks: ChecksInfo{Source: ChecksEmbedded, Version: moduleVersion(checksModule)}}, nil
}
