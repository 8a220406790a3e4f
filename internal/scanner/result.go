package scanner

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/aquasecurity/trivy/pkg/types"
)

// Result is the outcome of one Scan call.
type Result struct {
	Images []ImageResult `json:"images"`
	// Config holds configuration scans: the repository's files, a
	// cluster's workloads. Their findings count and gate like the images'.
	Config []ConfigResult `json:"config,omitempty"`
	DB     DBInfo         `json:"db"`
	// Severities that were reported (the severity option, normalised).
	Severities []string `json:"severities"`
	// Counts are unique vulnerability × package findings across all images,
	// plus failed configuration checks, after every filter including severity.
	Counts SeverityCounts `json:"counts"`
	// Fixable counts the reported findings with a fixed version.
	Fixable      int           `json:"fixable"`
	Warnings     []string      `json:"warnings,omitempty"`
	TrivyVersion string        `json:"trivy_version"`
	Duration     time.Duration `json:"-"`
}

// ImageResult is one scanned image with findings merged across its platforms.
type ImageResult struct {
	// Reference is what was scanned: registry/repo@digest, or the local path.
	Reference string `json:"reference"`
	// Repository is registry/repository for registry images, empty for paths.
	Repository string `json:"repository,omitempty"`
	// Digest of the manifest or index that was scanned.
	Digest string `json:"digest"`
	// Tags the image carries, when the findings' source lists them.
	Tags      []string         `json:"tags,omitempty"`
	Platforms []PlatformResult `json:"platforms"`
	// Findings are reported: after ignore-unfixed, ignore file, VEX and
	// severity, merged across platforms, most severe first.
	Findings []Finding `json:"findings"`
	// HiddenBySeverity passed every filter except severity: not reported, but
	// still seen by the gate, which is independent of severity.
	HiddenBySeverity []Finding      `json:"hidden_by_severity,omitempty"`
	Counts           SeverityCounts `json:"counts"`
	Fixable          int            `json:"fixable"`
}

// PlatformResult is one platform of an image.
type PlatformResult struct {
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	OSFamily  string `json:"os_family,omitempty"`
	OSVersion string `json:"os_version,omitempty"`
	// EOSL is true when the distribution no longer receives security updates.
	EOSL   bool           `json:"eosl,omitempty"`
	Counts SeverityCounts `json:"counts"`
	// Report is Trivy's own report for this platform, filtered exactly like
	// Findings (severity included), for WriteTrivyJSON and WriteCycloneDX.
	Report types.Report `json:"-"`
}

// Finding kinds.
const (
	KindVulnerability = "vulnerability"
	KindSecret        = "secret"
)

// Finding is one vulnerability in one installed package (or one secret in
// one file), listing every platform it affects.
type Finding struct {
	Kind     string `json:"kind"`
	ID       string `json:"id"`
	Severity string `json:"severity"`
	// PkgName etc. describe the affected package; for secrets PkgPath is the file.
	PkgName string `json:"package,omitempty"`
	// PkgType is Trivy's target type: the OS family ("alpine", "debian") or
	// the language package type ("node-pkg", "gobinary", "jar").
	PkgType string `json:"package_type,omitempty"`
	// PkgClass is "os-pkgs", "lang-pkgs" or "secret".
	PkgClass         string  `json:"package_class,omitempty"`
	PkgPath          string  `json:"package_path,omitempty"`
	PURL             string  `json:"purl,omitempty"`
	InstalledVersion string  `json:"installed_version,omitempty"`
	FixedVersion     string  `json:"fixed_version,omitempty"`
	Status           string  `json:"status,omitempty"`
	Title            string  `json:"title,omitempty"`
	PrimaryURL       string  `json:"primary_url,omitempty"`
	CVSSScore        float64 `json:"cvss_score,omitempty"`
	CVSSVector       string  `json:"cvss_vector,omitempty"`
	// Line is the first line of a secret or misconfiguration; EndLine the
	// last line of a misconfiguration (0 when the check names no line).
	Line    int `json:"line,omitempty"`
	EndLine int `json:"end_line,omitempty"`
	// Message, Resolution, References and Resource describe a failed
	// configuration check.
	Message    string   `json:"message,omitempty"`
	Resolution string   `json:"resolution,omitempty"`
	References []string `json:"references,omitempty"`
	Resource   string   `json:"resource,omitempty"`
	Platforms  []string `json:"platforms,omitempty"`
	// Images lists the images a finding affects when one report covers
	// several (a repository's SARIF run).
	Images []string `json:"images,omitempty"`
	// Description is long and already in Trivy's JSON; SARIF help uses it.
	Description string `json:"-"`
}

