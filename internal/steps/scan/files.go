package scan

import (
	"github.com/registry-actions/registry/internal/report"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/registry-actions/registry/internal/scanner"
)

// SARIFFileName is the one SARIF file a scan writes, one run per image.
const SARIFFileName = "scan.sarif"

// ECRTool names ECR's scanning in SARIF runs.
var ECRTool = scanner.SARIFTool{
	Name:           "Amazon ECR",
	FullName:       "Amazon ECR image scanning",
	InformationURI: "https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning.html",
}

// writeReports writes every requested format from the one scan: a SARIF
// file for all images, and per platform a Trivy JSON report and a
// CycloneDX SBOM (or, for ECR, its findings as JSON).
func (r *Result) writeReports(ctx context.Context, opts Options, formats []string) error {
	sopts := scanner.SARIFOptions{
		Category:       scanner.CategoryWithPrefix(opts.SARIFCategory),
		ConfigCategory: scanner.ConfigCategoryWithPrefix(opts.SARIFCategory),
	}
	sarifSource := r.Scan
	switch r.Scanner {
	case ScannerECR:
		sopts.Tool = ECRTool
	case ScannerInspector:
		// A repository's images share one run: a repository holds more
		// images than a SARIF file may have runs.
		sopts.Tool = InspectorTool
		sarifSource = scanner.ByRepository(r.Scan)
		// A repository without findings still gets its (empty) run, so
		// that code scanning closes the alerts of its previous upload.
		for _, q := range r.Inspector {
			if !slices.ContainsFunc(sarifSource.Images, func(img scanner.ImageResult) bool { return img.Repository == q.Repository }) {
				sarifSource.Images = append(sarifSource.Images, scanner.ImageResult{Reference: q.Repository, Repository: q.Repository})
			}
		}
	}
	if runs := len(r.Scan.Images) + len(r.Scan.Config); sarifSource == r.Scan && runs > scanner.GitHubSARIFLimits.Runs {
		// More images than a SARIF file may have runs (a cluster's): one
		// run per repository, when that fits.
		if grouped := scanner.ByRepository(r.Scan); len(grouped.Images)+len(r.Scan.Config) <= scanner.GitHubSARIFLimits.Runs {
			sarifSource = grouped
			r.Warnings = append(r.Warnings, fmt.Sprintf("SARIF: %d images and %d configuration scans exceed code scanning's %d runs per file: one run per repository (%d), each result listing the images it affects",
				len(r.Scan.Images), len(r.Scan.Config), scanner.GitHubSARIFLimits.Runs, len(grouped.Images)))
		}
	}
	byRepo := map[string]string{}
	for i, c := range scanner.SARIFCategories(sarifSource, sopts) {
		byRepo[sarifSource.Images[i].Repository] = c
		if sarifSource == r.Scan {
			r.Images[i].Category = c
		}
	}
	if sarifSource != r.Scan {
		for i, img := range r.Scan.Images {
			r.Images[i].Category = byRepo[img.Repository]
		}
	}
	for i, c := range scanner.SARIFConfigCategories(sarifSource, sopts) {
		r.Config[i].Category = c
	}
	if len(formats) == 0 {
		return nil
	}
	if err := ensureDir(opts.OutputDir); err != nil {
		return err
	}
	if slices.Contains(formats, FormatSARIF) {
		var buf bytes.Buffer
		warnings, err := scanner.WriteSARIF(&buf, sarifSource, sopts)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		r.Warnings = append(r.Warnings, warnings...)
		path := filepath.Join(opts.OutputDir, SARIFFileName)
		if err := writeFile(path, buf.Bytes()); err != nil {
			return err
		}
		r.SARIF = report.DisplayPath(opts.WorkDir, path)
	}
	wantJSON, wantSBOM := slices.Contains(formats, FormatJSON), slices.Contains(formats, FormatSBOM)
	if wantJSON {
		if err := r.writeConfigJSON(ctx, opts); err != nil {
			return err
		}
	}
	if r.Scanner == ScannerECR || r.Scanner == ScannerInspector {
		if wantSBOM {
			r.Warnings = append(r.Warnings, fmt.Sprintf("formats: sbom is not written with scanner: %s (it produces no SBOM); use scanner: trivy for a CycloneDX SBOM", r.Scanner))
		}
		if wantJSON {
			return r.writeECRFindings(opts)
		}
		return nil
	}
	names := newNamer()
	for i, img := range r.Scan.Images {
		for _, p := range img.Platforms {
			pr := PlatformReports{Platform: p.Platform, Digest: p.Digest}
			base := names.name(img, p)
			if wantJSON {
				var buf bytes.Buffer
				if err := scanner.WriteTrivyJSON(ctx, &buf, p.Report); err != nil {
					return fmt.Errorf("scan: %w", err)
				}
				path := filepath.Join(opts.OutputDir, base+".trivy.json")
				if err := writeFile(path, buf.Bytes()); err != nil {
					return err
				}
				pr.TrivyJSON = report.DisplayPath(opts.WorkDir, path)
				r.JSON = append(r.JSON, pr.TrivyJSON)
			}
			if wantSBOM {
				var buf bytes.Buffer
				if err := scanner.WriteCycloneDX(ctx, &buf, p.Report); err != nil {
					return fmt.Errorf("scan: %w", err)
				}
				path := filepath.Join(opts.OutputDir, base+".cdx.json")
				if err := writeFile(path, buf.Bytes()); err != nil {
					return err
				}
				pr.SBOM = report.DisplayPath(opts.WorkDir, path)
				r.SBOM = append(r.SBOM, pr.SBOM)
			}
			r.Images[i].Reports = append(r.Images[i].Reports, pr)
		}
	}
	return nil
}

