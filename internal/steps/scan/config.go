package scan

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
)

// validateConfigPaths checks that every config path is inside the working
// directory: findings are located at repository paths, which code scanning
// needs to annotate a pull request.
func validateConfigPaths(opts *Options) error {
	for _, p := range opts.Config.Paths {
		if _, err := configTarget(*opts, p); err != nil {
			return err
		}
	}
	return nil
}

// configTarget resolves one config path against the working directory.
func configTarget(opts Options, p string) (scanner.ConfigTarget, error) {
	p = strings.TrimSpace(p)
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(opts.WorkDir, abs)
	}
	abs = filepath.Clean(abs)
	rel, err := filepath.Rel(filepath.Clean(opts.WorkDir), abs)
	if p == "" || err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return scanner.ConfigTarget{}, failure.Invalidf("scan: config path %q is outside the working directory %s: name files or directories of the checkout (. for all of it)", p, opts.WorkDir)
	}
	return scanner.ConfigTarget{Path: abs, Name: filepath.ToSlash(rel)}, nil
}

// runConfig scans the config paths with Trivy's configuration engine and
// adds the failed checks to the result, where they count and gate like
// vulnerabilities.
func runConfig(ctx context.Context, opts Options, res *Result) error {
	var targets []scanner.ConfigTarget
	for _, p := range opts.Config.Paths {
		t, err := configTarget(opts, p)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}
	co := configOptions(ctx, opts)
	co.SkipFiles, co.SkipDirs = opts.Config.SkipFiles, opts.Config.SkipDirs
	co.ChecksBundleRepositories = opts.Config.ChecksBundleRepositories
	end := opts.Log.Group("configuration scan of " + strings.Join(opts.Config.Paths, ", "))
	cr, err := scanner.ScanConfig(ctx, targets, co)
	end()
	if err != nil {
		return trivyError(err)
	}
	res.addConfig(cr)
	c := cr.Counts
	opts.Log.Infof("configuration (%s): %s checked with %s checks; %d CRITICAL, %d HIGH, %d MEDIUM, %d LOW, %d UNKNOWN reported",
		strings.Join(cr.Paths, ", "), plural(len(cr.Files), "file"), checksLabel(cr.Checks), c.Critical, c.High, c.Medium, c.Low, c.Unknown)
	return nil
}

// configOptions are the engine options every configuration scan shares.
func configOptions(ctx context.Context, opts Options) scanner.ConfigOptions {
	return scanner.ConfigOptions{
		Severities:         opts.Trivy.Severities,
		IgnoreFile:         opts.Trivy.IgnoreFile,
		Root:               opts.WorkDir,
		CacheDir:           opts.Trivy.CacheDir,
		Timeout:            opts.Trivy.Timeout,
		RemoteOptions:      remoteOptions(ctx, opts),
		InsecureRegistries: opts.Trivy.InsecureRegistries,
	}
}

// addConfig adds a configuration scan to the result and its report entry.
func (r *Result) addConfig(cr *scanner.ConfigResult) {
	r.Scan.AddConfig(cr)
	r.Config = append(r.Config, ConfigReport{Name: cr.Name})
	r.Warnings = append(r.Warnings, cr.Warnings...)
}

func checksLabel(c scanner.ChecksInfo) string {
	if c.Source == scanner.ChecksEmbedded {
		return "the embedded trivy-checks " + c.Version
	}
	return "the bundle from " + c.Source
}

// checksLine says which checks ran, for the summary.
func checksLine(c scanner.ChecksInfo) string {
	if c.Source == scanner.ChecksEmbedded {
		return fmt.Sprintf("checks embedded in this build (trivy-checks %s)", report.Escape(c.Version))
	}
	how := "cached"
	if c.Downloaded {
		how = "downloaded"
	}
	return fmt.Sprintf("checks bundle %s from %s (%s)", how, report.Code(c.Source), report.Code(shortDigest(c.Version)))
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)+12]
	}
	return d
}