// Fixable reports whether a fixed version exists.
func (f Finding) Fixable() bool { return f.FixedVersion != "" }

// key identifies the same finding across platforms and images.
func (f Finding) key() string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%s", f.Kind, f.ID, f.PkgType, f.PkgName, f.PkgPath, f.InstalledVersion, f.Line, f.EndLine, f.Message)
}

// SeverityCounts counts findings per severity.
type SeverityCounts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Unknown  int `json:"unknown"`
}

// Get returns the count for a severity name.
func (c SeverityCounts) Get(severity string) int {
	switch severity {
	case "CRITICAL":
		return c.Critical
	case "HIGH":
		return c.High
	case "MEDIUM":
		return c.Medium
	case "LOW":
		return c.Low
	default:
		return c.Unknown
	}
}

// Add counts one finding of a severity (anything unrated as UNKNOWN).
func (c *SeverityCounts) Add(severity string) {
	switch severity {
	case "CRITICAL":
		c.Critical++
	case "HIGH":
		c.High++
	case "MEDIUM":
		c.Medium++
	case "LOW":
		c.Low++
	default:
		c.Unknown++
	}
}

// Total is the sum over all severities.
func (c SeverityCounts) Total() int { return c.Critical + c.High + c.Medium + c.Low + c.Unknown }

func countFindings(fs []Finding) (SeverityCounts, int) {
	var c SeverityCounts
	fixable := 0
	for _, f := range fs {
		c.Add(f.Severity)
		if f.Fixable() {
			fixable++
		}
	}
	return c, fixable
}

// findingsOf converts a filtered Trivy report into findings for one platform.
func findingsOf(rep types.Report, platform string) []Finding {
	var out []Finding
	for _, res := range rep.Results {
		for _, v := range res.Vulnerabilities {
			f := Finding{
				Kind:             KindVulnerability,
				ID:               v.VulnerabilityID,
				Severity:         cmp.Or(v.Severity, "UNKNOWN"),
				PkgName:          v.PkgName,
				PkgType:          string(res.Type),
				PkgClass:         string(res.Class),
				PkgPath:          v.PkgPath,
				InstalledVersion: v.InstalledVersion,
				FixedVersion:     v.FixedVersion,
				Status:           v.Status.String(),
				Title:            v.Title,
				Description:      v.Description,
				PrimaryURL:       v.PrimaryURL,
				Platforms:        []string{platform},
			}
			if v.PkgIdentifier.PURL != nil {
				f.PURL = v.PkgIdentifier.PURL.String()
			}
			// The score must agree with the severity it came with: GitHub ranks
			// alerts by it, so take it from the same source as the severity.
			if cvss, ok := v.CVSS[v.SeveritySource]; ok {
				switch {
				case cvss.V3Score > 0:
					f.CVSSScore, f.CVSSVector = cvss.V3Score, cvss.V3Vector
				case cvss.V40Score > 0:
					f.CVSSScore, f.CVSSVector = cvss.V40Score, cvss.V40Vector
				case cvss.V2Score > 0:
					f.CVSSScore, f.CVSSVector = cvss.V2Score, cvss.V2Vector
				}
			}
			out = append(out, f)
		}
		for _, s := range res.Secrets {
			out = append(out, Finding{
				Kind:      KindSecret,
				ID:        s.RuleID,
				Severity:  cmp.Or(s.Severity, "UNKNOWN"),
				PkgClass:  string(res.Class),
				PkgPath:   res.Target,
				Title:     s.Title,
				Line:      s.StartLine,
				Platforms: []string{platform},
			})
		}
	}
	return out
}

