package scan

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
)

// Result is what the scan stage found, the gate's verdict and the reports
// it wrote.
type Result struct {
	Scanner string `json:"scanner"`
	// Scan holds every finding, per image and platform.
	Scan   *scanner.Result `json:"scan"`
	Images []Image         `json:"images"`
	// Config has an entry per configuration scan in Scan.Config.
	Config []ConfigReport `json:"config,omitempty"`
	// Cluster is the cluster scan's workload table.
	Cluster *Cluster `json:"cluster,omitempty"`
	// Inspector says what Amazon Inspector was asked (scanner: inspector).
	Inspector []InspectorQuery `json:"inspector,omitempty"`
	Failed    bool             `json:"failed"`
	// Verdict is one line: "failed: 2 CRITICAL (fail-on: CRITICAL)".
	Verdict string `json:"verdict"`
	// Threshold is fail-on as the verdict states it ("HIGH or worse");
	// FailOn lists the severities that fail.
	Threshold string   `json:"failOn"`
	FailOn    []string `json:"failOnSeverities"`
	// Report files, relative to the working directory when inside it.
	SARIF    string   `json:"sarif,omitempty"`
	JSON     []string `json:"json,omitempty"`
	SBOM     []string `json:"sbom,omitempty"`
	Warnings []string `json:"warnings,omitempty"`

	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"durationSeconds"`
}

// Image is one scanned image: its verdict, code-scanning category and
// report files.
type Image struct {
	Reference string `json:"reference"`
	Verdict   string `json:"verdict"`
	// Category is the runAutomationDetails.id of its SARIF run.
	Category string `json:"sarifCategory"`
	// Reports per platform (Trivy JSON, CycloneDX), or ECR's findings.
	Reports []PlatformReports `json:"reports,omitempty"`
	// ECR describes ECR's scan when scanner is ecr.
	ECR *ECRScan `json:"ecr,omitempty"`
}

// PlatformReports are the files written for one platform.
type PlatformReports struct {
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	TrivyJSON string `json:"json,omitempty"`
	SBOM      string `json:"sbom,omitempty"`
	// Findings is ECR's findings as JSON (scanner: ecr).
	Findings string `json:"findings,omitempty"`
}

// ECRScan is the state of ECR's scan of an image.
type ECRScan struct {
	// Kind is "basic" or "enhanced" (Amazon Inspector).
	Kind        string    `json:"kind"`
	Status      string    `json:"status"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// Inactive counts enhanced findings ECR marks SUPPRESSED or CLOSED,
	// which are left out.
	Inactive int `json:"inactive,omitempty"`
}

// ConfigReport is one configuration scan's verdict, category and report.
type ConfigReport struct {
	Name     string `json:"name"`
	Verdict  string `json:"verdict"`
	Category string `json:"sarifCategory"`
	// TrivyJSON is Trivy's JSON report of the failed checks.
	TrivyJSON string `json:"json,omitempty"`
	// ClusterJSON is the cluster's workload table as JSON.
	ClusterJSON string `json:"clusterJson,omitempty"`
}

// Report is one scanned image's report files, for a later sign stage.
type Report struct {
	Image     string // repository@digest
	Platform  string
	Digest    string // the platform manifest's digest
	TrivyJSON string
	SBOM      string
}

func newResult(kind string, sres *scanner.Result) *Result {
	res := &Result{Scanner: kind, Scan: sres}
	res.syncImages()
	return res
}

// syncImages adds an Image entry for every scanned image that has none.
func (r *Result) syncImages() {
	for _, img := range r.Scan.Images[len(r.Images):] {
		r.Images = append(r.Images, Image{Reference: img.Reference})
	}
}

// Reports lists the Trivy JSON and SBOM files of every platform, under the
// image reference that was scanned (an index's platforms all name the
// index), for a later sign stage to attest.
func (r *Result) Reports() []Report {
	var out []Report
	for _, img := range r.Images {
		for _, p := range img.Reports {
			if p.TrivyJSON == "" && p.SBOM == "" {
				continue
			}
			out = append(out, Report{Image: img.Reference, Platform: p.Platform, Digest: p.Digest, TrivyJSON: p.TrivyJSON, SBOM: p.SBOM})
		}
	}
	return out
}

