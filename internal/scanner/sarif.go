package scanner

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"
)

// SARIFLimits are the code scanning upload limits the SARIF writer enforces.
type SARIFLimits struct {
	Runs          int
	ResultsPerRun int
	RulesPerRun   int
	// CompressedBytes bounds the gzip-compressed size of the file.
	CompressedBytes int
}

// GitHubSARIFLimits are GitHub code scanning's documented upload limits.
var GitHubSARIFLimits = SARIFLimits{Runs: 20, ResultsPerRun: 25000, RulesPerRun: 25000, CompressedBytes: 10 << 20}

func (l SARIFLimits) withDefaults() SARIFLimits {
	if l.Runs <= 0 {
		l.Runs = GitHubSARIFLimits.Runs
	}
	if l.ResultsPerRun <= 0 {
		l.ResultsPerRun = GitHubSARIFLimits.ResultsPerRun
	}
	if l.RulesPerRun <= 0 {
		l.RulesPerRun = GitHubSARIFLimits.RulesPerRun
	}
	if l.CompressedBytes <= 0 {
		l.CompressedBytes = GitHubSARIFLimits.CompressedBytes
	}
	return l
}

// SARIFOptions configure WriteSARIF.
type SARIFOptions struct {
	// Category returns the runAutomationDetails.id of an image's run. Nil
	// means DefaultSARIFCategory. Categories that collide are made distinct.
	Category func(ImageResult) string
	// ConfigCategory returns the runAutomationDetails.id of a configuration
	// scan's run. Nil means DefaultSARIFConfigCategory.
	ConfigCategory func(ConfigResult) string
	// Limits default to GitHubSARIFLimits field by field.
	Limits SARIFLimits
	// Tool names the scanner in each run; the zero value is Trivy at the
	// Result's TrivyVersion.
	Tool SARIFTool
}

// SARIFTool is the tool.driver of each run: code scanning shows its name
// next to every alert.
type SARIFTool struct {
	Name           string
	FullName       string
	InformationURI string
	Version        string
}

func (t SARIFTool) orTrivy(version string) SARIFTool {
	if t.Name != "" {
		return t
	}
	return SARIFTool{Name: "Trivy", FullName: "Trivy Vulnerability Scanner", InformationURI: "https://github.com/aquasecurity/trivy", Version: version}
}

// DefaultSARIFCategory is "registry-scan/<repository path>/" for registry
// images (e.g. registry-scan/org/app/) and "registry-scan/<file name>/" for
// local paths. It is stable across digests so code scanning can track and
// close alerts from one build to the next.
func DefaultSARIFCategory(img ImageResult) string {
	return "registry-scan/" + repoPath(img) + "/"
}