// mergeFindings de-duplicates findings, joining the platforms each affects.
func mergeFindings(perPlatform ...[]Finding) []Finding {
	byKey := map[string]int{}
	var out []Finding
	for _, fs := range perPlatform {
		for _, f := range fs {
			if i, ok := byKey[f.key()]; ok {
				// Another scanner may know a fix on one platform only.
				if out[i].FixedVersion == "" && f.FixedVersion != "" {
					out[i].FixedVersion, out[i].Status = f.FixedVersion, f.Status
				}
				for _, p := range f.Platforms {
					if !slices.Contains(out[i].Platforms, p) {
						out[i].Platforms = append(out[i].Platforms, p)
					}
				}
				for _, img := range f.Images {
					if !slices.Contains(out[i].Images, img) {
						out[i].Images = append(out[i].Images, img)
					}
				}
				continue
			}
			byKey[f.key()] = len(out)
			f.Platforms = slices.Clone(f.Platforms)
			f.Images = slices.Clone(f.Images)
			out = append(out, f)
		}
	}
	sortFindings(out)
	return out
}

func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)),
			cmp.Compare(a.ID, b.ID),
			cmp.Compare(a.PkgName, b.PkgName),
			cmp.Compare(a.PkgPath, b.PkgPath),
			cmp.Compare(a.InstalledVersion, b.InstalledVersion),
			cmp.Compare(a.Line, b.Line),
		)
	})
}

// AddConfig adds a configuration scan's findings to the result: they count
// and gate like the images' findings.
func (r *Result) AddConfig(c *ConfigResult) {
	r.Config = append(r.Config, *c)
	r.Warnings = append(r.Warnings, c.Warnings...)
	r.recount()
}

// recount counts the reported findings of every image (each vulnerability ×
// package once) and every configuration scan.
func (r *Result) recount() {
	r.Counts, r.Fixable = countFindings(r.findings(false))
}

// findings are the reported findings, unique across images, then every
// failed configuration check; hidden adds those outside the severities.
func (r *Result) findings(hidden bool) []Finding {
	out := uniqueAcrossImages(r.Images, hidden)
	for _, c := range r.Config {
		out = append(out, c.Findings...)
		if hidden {
			out = append(out, c.HiddenBySeverity...)
		}
	}
	return out
}

// uniqueAcrossImages counts each vulnerability × package once even when
// several images carry it.
func uniqueAcrossImages(images []ImageResult, hidden bool) []Finding {
	var lists [][]Finding
	for _, img := range images {
		lists = append(lists, img.Findings)
		if hidden {
			lists = append(lists, img.HiddenBySeverity)
		}
	}
	return mergeFindings(lists...)
}

// NewResult is an empty result reporting severities (every one when
// empty), for scans that add configuration or cluster findings to it.
func NewResult(severities []string) (*Result, error) {
	sevs, err := ParseSeverities(severities)
	if err != nil {
		return nil, err
	}
	if len(sevs) == 0 {
		sevs = slices.Clone(SeverityNames)
	}
	return &Result{Severities: sevs, TrivyVersion: trivyVersion()}, nil
}

// AddImages adds another scan's images (a cluster's), leaving out digests
// this result already holds, with its warnings and, when this result has
// none, its DB.
func (r *Result) AddImages(o *Result) {
	for _, img := range o.Images {
		if !slices.ContainsFunc(r.Images, func(have ImageResult) bool { return have.Digest == img.Digest }) {
			r.Images = append(r.Images, img)
		}
	}
	r.Warnings = append(r.Warnings, o.Warnings...)
	if r.DB.UpdatedAt.IsZero() && r.DB.Server == "" {
		r.DB = o.DB
	}
	r.Duration += o.Duration
	r.recount()
}

// CountUnique counts findings by severity, each vulnerability × package
// once however many lists (a workload's images) hold it.
func CountUnique(lists ...[]Finding) SeverityCounts {
	c, _ := countFindings(mergeFindings(lists...))
	return c
}
