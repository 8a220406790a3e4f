package scanner

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"
)

// ConfigCategoryWithPrefix is CategoryWithPrefix for configuration scans:
// "<prefix>/config/", "<prefix>/cluster/<context>/".
func ConfigCategoryWithPrefix(prefix string) func(ConfigResult) string {
	prefix = strings.Trim(strings.TrimSpace(prefix), "/")
	if prefix == "" {
		return DefaultSARIFConfigCategory
	}
	return func(c ConfigResult) string { return prefix + "/" + c.id() + "/" }
}

// renderConfigRun is one configuration scan's run: each failed check is a
// result at its file, relative to the repository, on the lines Trivy
// reports, so that code scanning annotates the pull request there.
func renderConfigRun(p *runPlan, tool SARIFTool) *sarif.Run {
	c := p.cfg
	run := newRun(tool, p.category)
	run.Properties = sarif.Properties{"scan": c.Name, "paths": c.Paths, "checks": c.Checks.Source, "checksVersion": c.Checks.Version}
	addRules(run, c.Findings[:p.kept], configRule, configResult)
	return run
}

// ConfigLines are the SARIF region of a failed check: Trivy's start and
// end lines; a check that names no line (a missing USER instruction) sits
// on line 1, as Trivy's own SARIF puts it.
func ConfigLines(f Finding) (start, end int) {
	start = max(f.Line, 1)
	end = max(f.EndLine, start)
	return start, end
}

// ConfigLocation is a failed check's SARIF artifact URI: the file's path
// relative to the repository root, percent-encoded, never absolute.
func ConfigLocation(f Finding) string {
	p := strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(f.PkgPath, `\`, "/")), "/")
	return (&url.URL{Path: p}).String()
}

func configRule(id string, fs []Finding) *sarif.ReportingDescriptor {
	first := fs[0]
	severity := first.Severity
	for _, f := range fs[1:] {
		if severityRank(f.Severity) < severityRank(severity) {
			severity = f.Severity
		}
	}
	short := orDefault(first.Title, id)
	full := orDefault(first.Description, short)
	var text, md strings.Builder
	fmt.Fprintf(&text, "Misconfiguration %s\nType: %s\nSeverity: %s\nCheck: %s\n", id, first.PkgType, severity, short)
	fmt.Fprintf(&md, "**Misconfiguration %s**\n\n| Type | Severity | Check |\n| --- | --- | --- |\n| %s | %s | %s |\n", id, mdEscape(first.PkgType), severity, mdEscape(short))
	if first.Description != "" {
		fmt.Fprintf(&text, "\n%s\n", first.Description)
		fmt.Fprintf(&md, "\n%s\n", first.Description)
	}
	if first.Resolution != "" {
		fmt.Fprintf(&text, "\nResolution: %s\n", first.Resolution)
		fmt.Fprintf(&md, "\n**Resolution:** %s\n", first.Resolution)
	}
	links := configLinks(first)
	if len(links) > 0 {
		text.WriteString("\nLinks:\n")
		md.WriteString("\n**Links**\n\n")
		for _, l := range links {
			fmt.Fprintf(&text, "- %s\n", l)
			fmt.Fprintf(&md, "- <%s>\n", l)
		}
	}
	helpText, helpMD := text.String(), md.String()
	r := sarif.NewRule(id).
		WithName("Misconfiguration").
		WithShortDescription(&sarif.MultiformatMessageString{Text: &short}).
		WithFullDescription(&sarif.MultiformatMessageString{Text: &full}).
		WithHelp(&sarif.MultiformatMessageString{Text: &helpText, Markdown: &helpMD}).
		WithDefaultConfiguration(&sarif.ReportingConfiguration{Level: sarifLevel(severity)}).
		WithProperties(sarif.Properties{
			"tags":              []string{KindMisconfiguration, "security", severity, first.PkgType},
			"precision":         "very-high",
			"security-severity": strconv.FormatFloat(securitySeverity(Finding{Severity: severity}), 'f', 1, 64),
		})
	if u, err := url.Parse(first.PrimaryURL); err == nil && u.IsAbs() {
		r.WithHelpURI(first.PrimaryURL)
	}
	return r
}

// configLinks are the check's page and its references, each once.
func configLinks(f Finding) []string {
	var out []string
	for _, l := range append([]string{f.PrimaryURL}, f.References...) {
		if u, err := url.Parse(l); l == "" || err != nil || !u.IsAbs() {
			continue
		}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

func configResult(f Finding, ruleIndex int) *sarif.Result {
	loc := ConfigLocation(f)
	start, end := ConfigLines(f)
	msg := fmt.Sprintf("Artifact: %s\nType: %s\nMisconfiguration %s\nSeverity: %s\nMessage: %s", f.PkgPath, f.PkgType, f.ID, f.Severity, orDefault(f.Message, f.Title))
	if f.PrimaryURL != "" {
		msg += fmt.Sprintf("\nLink: [%s](%s)", f.ID, f.PrimaryURL)
	}
	res := locatedResult(f, ruleIndex, msg, loc, loc, sarif.NewRegion().WithStartLine(start).WithEndLine(end))
	props := sarif.Properties{"type": f.PkgType}
	if f.Resource != "" {
		props["resource"] = f.Resource
	}
	res.Properties = props
	return res
}