func repoPath(img ImageResult) string {
	if img.Repository != "" {
		if _, rest, ok := strings.Cut(img.Repository, "/"); ok {
			return rest
		}
		return img.Repository
	}
	base := filepath.Base(filepath.Clean(img.Reference))
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

// DefaultSARIFConfigCategory is "registry-scan/<ID>/": registry-scan/config/
// for a repository's files, registry-scan/cluster/<context>/ for a cluster.
func DefaultSARIFConfigCategory(c ConfigResult) string {
	return "registry-scan/" + c.id() + "/"
}

// WriteSARIF writes a SARIF 2.1.0 log with one run per image, listing the
// reported findings only (the severity option applies exactly). When GitHub's
// limits would be exceeded it drops the least severe results first and
// returns one warning per truncated run; it never writes a file GitHub would
// reject. More images than runs allowed is an error: split the scan.
func WriteSARIF(w io.Writer, r *Result, opts SARIFOptions) ([]string, error) {
	limits := opts.Limits.withDefaults()
	if runs := len(r.Images) + len(r.Config); runs > limits.Runs {
		what := fmt.Sprintf("%d images", len(r.Images))
		if len(r.Config) > 0 {
			what = fmt.Sprintf("%d images and %d configuration scans", len(r.Images), len(r.Config))
		}
		return nil, fmt.Errorf("SARIF: %s exceed code scanning's limit of %d runs per file: scan at most %d images per step", what, limits.Runs, max(0, limits.Runs-len(r.Config)))
	}
	imageCats, configCats := sarifCategories(r, opts)
	var plans []*runPlan
	for i, img := range r.Images {
		plans = append(plans, &runPlan{img: img, category: imageCats[i]})
	}
	for i := range r.Config {
		plans = append(plans, &runPlan{cfg: &r.Config[i], category: configCats[i]})
	}
	for _, p := range plans {
		fs := p.findings()
		p.kept = min(len(fs), limits.ResultsPerRun)
		p.kept = min(p.kept, rulesCut(fs[:p.kept], limits.RulesPerRun))
	}

	var data []byte
	for {
		var err error
		data, err = renderSARIF(plans, opts.Tool.orTrivy(r.TrivyVersion))
		if err != nil {
			return nil, err
		}
		size, err := gzipSize(data)
		if err != nil {
			return nil, err
		}
		if size <= limits.CompressedBytes {
			break
		}
		total := 0
		for _, p := range plans {
			total += p.kept
		}
		if total == 0 {
			return nil, fmt.Errorf("SARIF: %d bytes compressed even without results, above the %d byte limit", size, limits.CompressedBytes)
		}
		// Aim a little under the limit, assuming size is proportional to results.
		target := int(float64(total) * float64(limits.CompressedBytes) / float64(size) * 0.9)
		dropLeastSevere(plans, total-min(target, total-1))
	}

	var warnings []string
	for _, p := range plans {
		if p.kept < len(p.findings()) {
			warnings = append(warnings, truncationWarning(p, limits))
		}
	}
	if _, err := w.Write(data); err != nil {
		return warnings, fmt.Errorf("write SARIF: %w", err)
	}
	return warnings, nil
}

// SARIFCategories returns the runAutomationDetails.id WriteSARIF gives each
// image, in image order, for the sarif-category output and upload-sarif.
// Categories always end in "/"; a collision (the same repository path in two
// registries, or one repository scanned twice) gets the registry host, then a
// counter, appended, since two runs with one category fail the whole upload.
func SARIFCategories(r *Result, opts SARIFOptions) []string {
	images, _ := sarifCategories(r, opts)
	return images
}

// SARIFConfigCategories returns the runAutomationDetails.id WriteSARIF gives
// each configuration scan, in order; they never collide with the images'.
func SARIFConfigCategories(r *Result, opts SARIFOptions) []string {
	_, configs := sarifCategories(r, opts)
	return configs
}

func sarifCategories(r *Result, opts SARIFOptions) (images, configs []string) {
	category := opts.Category
	if category == nil {
		category = DefaultSARIFCategory
	}
	configCategory := opts.ConfigCategory
	if configCategory == nil {
		configCategory = DefaultSARIFConfigCategory
	}
	seen := map[string]int{}
	unique := func(cat, host string) string {
		if !strings.HasSuffix(cat, "/") {
			cat += "/"
		}
		if seen[cat] > 0 && host != "" {
			cat = strings.TrimSuffix(cat, "/") + "@" + host + "/"
		}
		for base := cat; seen[cat] > 0; {
			cat = fmt.Sprintf("%s-%d/", strings.TrimSuffix(base, "/"), seen[base]+1)
			seen[base]++
		}
		seen[cat]++
		return cat
	}
	// Configuration runs first: their categories stay stable whatever
	// images a step scans next to them.
	for _, c := range r.Config {
		configs = append(configs, unique(configCategory(c), ""))
	}
	for _, img := range r.Images {
		host := ""
		if img.Repository != "" {
			host, _, _ = strings.Cut(img.Repository, "/")
		}
		images = append(images, unique(category(img), host))
	}
	return images, configs
}

type runPlan struct {
	img      ImageResult
	cfg      *ConfigResult // set for a configuration scan's run
	category string
	kept     int // findings[:kept] are written; findings are most severe first
}

func (p *runPlan) findings() []Finding {
	if p.cfg != nil {
		return p.cfg.Findings
	}
	return p.img.Findings
}

func (p *runPlan) name() string {
	if p.cfg != nil {
		return p.cfg.Name
	}
	return p.img.Reference
}

// rulesCut returns how many leading findings fit in maxRules distinct rules.
func rulesCut(fs []Finding, maxRules int) int {
	ids := map[string]bool{}
	for i, f := range fs {
		if !ids[f.ID] && len(ids) == maxRules {
			return i
		}
		ids[f.ID] = true
	}
	return len(fs)
}

// dropLeastSevere removes n results, always the least severe kept result of
// any run, so CRITICAL findings are the last to go.
func dropLeastSevere(plans []*runPlan, n int) {
	for ; n > 0; n-- {
		worst := -1
		for i, p := range plans {
			if p.kept == 0 {
				continue
			}
			if worst < 0 {
				worst = i
				continue
			}
			a := severityRank(p.findings()[p.kept-1].Severity)
			b := severityRank(plans[worst].findings()[plans[worst].kept-1].Severity)
			if a > b || a == b && p.kept > plans[worst].kept {
				worst = i
			}
		}
		if worst < 0 {
			return
		}
		plans[worst].kept--
	}
}

func truncationWarning(p *runPlan, limits SARIFLimits) string {
	var dropped SeverityCounts
	for _, f := range p.findings()[p.kept:] {
		dropped.Add(f.Severity)
	}
	var parts []string
	for _, s := range SeverityNames {
		if c := dropped.Get(s); c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, s))
		}
	}
	return fmt.Sprintf("SARIF for %s truncated to %d of %d results (dropped %s) to stay within code scanning limits (%d results, %d rules per run, %d MB compressed); the JSON report and summary list everything",
		p.name(), p.kept, len(p.findings()), strings.Join(parts, ", "),
		limits.ResultsPerRun, limits.RulesPerRun, limits.CompressedBytes>>20)
}

