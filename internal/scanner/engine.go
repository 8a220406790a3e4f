package scanner

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/cache"
	tdb "github.com/aquasecurity/trivy/pkg/db"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	fanalartifact "github.com/aquasecurity/trivy/pkg/fanal/artifact"
	artimage "github.com/aquasecurity/trivy/pkg/fanal/artifact/image"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/javadb"
	trivyresult "github.com/aquasecurity/trivy/pkg/result"
	"github.com/aquasecurity/trivy/pkg/rpc/client"
	"github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vex"
	"github.com/aquasecurity/trivy/pkg/vulnerability"
	xhttp "github.com/aquasecurity/trivy/pkg/x/http"
)

// engine wires Trivy's building blocks the way `trivy image` does — image
// artifact, layer cache, local or client/server scan service, result
// filter — without its command layer, so that every platform of an image
// can be scanned at once over one cache.
type engine struct {
	n normalized

	artifactOpt fanalartifact.Option
	scanOpt     types.ScanOptions
	filterOpt   trivyresult.FilterOptions

	// cache is where analysed layers go: the local cache, or the server's.
	cache  cache.ArtifactCache
	claims *layerClaims
	// backend scans an applied artifact: locally, or on the server.
	backend scan.Backend

	mu       sync.Mutex
	serverDB *metadataInfo
	// scanning serialises the applying and detection step of platforms.
	scanning sync.Mutex
	closers  []func()
}

type metadataInfo struct {
	Version                             int
	UpdatedAt, NextUpdate, DownloadedAt time.Time
}

// newEngine opens the DB (standalone mode), the layer cache and the scan
// service. close releases them.
func newEngine(ctx context.Context, n normalized) (*engine, error) {
	e := &engine{n: n, claims: newLayerClaims()}
	// Trivy's own downloads (the Java DB, fetched when an image holds JAR
	// files) use its default transport.
	xhttp.SetDefaultTransport(xhttp.NewTransport(xhttp.Options{Timeout: n.Timeout}))

	scanners := types.Scanners{types.SBOMScanner}
	vuln := slices.Contains(n.Scanners, ScannerVuln)
	if vuln {
		scanners = append(scanners, types.VulnerabilityScanner)
	}
	if slices.Contains(n.Scanners, ScannerSecret) {
		scanners = append(scanners, types.SecretScanner)
	}
	e.scanOpt = types.ScanOptions{
		PkgTypes:         n.PkgTypes,
		PkgRelationships: ftypes.Relationships,
		Scanners:         scanners,
		// The CLI's default; without it every finding is UNKNOWN.
		VulnSeveritySources: []dbtypes.SourceID{"auto"},
	}
	e.artifactOpt = fanalartifact.Option{
		DisabledAnalyzers: disabledAnalyzers(n, vuln),
		Parallel:          5,
		NoProgress:        true,
		ImageOption:       ftypes.ImageOptions{ImageSources: ftypes.ImageSources{ftypes.RemoteImageSource}},
	}
	e.filterOpt = trivyresult.FilterOptions{
		// Filter with every severity: the gate sees them all; the
		// severity option is applied afterwards.
		Severities: allSeverities(),
		IgnoreFile: n.IgnoreFile,
		CacheDir:   n.CacheDir,
	}
	if n.IgnoreUnfixed {
		// What the CLI's --ignore-unfixed expands to: every status but "fixed".
		for _, s := range dbtypes.Statuses {
			if st := dbtypes.NewStatus(s); st != dbtypes.StatusFixed {
				e.filterOpt.IgnoreStatuses = append(e.filterOpt.IgnoreStatuses, st)
			}
		}
	}
	for _, p := range n.VEX {
		e.filterOpt.VEXSources = append(e.filterOpt.VEXSources, vex.Source{Type: vex.TypeFile, FilePath: p})
	}

	if n.Server != "" {
		headers := http.Header{}
		if n.ServerToken != "" {
			headers.Set(n.ServerTokenHeader, n.ServerToken)
		}
		e.cache = cache.NewRemoteCache(ctx, cache.RemoteOptions{ServerAddr: n.Server, CustomHeaders: headers})
		e.backend = serverInfoRecorder{Service: client.NewService(client.ServiceOption{RemoteURL: n.Server, CustomHeaders: headers}), e: e}
		return e, nil
	}

	if vuln {
		// ensureDB has already downloaded and validated the DB through our
		// registry client; Trivy only opens it.
		if err := tdb.Init(tdb.Dir(n.CacheDir)); err != nil {
			return nil, &Error{Kind: ErrCorruptDB, Err: err, Msg: fmt.Sprintf(
				"vulnerability DB in %s cannot be opened (%v): delete that directory and scan again without skip-db-update", dbDir(n.CacheDir), err)}
		}
		e.closers = append(e.closers, func() { _ = tdb.Close() })
		// The Java DB is fetched lazily, only for images holding JAR files.
		javadb.Init(n.CacheDir, n.javaDBRefs, n.SkipDBUpdate, true, ftypes.RegistryOptions{})
	}
	// One cache for the whole Scan call: a layer another platform or image
	// already analysed is found by its key and not analysed again.
	c, cleanup, err := cache.New(cache.Options{Backend: n.LayerCache, CacheDir: n.CacheDir})
	if err != nil {
		e.close()
		return nil, &Error{Kind: ErrScanFailed, Err: err, Msg: fmt.Sprintf("open the layer cache in %s: %v: check cache-dir is writable", n.CacheDir, err)}
	}
	e.closers = append(e.closers, cleanup)
	e.cache = c
	e.backend = local.NewService(applier.NewApplier(c),
		ospkg.NewScanner(), langpkg.NewScanner(), vulnerability.NewClient(trivydb.Config{}))
	return e, nil
}

