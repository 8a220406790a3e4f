package scan

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
)

// maxFileRows bounds the files table of the summary, maxTextRows the CLI's;
// the rest are counted.
const (
	maxFileRows = 50
	maxTextRows = 20
)

// configSummary is one configuration scan's section: files × severities,
// the failed checks with file:line, and its verdict.
func (r *Result) configSummary(md *report.Markdown, c scanner.ConfigResult, info ConfigReport, maxRows int) {
	cluster := strings.HasPrefix(c.ID, "cluster/")
	if cluster {
		md.Heading(3, "Workload configuration (%s)", report.Escape(c.Name))
	} else {
		md.Heading(3, "Configuration")
	}
	md.Paragraph("**%s**", report.Escape(info.Verdict))
	what := "files"
	if cluster {
		what = "workloads"
	}
	line := []string{plural(len(c.Files), strings.TrimSuffix(what, "s")) + " checked", checksLine(c.Checks)}
	if !cluster {
		line = append(line, "paths: "+codeList(c.Paths))
	}
	md.Paragraph("%s", strings.Join(line, " · "))

	header := []string{"File", "Type"}
	if cluster {
		header[0] = "Workload"
	}
	header = append(header, scanner.SeverityNames...)
	var rows [][]string
	clean := 0
	files := slices.Clone(c.Files)
	slices.SortStableFunc(files, func(a, b scanner.ConfigFile) int {
		return cmp.Compare(severityWeight(b.Counts), severityWeight(a.Counts))
	})
	for _, f := range files {
		if f.Counts.Total() == 0 {
			clean++
			continue
		}
		row := []string{report.Code(f.Path), report.Escape(f.Type)}
		rows = append(rows, append(row, countCells(f.Counts)...))
	}
	if len(rows) > 0 {
		shown := rows[:min(len(rows), maxFileRows)]
		md.Table(header, shown)
		if more := len(rows) - len(shown); more > 0 {
			md.Paragraph("%d more %s with findings are in the JSON report and SARIF file.", more, what)
		}
	}
	if clean > 0 {
		md.Paragraph("%d %s without reported findings.", clean, what)
	}
	if n := len(c.HiddenBySeverity); n > 0 {
		md.Paragraph("%s below the reported severities %s not listed; fail-on still counts them.", plural(n, "failed check"), isAre(n))
	}
	if len(c.Findings) == 0 {
		md.Paragraph("No failed checks to report.")
		return
	}
	top := c.Findings[:min(len(c.Findings), topFindings)]
	md.Paragraph("**Failed checks**")
	md.Table(checkHeader(cluster), checkRows(top))
	if len(c.Findings) > len(top) {
		md.Details(fmt.Sprintf("All %d failed checks", len(c.Findings)), func(b *report.Markdown) {
			list := c.Findings[:min(len(c.Findings), maxRows)]
			b.Table(checkHeader(cluster), checkRows(list))
			if len(c.Findings) > len(list) {
				b.Paragraph("The %d least severe failed checks are not listed here; the JSON report and SARIF file list every one.", len(c.Findings)-len(list))
			}
		})
	}
	var files2 []string
	if r.SARIF != "" {
		files2 = append(files2, fmt.Sprintf("SARIF %s (category %s)", report.Code(r.SARIF), report.Code(info.Category)))
	}
	if info.TrivyJSON != "" {
		files2 = append(files2, "Trivy JSON: "+report.Code(info.TrivyJSON))
	}
	if info.ClusterJSON != "" {
		files2 = append(files2, "Workloads JSON: "+report.Code(info.ClusterJSON))
	}
	if len(files2) > 0 {
		md.Details("Reports", func(b *report.Markdown) { b.Bullets(files2...) })
	}
}

func severityWeight(c scanner.SeverityCounts) int {
	return c.Critical*1_000_000 + c.High*10_000 + c.Medium*100 + c.Low*10 + c.Unknown
}

func checkHeader(cluster bool) []string {
	where := "File:Line"
	if cluster {
		where = "Workload:Line"
	}
	return []string{"Severity", "Check", where, "Title"}
}

func checkRows(fs []scanner.Finding) [][]string {
	var rows [][]string
	for _, f := range fs {
		rows = append(rows, []string{f.Severity, report.Link(f.ID, f.PrimaryURL), report.Code(fileLine(f)), report.Escape(orDash(f.Title))})
	}
	return rows
}

// fileLine is path:start[-end], or the path alone for a check that names
// no line (a Dockerfile without USER).
func fileLine(f scanner.Finding) string {
	switch {
	case f.Line <= 0:
		return f.PkgPath
	case f.EndLine > f.Line:
		return fmt.Sprintf("%s:%d-%d", f.PkgPath, f.Line, f.EndLine)
	}
	return f.PkgPath + ":" + strconv.Itoa(f.Line)
}

func codeList(items []string) string {
	var out []string
	for _, it := range items {
		out = append(out, report.Code(it))
	}
	return strings.Join(out, ", ")
}

// configText is the CLI rendering of a configuration scan: files with
// findings and the most severe failed checks.
func configText(w io.Writer, c scanner.ConfigResult) {
	what, column := "file", "FILE"
	if strings.HasPrefix(c.ID, "cluster/") {
		what, column = "workload", "WORKLOAD"
	}
	fmt.Fprintf(w, "%s: %s checked with %s checks\n", c.Name, plural(len(c.Files), what), checksLabel(c.Checks))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tTYPE\tCRITICAL\tHIGH\tMEDIUM\tLOW\tUNKNOWN\n", column)
	shown, more := 0, 0
	for _, f := range c.Files {
		if f.Counts.Total() == 0 {
			continue
		}
		if shown == maxTextRows {
			more++
			continue
		}
		shown++
		k := f.Counts
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", f.Path, f.Type, k.Critical, k.High, k.Medium, k.Low, k.Unknown)
	}
	tw.Flush()
	if more > 0 {
		fmt.Fprintf(w, "  … %d more %ss with findings (see the JSON report)\n", more, what)
	}
	top := c.Findings[:min(len(c.Findings), 5)]
	if len(top) == 0 {
		return
	}
	fmt.Fprintln(w, "failed checks:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range top {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Severity, f.ID, fileLine(f), f.Title)
	}
	tw.Flush()
	if n := len(c.Findings) - len(top); n > 0 {
		fmt.Fprintf(w, "  … %d more\n", n)
	}
}

// clusterText is the CLI rendering of a cluster scan, like `trivy k8s
// --report summary`.
func (r *Result) clusterText(w io.Writer) {
	c := r.Cluster
	fmt.Fprintf(w, "cluster %s (%s): %s, %s scanned once each\n", c.Context, c.Server, plural(len(c.Workloads), "workload"), plural(c.Images, "distinct image"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tWORKLOAD\tVULN C\tH\tM\tL\tU\tMISCONF C\tH\tM\tL\tU")
	for _, wl := range c.Workloads {
		v, m := wl.Vulnerabilities, wl.Misconfigurations
		fmt.Fprintf(tw, "%s\t%s/%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", wl.Namespace, wl.Kind, wl.Name,
			v.Critical, v.High, v.Medium, v.Low, v.Unknown, m.Critical, m.High, m.Medium, m.Low, m.Unknown)
	}
	tw.Flush()
}