// writeConfigJSON writes Trivy's JSON of each configuration scan
// (config.trivy.json, cluster-<context>.trivy.json) and the cluster's
// workload table (cluster-<context>.json).
func (r *Result) writeConfigJSON(ctx context.Context, opts Options) error {
	for i, c := range r.Scan.Config {
		base := strings.ReplaceAll(c.ID, "/", "-")
		var buf bytes.Buffer
		if err := scanner.WriteTrivyJSON(ctx, &buf, c.Report); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		path := filepath.Join(opts.OutputDir, base+".trivy.json")
		if err := writeFile(path, buf.Bytes()); err != nil {
			return err
		}
		r.Config[i].TrivyJSON = report.DisplayPath(opts.WorkDir, path)
		r.JSON = append(r.JSON, r.Config[i].TrivyJSON)
		if r.Cluster != nil && strings.HasPrefix(c.ID, "cluster/") {
			data, err := json.MarshalIndent(r.Cluster, "", "  ")
			if err != nil {
				return fmt.Errorf("scan: encode the cluster report: %w", err)
			}
			path := filepath.Join(opts.OutputDir, base+".json")
			if err := writeFile(path, append(data, '\n')); err != nil {
				return err
			}
			r.Config[i].ClusterJSON = report.DisplayPath(opts.WorkDir, path)
			r.JSON = append(r.JSON, r.Config[i].ClusterJSON)
		}
	}
	return nil
}

// writeECRFindings writes each image's findings, as ECR (or Inspector) reported them and
// after the filters, in this tool's finding model.
func (r *Result) writeECRFindings(opts Options) error {
	names := newNamer()
	for i, img := range r.Scan.Images {
		data, err := json.MarshalIndent(img, "", "  ")
		if err != nil {
			return fmt.Errorf("scan: encode ECR findings: %w", err)
		}
		path := filepath.Join(opts.OutputDir, names.name(img, scanner.PlatformResult{Digest: img.Digest})+"."+r.Scanner+"-findings.json")
		if err := writeFile(path, append(data, '\n')); err != nil {
			return err
		}
		rel := report.DisplayPath(opts.WorkDir, path)
		r.JSON = append(r.JSON, rel)
		r.Images[i].Reports = append(r.Images[i].Reports, PlatformReports{Digest: img.Digest, Findings: rel})
	}
	return nil
}

// namer gives report files readable, distinct names:
// <repository path>_<platform>_<12 hex of the platform digest>.
type namer struct{ used map[string]int }

func newNamer() *namer { return &namer{used: map[string]int{}} }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (n *namer) name(img scanner.ImageResult, p scanner.PlatformResult) string {
	repo := img.Repository
	if repo != "" {
		if _, rest, ok := strings.Cut(repo, "/"); ok {
			repo = rest
		}
	} else {
		repo = filepath.Base(filepath.Clean(img.Reference))
		for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
			repo = strings.TrimSuffix(repo, ext)
		}
	}
	parts := []string{repo}
	if p.Platform != "" {
		parts = append(parts, p.Platform)
	}
	if _, hex, ok := strings.Cut(p.Digest, ":"); ok && len(hex) >= 12 {
		parts = append(parts, hex[:12])
	}
	base := unsafeChars.ReplaceAllString(strings.ReplaceAll(strings.Join(parts, "_"), "/", "-"), "-")
	base = strings.Trim(base, "-.")
	if base == "" {
		base = "image"
	}
	n.used[base]++
	if c := n.used[base]; c > 1 {
		base = fmt.Sprintf("%s-%d", base, c)
	}
	return base
}

func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("scan: write %s: %w", path, err)
	}
	return nil
}