func (e *engine) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// platformScan is one platform image ready to scan.
type platformScan struct {
	svc      scan.Service
	claiming *claimingCache
}

// prepare builds the artifact of one platform image. Not safe for
// concurrent use, nor while a scan runs: building an artifact initialises
// Trivy's analyzers, which are process-wide.
func (e *engine) prepare(img ftypes.Image) (*platformScan, error) {
	claiming := &claimingCache{ArtifactCache: e.cache, claims: e.claims}
	var c cache.ArtifactCache = claiming
	if e.n.hooks.wrapCache != nil {
		c = e.n.hooks.wrapCache(c)
	}
	// Computing cache keys sorts the option's slices in place: each
	// artifact gets its own.
	opt := e.artifactOpt
	opt.DisabledAnalyzers = slices.Clone(opt.DisabledAnalyzers)
	opt.FilePatterns = slices.Clone(opt.FilePatterns)
	opt.WalkerOption.SkipFiles = slices.Clone(opt.WalkerOption.SkipFiles)
	opt.WalkerOption.SkipDirs = slices.Clone(opt.WalkerOption.SkipDirs)
	art, err := artimage.NewArtifact(img, c, opt)
	if err != nil {
		return nil, err
	}
	return &platformScan{svc: scan.NewService(waitingBackend{Backend: e.backend, claims: e.claims, one: &e.scanning}, art), claiming: claiming}, nil
}

// scan analyses the platform's layers that are neither in the cache nor
// being analysed for another platform, then scans it. Platforms prepared
// together may scan at once.
func (p *platformScan) scan(ctx context.Context, opts types.ScanOptions) (types.Report, error) {
	// Layers this platform claimed but never stored (it failed) are
	// released so that no other platform waits for them.
	defer p.claiming.releaseAll()
	return p.svc.ScanArtifact(ctx, opts)
}

// filter applies the ignore file, ignore-unfixed and VEX, as the CLI's
// report step does, keeping every severity.
func (e *engine) filter(ctx context.Context, rep types.Report) error {
	return trivyresult.Filter(ctx, rep, e.filterOpt)
}

// disabledAnalyzers is what `trivy image` disables for the same options
// (pkg/commands/artifact): lock files, removed apk packages, languages when
// library packages are not scanned, secrets unless asked, configuration
// files, license files, image-config misconfigurations, executables (no
// Rekor) and RPM archives.
func disabledAnalyzers(n normalized, vuln bool) []analyzer.Type {
	out := slices.Clone(analyzer.TypeLockfiles)
	out = append(out, analyzer.TypeApkCommand)
	if !slices.Contains(n.PkgTypes, PkgTypeLibrary) {
		out = append(out, analyzer.TypeLanguages...)
	}
	if !slices.Contains(n.Scanners, ScannerSecret) {
		out = append(out, analyzer.TypeSecret)
	}
	out = append(out, analyzer.TypeConfigFiles...)
	out = append(out, analyzer.TypeLicenseFile)
	if !vuln {
		// Parsing JAR files needs the Java DB, which only vulnerability
		// scanning initialises.
		out = append(out, analyzer.TypeJar)
	}
	return append(out, analyzer.TypeHistoryDockerfile, analyzer.TypeExecutable, analyzer.TypeRpmArchive)
}

// serverInfoRecorder keeps the server's DB metadata, which the client
// receives with every scan response.
type serverInfoRecorder struct {
	client.Service
	e *engine
}

func (s serverInfoRecorder) Scan(ctx context.Context, target, artifactKey string, blobKeys []string, options types.ScanOptions) (types.ScanResponse, error) {
	resp, err := s.Service.Scan(ctx, target, artifactKey, blobKeys, options)
	if err == nil && resp.ServerInfo.VulnerabilityDB != nil {
		m := resp.ServerInfo.VulnerabilityDB
		s.e.mu.Lock()
		s.e.serverDB = &metadataInfo{Version: m.Version, UpdatedAt: m.UpdatedAt, NextUpdate: m.NextUpdate, DownloadedAt: m.DownloadedAt}
		s.e.mu.Unlock()
	}
	return resp, err
}