// Outputs are named as in the inputs table.
func (r *Result) Outputs() []report.Output {
	result := "pass"
	if r.Failed {
		result = "fail"
	}
	c := r.Scan.Counts
	return []report.Output{
		{Name: inputs.OutResult, Value: result},
		{Name: inputs.OutCritical, Value: strconv.Itoa(c.Critical)},
		{Name: inputs.OutHigh, Value: strconv.Itoa(c.High)},
		{Name: inputs.OutMedium, Value: strconv.Itoa(c.Medium)},
		{Name: inputs.OutLow, Value: strconv.Itoa(c.Low)},
		{Name: inputs.OutUnknown, Value: strconv.Itoa(c.Unknown)},
		{Name: inputs.OutFixable, Value: strconv.Itoa(r.Scan.Fixable)},
		{Name: inputs.OutSARIF, Value: r.SARIF},
		{Name: inputs.OutJSON, Value: report.OutputList(r.JSON)},
		{Name: inputs.OutSBOM, Value: report.OutputList(r.SBOM)},
		{Name: inputs.OutSARIFCategory, Value: r.Category()},
	}
}

// Category is the sarif-category output: the category of the image's run,
// or with several runs (images, configuration) the prefix their categories
// share (each run keeps its own).
func (r *Result) Category() string {
	var cats []string
	for _, img := range r.Images {
		cats = append(cats, img.Category)
	}
	for _, c := range r.Config {
		cats = append(cats, c.Category)
	}
	switch len(cats) {
	case 0:
		return ""
	case 1:
		return cats[0]
	}
	prefix := cats[0]
	for _, c := range cats[1:] {
		for !strings.HasPrefix(c, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		return prefix[:i+1]
	}
	return ""
}

// Summary limits: a summary people read, within GitHub's 1 MiB per step.
const (
	topFindings     = 10
	listBudget      = 2000 // finding rows across all images
	minListPerImage = 100
)

// Summary writes the scan section of the job summary.
func (r *Result) Summary(md *report.Markdown) {
	md.Heading(2, "Scan")
	mark := "✅"
	if r.Failed {
		mark = "❌"
	}
	md.Paragraph("%s **%s**", mark, report.Escape(r.Verdict))
	md.Paragraph("%s", strings.Join(r.sourceLine(), " · "))
	if len(r.Warnings) > 0 {
		var ws []string
		for _, w := range r.Warnings {
			ws = append(ws, "⚠️ "+report.Escape(w))
		}
		md.Bullets(ws...)
	}
	if len(r.Inspector) > 0 {
		r.inspectorSummary(md)
	}
	if r.Cluster != nil {
		r.clusterSummary(md)
	}
	perImage := max(minListPerImage, listBudget/max(1, len(r.Images)+len(r.Config)))
	for i, img := range r.Scan.Images {
		r.imageSummary(md, img, r.Images[i], perImage)
	}
	for i, c := range r.Scan.Config {
		r.configSummary(md, c, r.Config[i], perImage)
	}
}

func (r *Result) sourceLine() []string {
	var parts []string
	db := r.Scan.DB
	switch {
	case r.Scanner == ScannerECR:
		parts = append(parts, report.Escape(db.Source))
		if !db.UpdatedAt.IsZero() {
			parts = append(parts, fmt.Sprintf("vulnerability data updated %s (%s old)", db.UpdatedAt.UTC().Format("2006-01-02 15:04 MST"), age(db.Age)))
		}
	case r.Scanner == ScannerInspector:
		parts = append(parts, SourceInspector)
	case len(r.Scan.Images) == 0:
		parts = append(parts, "Trivy "+report.Escape(r.Scan.TrivyVersion))
	default:
		parts = append(parts, "Trivy "+report.Escape(r.Scan.TrivyVersion))
		if !db.UpdatedAt.IsZero() {
			parts = append(parts, fmt.Sprintf("vulnerability DB updated %s (%s old)", db.UpdatedAt.UTC().Format("2006-01-02 15:04 MST"), age(db.Age)))
		}
		switch {
		case db.Server != "":
			parts = append(parts, "from trivy server "+report.Code(db.Server))
		case db.Repository != "" && db.Downloaded:
			parts = append(parts, "downloaded from "+report.Code(db.Repository))
		case db.Repository != "":
			parts = append(parts, "cached, from "+report.Code(db.Repository))
		default:
			parts = append(parts, "cached")
		}
	}
	parts = append(parts, "reported: "+report.Escape(severityLabel(r.Scan.Severities)))
	if len(r.Images) > 0 || len(r.Config) == 0 {
		parts = append(parts, plural(len(r.Images), "image"))
	}
	for _, c := range r.Scan.Config {
		if r.Cluster == nil || !strings.HasPrefix(c.ID, "cluster/") {
			parts = append(parts, plural(len(c.Files), "configuration file"))
		}
	}
	if r.Duration > 0 {
		parts = append(parts, r.Duration.Round(10*time.Millisecond).String())
	}
	return parts
}

func severityLabel(sevs []string) string {
	if len(sevs) == len(scanner.SeverityNames) {
		return "every severity"
	}
	return strings.Join(sevs, ", ")
}

func (r *Result) imageSummary(md *report.Markdown, img scanner.ImageResult, info Image, maxRows int) {
	md.Heading(3, "%s", img.Reference)
	md.Paragraph("**%s**", report.Escape(info.Verdict))
	if len(img.Tags) > 0 {
		md.Paragraph("Tags: %s", codeList(img.Tags))
	}
	if e := info.ECR; e != nil {
		line := fmt.Sprintf("ECR %s scanning, status %s", report.Escape(e.Kind), report.Code(e.Status))
		if !e.CompletedAt.IsZero() {
			line += ", completed " + e.CompletedAt.UTC().Format("2006-01-02 15:04 MST")
		}
		if e.Inactive > 0 {
			line += fmt.Sprintf("; %d suppressed or closed findings left out", e.Inactive)
		}
		md.Paragraph("%s", line)
	}

	header := []string{"Platform", "OS"}
	for _, s := range scanner.SeverityNames {
		header = append(header, s)
	}
	header = append(header, "Fixable")
	var rows [][]string
	for _, p := range img.Platforms {
		osName := strings.TrimSpace(p.OSFamily + " " + p.OSVersion)
		if p.EOSL {
			osName += " (end of life)"
		}
		row := []string{report.Code(p.Platform), report.Escape(orDash(osName))}
		row = append(row, countCells(p.Counts)...)
		fixable := 0
		for _, f := range img.Findings {
			if f.Fixable() && slices.Contains(f.Platforms, p.Platform) {
				fixable++
			}
		}
		rows = append(rows, append(row, strconv.Itoa(fixable)))
	}
	if len(img.Platforms) > 1 {
		row := []string{"**All platforms**", ""}
		row = append(row, countCells(img.Counts)...)
		rows = append(rows, append(row, strconv.Itoa(img.Fixable)))
	}
	md.Table(header, rows)
	if n := len(img.HiddenBySeverity); n > 0 {
		md.Paragraph("%s below the reported severities %s not listed; fail-on still counts them.", plural(n, "finding"), isAre(n))
	}

	if len(img.Findings) == 0 {
		md.Paragraph("No findings to report.")
	} else {
		top := topOf(img.Findings, topFindings)
		md.Paragraph("**Top findings**")
		md.Table(findingHeader(len(img.Platforms) > 1), findingRows(top, len(img.Platforms) > 1))
		if len(img.Findings) > len(top) {
			title := fmt.Sprintf("All %d findings", len(img.Findings))
			md.Details(title, func(b *report.Markdown) {
				list := img.Findings
				if len(list) > maxRows {
					list = list[:maxRows]
				}
				b.Table(findingHeader(len(img.Platforms) > 1), findingRows(list, len(img.Platforms) > 1))
				if len(img.Findings) > len(list) {
					b.Paragraph("The %d least severe findings are not listed here; the JSON report and SARIF file list every finding.", len(img.Findings)-len(list))
				}
			})
		}
	}
	var files []string
	if r.SARIF != "" {
		files = append(files, fmt.Sprintf("SARIF %s (category %s)", report.Code(r.SARIF), report.Code(info.Category)))
	}
	for _, p := range info.Reports {
		for _, f := range []struct{ what, path string }{{"Trivy JSON", p.TrivyJSON}, {"CycloneDX", p.SBOM}, {"ECR findings", p.Findings}} {
			switch {
			case f.path == "":
			case p.Platform == "":
				files = append(files, fmt.Sprintf("%s: %s", f.what, report.Code(f.path)))
			default:
				files = append(files, fmt.Sprintf("%s %s: %s", report.Escape(p.Platform), f.what, report.Code(f.path)))
			}
		}
	}
	if len(files) > 0 {
		md.Details("Reports", func(b *report.Markdown) { b.Bullets(files...) })
	}
}

func countCells(c scanner.SeverityCounts) []string {
	var out []string
	for _, s := range scanner.SeverityNames {
		out = append(out, strconv.Itoa(c.Get(s)))
	}
	return out
}

func findingHeader(platforms bool) []string {
	h := []string{"Severity", "ID", "Package", "Installed", "Fixed in"}
	if platforms {
		h = append(h, "Platforms")
	}
	return h
}

func findingRows(fs []scanner.Finding, platforms bool) [][]string {
	var rows [][]string
	for _, f := range fs {
		pkg := f.PkgName
		if f.Kind == scanner.KindSecret {
			pkg = fmt.Sprintf("%s:%d", f.PkgPath, f.Line)
		}
		row := []string{report.Escape(f.Severity), report.Link(f.ID, f.PrimaryURL), report.Code(orDash(pkg)), report.Code(orDash(f.InstalledVersion)), fixedCell(f)}
		if platforms {
			row = append(row, report.Escape(strings.Join(f.Platforms, ", ")))
		}
		rows = append(rows, row)
	}
	return rows
}

func fixedCell(f scanner.Finding) string {
	switch {
	case f.FixedVersion != "":
		return report.Code(f.FixedVersion)
	case f.Kind == scanner.KindSecret:
		return "—"
	case f.Status != "" && f.Status != "affected":
		return "_" + report.Escape(strings.ReplaceAll(f.Status, "_", " ")) + "_"
	}
	return "_no fix_"
}

// topOf picks the findings to show first: most severe, fixable before
// unfixed (those a person can act on), then highest score.
func topOf(fs []scanner.Finding, n int) []scanner.Finding {
	top := slices.Clone(fs)
	rank := func(s string) int { return slices.Index(scanner.SeverityNames, s) }
	slices.SortStableFunc(top, func(a, b scanner.Finding) int {
		return cmp.Or(
			cmp.Compare(rank(a.Severity), rank(b.Severity)),
			cmp.Compare(fixRank(a), fixRank(b)),
			cmp.Compare(b.CVSSScore, a.CVSSScore),
		)
	})
	return top[:min(n, len(top))]
}

func fixRank(f scanner.Finding) int {
	if f.Fixable() {
		return 0
	}
	return 1
}

// Text is the CLI rendering: the verdict, one line per image, the top
// findings and where the reports are.
func (r *Result) Text(w io.Writer) {
	fmt.Fprintf(w, "scan %s\n", r.Verdict)
	if len(r.Scan.Images) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tPLATFORMS\tCRITICAL\tHIGH\tMEDIUM\tLOW\tUNKNOWN\tFIXABLE")
		for _, img := range r.Scan.Images {
			c := img.Counts
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", shortRef(img.Reference), len(img.Platforms), c.Critical, c.High, c.Medium, c.Low, c.Unknown, img.Fixable)
		}
		tw.Flush()
	}
	for _, img := range r.Scan.Images {
		top := topOf(img.Findings, 5)
		if len(top) == 0 {
			continue
		}
		fmt.Fprintf(w, "top findings in %s:\n", shortRef(img.Reference))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range top {
			fixed := f.FixedVersion
			if fixed == "" {
				fixed = "no fix"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s → %s\t%s\n", f.Severity, f.ID, orDash(f.PkgName), orDash(f.InstalledVersion), fixed, strings.Join(f.Platforms, ","))
		}
		tw.Flush()
		if n := len(img.Findings) - len(top); n > 0 {
			fmt.Fprintf(w, "  … %d more\n", n)
		}
	}
	if r.Cluster != nil {
		r.clusterText(w)
	}
	for _, c := range r.Scan.Config {
		configText(w, c)
	}
	fmt.Fprintf(w, "%s\n", strings.Join(plainSource(r), ", "))
	var files []string
	if r.SARIF != "" {
		files = append(files, r.SARIF)
	}
	files = append(files, r.JSON...)
	files = append(files, r.SBOM...)
	if len(files) > 0 {
		fmt.Fprintf(w, "reports: %s\n", strings.Join(files, ", "))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func plainSource(r *Result) []string {
	db := r.Scan.DB
	var parts []string
	switch {
	case r.Scanner == ScannerECR:
		parts = append(parts, db.Source)
	case r.Scanner == ScannerInspector:
		parts = append(parts, SourceInspector)
	default:
		parts = append(parts, "Trivy "+r.Scan.TrivyVersion)
	}
	if !db.UpdatedAt.IsZero() {
		parts = append(parts, fmt.Sprintf("data updated %s (%s old)", db.UpdatedAt.UTC().Format("2006-01-02 15:04 MST"), age(db.Age)))
	}
	switch {
	case db.Server != "":
		parts = append(parts, "trivy server "+db.Server)
	case db.Repository != "":
		parts = append(parts, "DB from "+db.Repository)
	}
	return parts
}

// age renders a DB age coarsely: what matters is hours versus days.
func age(d time.Duration) string {
	switch {
	case d <= 0:
		return "0h"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func shortRef(ref string) string {
	if i := strings.Index(ref, "@sha256:"); i >= 0 && len(ref) > i+8+12 {
		return ref[:i+8+12] + "…"
	}
	return ref
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// logImages writes one line per image to the log.
func (r *Result) logImages(log report.Logger) {
	for _, img := range r.Scan.Images {
		var platforms []string
		for _, p := range img.Platforms {
			platforms = append(platforms, p.Platform)
		}
		c := img.Counts
		log.Infof("%s (%s): %d CRITICAL, %d HIGH, %d MEDIUM, %d LOW, %d UNKNOWN reported; %d fixable",
			img.Reference, strings.Join(platforms, ", "), c.Critical, c.High, c.Medium, c.Low, c.Unknown, img.Fixable)
	}
}