func gzipSize(data []byte) (int, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return buf.Len(), nil
}

func renderSARIF(plans []*runPlan, tool SARIFTool) ([]byte, error) {
	log, err := sarif.New(sarif.Version210)
	if err != nil {
		return nil, err
	}
	for _, p := range plans {
		if p.cfg != nil {
			log.AddRun(renderConfigRun(p, tool))
			continue
		}
		log.AddRun(renderRun(p, tool))
	}
	data, err := json.MarshalIndent(log, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode SARIF: %w", err)
	}
	return append(data, '\n'), nil
}

// newRun is a run of tool under a code-scanning category.
func newRun(tool SARIFTool, category string) *sarif.Run {
	run := sarif.NewRunWithInformationURI(tool.Name, tool.InformationURI)
	run.Tool.Driver.WithFullName(orDefault(tool.FullName, tool.Name))
	if tool.Version != "" {
		run.Tool.Driver.WithVersion(tool.Version)
	}
	run.AutomationDetails = sarif.NewRunAutomationDetails().WithID(category)
	run.ColumnKind = "utf16CodeUnits"
	return run
}

// addRules adds one rule per finding ID, in order of first appearance,
// then a result per finding pointing at its rule.
func addRules(run *sarif.Run, kept []Finding, rule func(id string, fs []Finding) *sarif.ReportingDescriptor, result func(f Finding, ruleIndex int) *sarif.Result) {
	ruleIndex := map[string]int{}
	byRule := map[string][]Finding{}
	var order []string
	for _, f := range kept {
		if _, ok := byRule[f.ID]; !ok {
			order = append(order, f.ID)
		}
		byRule[f.ID] = append(byRule[f.ID], f)
	}
	for i, id := range order {
		ruleIndex[id] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, rule(id, byRule[id]))
	}
	for _, f := range kept {
		run.AddResult(result(f, ruleIndex[f.ID]))
	}
}

