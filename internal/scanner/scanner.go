package scanner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/commands/artifact"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	fanalartifact "github.com/aquasecurity/trivy/pkg/fanal/artifact"
	artimage "github.com/aquasecurity/trivy/pkg/fanal/artifact/image"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/flag"
	"github.com/aquasecurity/trivy/pkg/rpc/client"
	"github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vex"
	"github.com/aquasecurity/trivy/pkg/vulnerability"
)

// Trivy keeps process-wide state (the bolt DB handle, the default HTTP
// transport, the Java DB updater), so scans in one process run one at a time.
var trivyMu sync.Mutex

// hooks let tests observe what Trivy does without changing it.
type hooks struct {
	// wrapCache wraps the layer cache given to Trivy's image artifact.
	wrapCache func(cache.ArtifactCache) cache.ArtifactCache
}

// Scan scans every target, every platform of each, sequentially with one
// Trivy runner and one layer cache, so a layer shared by several platforms or
// images is analysed once. Scan returns *Error when the scan could not run;
// a Result always means the scan ran (whether the gate passes is Gate's job).
func Scan(ctx context.Context, targets []Target, opts Options) (_ *Result, err error) {
	n, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, invalid("nothing to scan: give at least one image reference or path")
	}

	trivyMu.Lock()
	defer trivyMu.Unlock()
	defer func() {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrTimeout && strings.HasPrefix(e.Msg, "scan timed out") {
			e.Msg = fmt.Sprintf("scan timed out after %s: raise timeout, or scan fewer images or platforms per step", n.Timeout)
		}
	}()

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()

	res := &Result{Severities: n.severities, TrivyVersion: trivyVersion()}

	vulnEnabled := slices.Contains(n.Scanners, ScannerVuln)
	if n.Server == "" && vulnEnabled {
		info, warnings, err := ensureDB(ctx, n)
		res.Warnings = append(res.Warnings, warnings...)
		if err != nil {
			return nil, err
		}
		res.DB = info
	}

	fo := n.trivyOptions()
	factory := &serviceFactory{hooks: n.hooks}
	defer factory.close()
	runner, err := artifact.NewRunner(ctx, fo, artifact.TargetContainerImage, artifact.WithInitializeService(factory.initialize))
	if err != nil {
		return nil, runnerError(ctx, n, err)
	}
	defer runner.Close(ctx)

	for _, t := range targets {
		img, err := scanTarget(ctx, runner, factory, fo, n, t)
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, *img)
	}

	if n.Server != "" {
		res.DB.Server = n.Server
		if meta := factory.serverDB; meta != nil {
			res.DB.SchemaVersion = meta.Version
			res.DB.UpdatedAt = meta.UpdatedAt
			res.DB.NextUpdate = meta.NextUpdate
			res.DB.DownloadedAt = meta.DownloadedAt
		}
	}
	res.DB.setAge(time.Now())
	res.Counts, res.Fixable = countFindings(uniqueAcrossImages(res.Images, false))
	for _, img := range res.Images {
		for _, p := range img.Platforms {
			if p.EOSL {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s (%s): %s %s no longer receives security updates, so findings may be incomplete",
					img.Reference, p.Platform, p.OSFamily, p.OSVersion))
			}
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

func scanTarget(ctx context.Context, runner artifact.Runner, factory *serviceFactory, fo flag.Options, n normalized, t Target) (*ImageResult, error) {
	ri, err := resolve(ctx, t, n)
	if err != nil {
		return nil, err
	}
	defer ri.cleanup()

	out := &ImageResult{Reference: ri.reference, Repository: ri.repository, Digest: ri.digest}
	var reported, hidden [][]Finding
	for _, p := range ri.platforms {
		factory.current = ri.trivyImage(p)
		rep, err := runner.ScanImage(ctx, fo)
		if err != nil {
			return nil, scanError(ctx, n, fmt.Sprintf("%s (%s)", ri.reference, p.platform), err)
		}
		if v := rep.Trivy.Version; v == "" || v == "dev" {
			// A build without Trivy's version linked still names the
			// Trivy it embeds in every report it writes.
			rep.Trivy.Version = trivyVersion()
		}
		// Filter with every severity first: that is what the gate sees.
		rep, err = runner.Filter(ctx, fo, rep)
		if err != nil {
			return nil, &Error{Kind: ErrScanFailed, Msg: fmt.Sprintf("filter findings of %s (%s): %v: check ignore-file and vex", ri.reference, p.platform, err), Err: err}
		}
		all := findingsOf(rep, p.platform)
		shown := bySeverity(rep, n.severities)
		pf := findingsOf(shown, p.platform)
		reported = append(reported, pf)
		hidden = append(hidden, slices.DeleteFunc(all, func(f Finding) bool { return slices.Contains(n.severities, f.Severity) }))

		pr := PlatformResult{Platform: p.platform, Digest: p.digest, Report: shown}
		if os := shown.Metadata.OS; os != nil {
			pr.OSFamily, pr.OSVersion, pr.EOSL = string(os.Family), os.Name, os.Eosl
		}
		pr.Counts, _ = countFindings(pf)
		out.Platforms = append(out.Platforms, pr)
	}
	out.Findings = mergeFindings(reported...)
	out.HiddenBySeverity = mergeFindings(hidden...)
	out.Counts, out.Fixable = countFindings(out.Findings)
	return out, nil
}

