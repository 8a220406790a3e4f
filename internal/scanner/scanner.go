package scanner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/types"
)

// Trivy keeps process-wide state (the bolt DB handle, the default HTTP
// transport, the Java DB updater), so scans in one process run one at a time.
var trivyMu sync.Mutex

// hooks let tests observe what Trivy does without changing it.
type hooks struct {
	// wrapCache wraps the layer cache given to Trivy's image artifact.
	wrapCache func(cache.ArtifactCache) cache.ArtifactCache
}

// Scan scans every target in turn and the platforms of each at the same
// time, over one layer cache, so a layer shared by several platforms or
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
	ensureLogging()
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

	eng, err := newEngine(ctx, n)
	if err != nil {
		return nil, err
	}
	defer eng.close()

	for _, t := range targets {
		img, err := scanTarget(ctx, eng, n, t)
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, *img)
	}

	if n.Server != "" {
		res.DB.Server = n.Server
		if meta := eng.serverDB; meta != nil {
			res.DB.SchemaVersion = meta.Version
			res.DB.UpdatedAt = meta.UpdatedAt
			res.DB.NextUpdate = meta.NextUpdate
			res.DB.DownloadedAt = meta.DownloadedAt
		}
	}
	res.DB.setAge(time.Now())
	res.recount()
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

func scanTarget(ctx context.Context, eng *engine, n normalized, t Target) (*ImageResult, error) {
	ri, err := resolve(ctx, t, n)
	if err != nil {
		return nil, err
	}
	defer ri.cleanup()

	reports, err := scanPlatforms(ctx, eng, ri)
	if err != nil {
		return nil, err
	}
	out := &ImageResult{Reference: ri.reference, Repository: ri.repository, Digest: ri.digest}
	var reported, hidden [][]Finding
	for i, p := range ri.platforms {
		rep := reports[i]
		if v := rep.Trivy.Version; v == "" || v == "dev" {
			// A build without Trivy's version linked still names the
			// Trivy it embeds in every report it writes.
			rep.Trivy.Version = trivyVersion()
		}
		// Filter with every severity first: that is what the gate sees.
		if err := eng.filter(ctx, rep); err != nil {
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

// platformWorkers bounds the platforms analysed at once; Trivy analyses up
// to five layers of each in parallel.
const platformWorkers = 4

// scanPlatforms scans every platform of an image at once, reports in
// platform order. The first failure cancels the others.
func scanPlatforms(parent context.Context, eng *engine, ri *resolvedImage) ([]types.Report, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	reports := make([]types.Report, len(ri.platforms))
	errs := make([]error, len(ri.platforms))
	scans := make([]*platformScan, len(ri.platforms))
	for i, p := range ri.platforms {
		var err error
		if scans[i], err = eng.prepare(ri.trivyImage(p)); err != nil {
			return nil, scanError(parent, eng.n, fmt.Sprintf("%s (%s)", ri.reference, p.platform), err)
		}
	}
	sem := make(chan struct{}, platformWorkers)
	var wg sync.WaitGroup
	for i := range ri.platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			reports[i], errs[i] = scans[i].scan(ctx, eng.scanOpt)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// Report the failure that caused the others, not their cancellation.
	for _, wantCause := range []bool{true, false} {
		for i, err := range errs {
			if err != nil && (!wantCause || !errors.Is(err, context.Canceled)) {
				return nil, scanError(parent, eng.n, fmt.Sprintf("%s (%s)", ri.reference, ri.platforms[i].platform), err)
			}
		}
	}
	return reports, nil
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

func allSeverities() []dbtypes.Severity {
	return []dbtypes.Severity{dbtypes.SeverityUnknown, dbtypes.SeverityLow, dbtypes.SeverityMedium, dbtypes.SeverityHigh, dbtypes.SeverityCritical}
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
	return strings.TrimPrefix(moduleVersion("github.com/aquasecurity/trivy"), "v")
}

// TrivyVersion is the Trivy version linked into this binary.
func TrivyVersion() string { return trivyVersion() }