func renderRun(p *runPlan, tool SARIFTool) *sarif.Run {
	run := newRun(tool, p.category)
	var platforms []string
	for _, pl := range p.img.Platforms {
		if !slices.Contains(platforms, pl.Platform) {
			platforms = append(platforms, pl.Platform)
		}
	}
	props := sarif.Properties{"imageName": p.img.Reference, "platforms": platforms}
	if p.img.Digest != "" {
		props["digest"] = p.img.Digest
		if p.img.Repository != "" {
			props["repoDigests"] = []string{p.img.Repository + "@" + p.img.Digest}
		}
	}
	run.Properties = props

	addRules(run, p.img.Findings[:p.kept], rule, func(f Finding, i int) *sarif.Result { return result(f, i, p.img) })
	return run
}

func rule(id string, fs []Finding) *sarif.ReportingDescriptor {
	first := fs[0]
	severity, score := first.Severity, securitySeverity(first)
	for _, f := range fs[1:] {
		if severityRank(f.Severity) < severityRank(severity) {
			severity = f.Severity
		}
		score = max(score, securitySeverity(f))
	}
	short := orDefault(first.Title, id)
	full := orDefault(first.Description, short)

	var text, md strings.Builder
	if first.Kind == KindSecret {
		fmt.Fprintf(&text, "Secret %s\nSeverity: %s\n", orDefault(first.Title, id), severity)
		fmt.Fprintf(&md, "**Secret %s**\n\n| Severity | File | Line |\n| --- | --- | --- |\n", mdEscape(orDefault(first.Title, id)))
		for _, f := range fs {
			fmt.Fprintf(&text, "File: %s line %d (%s)\n", f.PkgPath, f.Line, strings.Join(f.Platforms, ", "))
			fmt.Fprintf(&md, "| %s | %s | %d |\n", f.Severity, mdEscape(f.PkgPath), f.Line)
		}
	} else {
		fmt.Fprintf(&text, "Vulnerability %s\nSeverity: %s\n", id, severity)
		fmt.Fprintf(&md, "**Vulnerability %s**\n\n| Severity | Package | Installed Version | Fixed Version | Platforms |\n| --- | --- | --- | --- | --- |\n", id)
		for _, f := range fs {
			fixed := orDefault(f.FixedVersion, "no fix available")
			fmt.Fprintf(&text, "Package: %s\nInstalled Version: %s\nFixed Version: %s\nPlatforms: %s\n",
				f.PkgName, f.InstalledVersion, fixed, strings.Join(f.Platforms, ", "))
			fmt.Fprintf(&md, "| %s | %s | %s | %s | %s |\n", f.Severity, mdEscape(f.PkgName), mdEscape(f.InstalledVersion), mdEscape(fixed), strings.Join(f.Platforms, ", "))
		}
		if first.PrimaryURL != "" {
			fmt.Fprintf(&text, "Link: [%s](%s)\n", id, first.PrimaryURL)
			fmt.Fprintf(&md, "\n[%s](%s)\n", id, first.PrimaryURL)
		}
	}
	if first.Description != "" {
		fmt.Fprintf(&text, "\n%s\n", first.Description)
		fmt.Fprintf(&md, "\n%s\n", first.Description)
	}
	helpText, helpMD := text.String(), md.String()

	r := sarif.NewRule(id).
		WithName(ruleName(first)).
		WithShortDescription(&sarif.MultiformatMessageString{Text: &short}).
		WithFullDescription(&sarif.MultiformatMessageString{Text: &full}).
		WithHelp(&sarif.MultiformatMessageString{Text: &helpText, Markdown: &helpMD}).
		WithDefaultConfiguration(&sarif.ReportingConfiguration{Level: sarifLevel(severity)}).
		WithProperties(sarif.Properties{
			"tags":              []string{first.Kind, "security", severity},
			"precision":         "very-high",
			"security-severity": strconv.FormatFloat(score, 'f', 1, 64),
		})
	if u, err := url.Parse(first.PrimaryURL); err == nil && u.IsAbs() {
		r.WithHelpURI(first.PrimaryURL)
	}
	return r
}