// bySeverity returns a copy of a filtered report keeping only the reported
// severities; the input report (and its slices) is left untouched.
func bySeverity(rep types.Report, severities []string) types.Report {
	out := rep
	out.Results = slices.Clone(rep.Results)
	for i := range out.Results {
		r := &out.Results[i]
		r.Vulnerabilities = slices.DeleteFunc(slices.Clone(r.Vulnerabilities), func(v types.DetectedVulnerability) bool {
			return !slices.Contains(severities, v.Severity)
		})
		if len(r.Vulnerabilities) == 0 {
			r.Vulnerabilities = nil
		}
		r.Secrets = slices.DeleteFunc(slices.Clone(r.Secrets), func(s types.DetectedSecret) bool {
			return !slices.Contains(severities, s.Severity)
		})
		if len(r.Secrets) == 0 {
			r.Secrets = nil
		}
	}
	return out
}

// trivyOptions builds the flag.Options Trivy's CLI would, minus CLI defaults,
// which a hand-built struct does not get.
func (n normalized) trivyOptions() flag.Options {
	var fo flag.Options
	fo.AppVersion = trivyVersion()
	fo.GlobalOptions = flag.GlobalOptions{Quiet: true, Timeout: n.Timeout, CacheDir: n.CacheDir}
	fo.CacheOptions = flag.CacheOptions{CacheBackend: n.LayerCache}
	fo.DBOptions = flag.DBOptions{
		// ensureDB has already downloaded and validated the DB through our
		// registry client; Trivy only opens it.
		SkipDBUpdate:       true,
		SkipJavaDBUpdate:   n.SkipDBUpdate,
		NoProgress:         true,
		DBRepositories:     n.dbRefs,
		JavaDBRepositories: n.javaDBRefs,
	}
	fo.ImageOptions = flag.ImageOptions{ImageSources: ftypes.ImageSources{ftypes.RemoteImageSource}}
	fo.PackageOptions = flag.PackageOptions{PkgTypes: n.PkgTypes, PkgRelationships: ftypes.Relationships}
	if n.Server != "" {
		fo.RemoteOptions = flag.RemoteOptions{ServerAddr: n.Server, TokenHeader: n.ServerTokenHeader, Token: n.ServerToken}
		if n.ServerToken != "" {
			fo.RemoteOptions.CustomHeaders = http.Header{n.ServerTokenHeader: []string{n.ServerToken}}
		}
	}
	fo.ReportOptions = flag.ReportOptions{
		Format:     types.FormatJSON,
		Severities: allSeverities(),
		IgnoreFile: n.IgnoreFile,
	}
	scanners := types.Scanners{types.SBOMScanner}
	if slices.Contains(n.Scanners, ScannerVuln) {
		scanners = append(scanners, types.VulnerabilityScanner)
	}
	if slices.Contains(n.Scanners, ScannerSecret) {
		scanners = append(scanners, types.SecretScanner)
	}
	fo.ScanOptions = flag.ScanOptions{
		Scanners:         scanners,
		Parallel:         5,
		SkipVersionCheck: true,
		DisableTelemetry: true,
	}
	fo.VulnerabilityOptions = flag.VulnerabilityOptions{
		SkipVEXRepoUpdate:   true,
		VulnSeveritySources: []dbtypes.SourceID{"auto"},
	}
	if n.IgnoreUnfixed {
		// What the CLI's --ignore-unfixed expands to: every status but "fixed".
		for _, s := range dbtypes.Statuses {
			if st := dbtypes.NewStatus(s); st != dbtypes.StatusFixed {
				fo.IgnoreStatuses = append(fo.IgnoreStatuses, st)
			}
		}
	}
	for _, p := range n.VEX {
		fo.VEXSources = append(fo.VEXSources, vex.Source{Type: vex.TypeFile, FilePath: p})
	}
	return fo
}

func allSeverities() []dbtypes.Severity {
	return []dbtypes.Severity{dbtypes.SeverityUnknown, dbtypes.SeverityLow, dbtypes.SeverityMedium, dbtypes.SeverityHigh, dbtypes.SeverityCritical}
}

// serviceFactory replaces Trivy's image service so that Trivy analyses the
// image we resolved with our registry client instead of pulling it again.
type serviceFactory struct {
	hooks
	current    ftypes.Image
	local      cache.Cache
	closeLocal func()
	serverDB   *metadataInfo
}

type metadataInfo struct {
	Version                             int
	UpdatedAt, NextUpdate, DownloadedAt time.Time
}