func result(f Finding, ruleIndex int, img ImageResult) *sarif.Result {
	var msg string
	loc := locationURI(f, img)
	line := 1
	if f.Kind == KindSecret {
		msg = fmt.Sprintf("Secret %s\nSeverity: %s\nFile: %s\nPlatforms: %s", orDefault(f.Title, f.ID), f.Severity, f.PkgPath, strings.Join(f.Platforms, ", "))
		line = max(f.Line, 1)
	} else {
		msg = fmt.Sprintf("Package: %s\nInstalled Version: %s\nVulnerability %s\nSeverity: %s\nFixed Version: %s\nPlatforms: %s",
			f.PkgName, f.InstalledVersion, f.ID, f.Severity, f.FixedVersion, strings.Join(f.Platforms, ", "))
		if f.PrimaryURL != "" {
			msg += fmt.Sprintf("\nLink: [%s](%s)", f.ID, f.PrimaryURL)
		}
	}
	if len(f.Images) > 0 {
		msg += "\nImages: " + strings.Join(f.Images, ", ")
	}
	locMsg := fmt.Sprintf("%s: %s@%s", loc, f.PkgName, f.InstalledVersion)
	if f.Kind == KindSecret {
		locMsg = loc
	}
	region := sarif.NewRegion().WithStartLine(line).WithEndLine(line).WithStartColumn(1).WithEndColumn(1)
	res := locatedResult(f, ruleIndex, msg, loc, locMsg, region)
	props := sarif.Properties{"platforms": f.Platforms}
	if len(f.Images) > 0 {
		props["images"] = f.Images
	}
	if f.PkgName != "" {
		props["package"] = f.PkgName
		props["installedVersion"] = f.InstalledVersion
		props["fixedVersion"] = f.FixedVersion
	}
	res.Properties = props
	return res
}

// locatedResult is a result of rule f.ID at one place: a file (uri) and a
// region of it.
func locatedResult(f Finding, ruleIndex int, msg, uri, locMsg string, region *sarif.Region) *sarif.Result {
	phys := sarif.NewPhysicalLocation().
		WithArtifactLocation(sarif.NewSimpleArtifactLocation(uri)).
		WithRegion(region)
	return sarif.NewRuleResult(f.ID).
		WithRuleIndex(ruleIndex).
		WithLevel(sarifLevel(f.Severity)).
		WithMessage(sarif.NewTextMessage(msg)).
		WithLocations([]*sarif.Location{sarif.NewLocation().WithMessage(sarif.NewTextMessage(locMsg)).WithPhysicalLocation(phys)})
}

// locationURI follows Trivy's SarifWriter: language packages and secrets sit
// at their path inside the image, OS packages at the image's repository path.
// Code scanning accepts locations outside the repository for container
// findings; they show without a source snippet.
func locationURI(f Finding, img ImageResult) string {
	p := f.PkgPath
	if p == "" {
		p = repoPath(img)
	}
	p = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(p)), "/")
	return (&url.URL{Path: p}).String()
}

func ruleName(f Finding) string {
	switch {
	case f.Kind == KindSecret:
		return "Secret"
	case f.PkgClass == "os-pkgs":
		return "OsPackageVulnerability"
	case f.PkgClass == "lang-pkgs":
		return "LanguageSpecificPackageVulnerability"
	}
	return "UnknownIssue"
}

func sarifLevel(severity string) string {
	switch severity {
	case "CRITICAL", "HIGH":
		return "error"
	case "MEDIUM":
		return "warning"
	}
	return "note"
}

// securitySeverity is what GitHub ranks alerts by: the CVSS score that came
// with the severity, or Trivy's stand-in score for the severity.
func securitySeverity(f Finding) float64 {
	if f.CVSSScore > 0 {
		return f.CVSSScore
	}
	switch f.Severity {
	case "CRITICAL":
		return 9.5
	case "HIGH":
		return 8.0
	case "MEDIUM":
		return 5.5
	case "LOW":
		return 2.0
	}
	return 0.0
}

func orDefault(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