func (f *serviceFactory) initialize(ctx context.Context, conf artifact.ScannerConfig) (scan.Service, func(), error) {
	if f.current == nil {
		return scan.Service{}, nil, errors.New("no image selected")
	}
	if conf.ServerOption.RemoteURL != "" {
		var c cache.ArtifactCache = cache.NewRemoteCache(ctx, conf.RemoteCacheOptions)
		art, err := f.artifact(c, conf.ArtifactOption)
		if err != nil {
			return scan.Service{}, nil, err
		}
		return scan.NewService(serverInfoRecorder{client.NewService(conf.ServerOption), f}, art), func() {}, nil
	}

	// One cache for the whole Scan call: a layer another platform already
	// analysed is found by its key and not analysed again.
	if f.local == nil {
		c, cleanup, err := cache.New(conf.CacheOptions)
		if err != nil {
			return scan.Service{}, nil, fmt.Errorf("layer cache: %w", err)
		}
		f.local, f.closeLocal = c, cleanup
	}
	art, err := f.artifact(f.local, conf.ArtifactOption)
	if err != nil {
		return scan.Service{}, nil, err
	}
	svc := local.NewService(applier.NewApplier(f.local), ospkg.NewScanner(), langpkg.NewScanner(), vulnerability.NewClient(trivydb.Config{}))
	return scan.NewService(svc, art), func() {}, nil
}

func (f *serviceFactory) artifact(c cache.ArtifactCache, opt fanalartifact.Option) (fanalartifact.Artifact, error) {
	if f.wrapCache != nil {
		c = f.wrapCache(c)
	}
	return artimage.NewArtifact(f.current, c, opt)
}

func (f *serviceFactory) close() {
	if f.closeLocal != nil {
		f.closeLocal()
	}
}

// serverInfoRecorder keeps the server's DB metadata, which the client
// receives with every scan response.
type serverInfoRecorder struct {
	client.Service
	f *serviceFactory
}

func (s serverInfoRecorder) Scan(ctx context.Context, target, artifactKey string, blobKeys []string, options types.ScanOptions) (types.ScanResponse, error) {
	resp, err := s.Service.Scan(ctx, target, artifactKey, blobKeys, options)
	if err == nil && resp.ServerInfo.VulnerabilityDB != nil {
		m := resp.ServerInfo.VulnerabilityDB
		s.f.serverDB = &metadataInfo{Version: m.Version, UpdatedAt: m.UpdatedAt, NextUpdate: m.NextUpdate, DownloadedAt: m.DownloadedAt}
	}
	return resp, err
}

func runnerError(ctx context.Context, n normalized, err error) error {
	if ctx.Err() != nil {
		return timeoutError(ctx, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "DB error") || strings.Contains(msg, "vulnerability DB") {
		return &Error{Kind: ErrCorruptDB, Err: err, Msg: fmt.Sprintf(
			"vulnerability DB in %s cannot be opened (%v): delete that directory and scan again without skip-db-update", dbDir(n.CacheDir), err)}
	}
	return &Error{Kind: ErrScanFailed, Err: err, Msg: fmt.Sprintf("initialise the scanner: %v", err)}
}

func scanError(ctx context.Context, n normalized, what string, err error) error {
	if ctx.Err() != nil {
		return timeoutError(ctx, err)
	}
	if n.Server != "" && strings.Contains(err.Error(), "unauthenticated") {
		return &Error{Kind: ErrServer, Err: err, Msg: fmt.Sprintf("trivy server %s rejected the token while scanning %s (%v): set the server token to the one the server was started with", n.Server, what, err)}
	}
	if n.Server != "" && (strings.Contains(err.Error(), "twirp") || strings.Contains(err.Error(), n.Server)) {
		return &Error{Kind: ErrServer, Err: err, Msg: fmt.Sprintf("scan %s on trivy server %s failed (%v): check trivy-server is reachable and its token", what, n.Server, err)}
	}
	if m := badLayer.FindStringSubmatch(err.Error()); m != nil {
		cause := m[2]
		if i := strings.LastIndex(cause, "walk error: "); i >= 0 {
			cause = cause[i+len("walk error: "):]
		}
		return &Error{Kind: ErrImageAccess, Err: err, Msg: fmt.Sprintf(
			"layer %s of %s cannot be analysed (%s): the image is corrupt; rebuild and push it", m[1], what, cause)}
	}
	return &Error{Kind: ErrScanFailed, Err: err, Msg: fmt.Sprintf("scanning %s failed: %v", what, err)}
}

// badLayer finds the layer Trivy could not unpack in its error chain.
var badLayer = regexp.MustCompile(`failed to analyze layer \(([^)]+)\): (.*)$`)

func timeoutError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Kind: ErrTimeout, Err: err, Msg: "scan timed out before finishing: raise timeout, or scan fewer images or platforms per step"}
	}
	return &Error{Kind: ErrTimeout, Err: err, Msg: fmt.Sprintf("scan cancelled: %v", ctx.Err())}
}

// trivyVersion is the Trivy module version linked into this binary.
func trivyVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/aquasecurity/trivy" {
				return strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return "dev"
}
