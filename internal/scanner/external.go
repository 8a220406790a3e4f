package scanner

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	trivyresult "github.com/aquasecurity/trivy/pkg/result"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/report"
)

// Findings from another scanner (ECR's own scanning) go through the same
// Result model as Trivy's, so SARIF, summaries, counts and the gate treat
// them identically.

// ExternalImage is one image's findings from another scanner, per platform,
// before the severity filter.
type ExternalImage struct {
	Reference  string
	Repository string
	Digest     string
	Tags       []string
	Platforms  []ExternalPlatform
}

// ExternalPlatform is one platform's findings. Each finding's Platforms is
// set by Assemble.
type ExternalPlatform struct {
	Platform string
	Digest   string
	Findings []Finding
}

// Assemble builds a Result from other scanners' findings: findings outside
// severities are kept for the gate only (HiddenBySeverity), findings are
// merged across platforms and counted like Trivy's. Platforms carry no
// Trivy report.
func Assemble(images []ExternalImage, severities []string) (*Result, error) {
	sevs, err := ParseSeverities(severities)
	if err != nil {
		return nil, err
	}
	if len(sevs) == 0 {
		sevs = slices.Clone(SeverityNames)
	}
	res := &Result{Severities: sevs}
	for _, ext := range images {
		img := ImageResult{Reference: ext.Reference, Repository: ext.Repository, Digest: ext.Digest, Tags: ext.Tags}
		var reported, hidden [][]Finding
		for _, p := range ext.Platforms {
			var shown, rest []Finding
			for _, f := range p.Findings {
				f.Severity = normalSeverity(f.Severity)
				f.Platforms = []string{p.Platform}
				if slices.Contains(sevs, f.Severity) {
					shown = append(shown, f)
				} else {
					rest = append(rest, f)
				}
			}
			shown = mergeFindings(shown)
			reported = append(reported, shown)
			hidden = append(hidden, rest)
			pr := PlatformResult{Platform: p.Platform, Digest: p.Digest}
			pr.Counts, _ = countFindings(shown)
			img.Platforms = append(img.Platforms, pr)
		}
		img.Findings = mergeFindings(reported...)
		img.HiddenBySeverity = mergeFindings(hidden...)
		img.Counts, img.Fixable = countFindings(img.Findings)
		res.Images = append(res.Images, img)
	}
	res.recount()
	return res, nil
}

func normalSeverity(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if slices.Contains(SeverityNames, s) {
		return s
	}
	return "UNKNOWN"
}

// IgnoreList is a parsed Trivy ignore file (.trivyignore or
// .trivyignore.yaml), for findings Trivy did not produce.
type IgnoreList struct {
	conf trivyresult.IgnoreConfig
}

// ReadIgnoreFile parses an ignore file with Trivy's own parser; expired
// entries are dropped.
func ReadIgnoreFile(ctx context.Context, path string) (*IgnoreList, error) {
	conf, err := trivyresult.ParseIgnoreFile(ctx, path)
	if err != nil {
		return nil, invalid("ignore file %s cannot be read (%v): fix the ignore-file path or its syntax", path, report.OneLine(err.Error()))
	}
	return &IgnoreList{conf: conf}, nil
}

// Ignored reports whether the ignore file lists a vulnerability ID for any
// package. Entries scoped to paths or package URLs match nothing here:
// other scanners do not report them the way Trivy does.
func (l *IgnoreList) Ignored(id string) bool {
	if l == nil {
		return false
	}
	return l.conf.MatchVulnerability(id, "", "", nil) != nil
}

// ResolvedImage is a registry image pinned to its digest, with the platform
// manifests a scan covers.
type ResolvedImage struct {
	Reference  string // repository@digest
	Repository string
	Digest     string
	Tag        string // the tag it was resolved from, if any
	Platforms  []ResolvedPlatform
}

// ResolvedPlatform is one platform manifest of an image.
type ResolvedPlatform struct {
	Platform string
	Digest   string
}

// Resolve pins ref to its digest and lists its platform manifests (for an
// index, every image manifest but attestations, filtered by platforms),
// exactly as Scan would. Errors are *Error.
func Resolve(ctx context.Context, ref name.Reference, opts []remote.Option, platforms []string) (*ResolvedImage, error) {
	filter, err := parsePlatforms(platforms)
	if err != nil {
		return nil, err
	}
	ri, err := resolveRemote(ctx, ref, opts, filter)
	if err != nil {
		return nil, err
	}
	defer ri.cleanup()
	out := &ResolvedImage{Reference: ri.reference, Repository: ri.repository, Digest: ri.digest, Tag: ri.tag}
	for _, p := range ri.platforms {
		out.Platforms = append(out.Platforms, ResolvedPlatform{Platform: p.platform, Digest: p.digest})
	}
	return out, nil
}

// CategoryWithPrefix returns a SARIF category function giving each image
// "<prefix>/<repository path>/" (for a local path, its file name), so a
// team's prefix groups its images while each image keeps its own category.
// An empty prefix gives DefaultSARIFCategory.
func CategoryWithPrefix(prefix string) func(ImageResult) string {
	prefix = strings.Trim(strings.TrimSpace(prefix), "/")
	if prefix == "" {
		return DefaultSARIFCategory
	}
	return func(img ImageResult) string { return prefix + "/" + repoPath(img) + "/" }
}

// SetDB records the vulnerability data another scanner used, for the summary.
func (r *Result) SetDB(source string, updatedAt time.Time, now time.Time) {
	r.DB = DBInfo{Source: source, UpdatedAt: updatedAt}
	r.DB.setAge(now)
}

// ByRepository folds the images of each repository into one image whose
// findings list the images they affect (Finding.Images), for a SARIF file
// with one run per repository: findings read across a whole repository
// (Amazon Inspector's) span more images than a file may have runs.
func ByRepository(r *Result) *Result {
	out := *r
	out.Images = nil
	index := map[string]int{}
	var lists [][][]Finding
	for _, img := range r.Images {
		key := cmp.Or(img.Repository, img.Reference)
		i, ok := index[key]
		if !ok {
			i = len(out.Images)
			index[key] = i
			out.Images = append(out.Images, ImageResult{Reference: key, Repository: img.Repository})
			lists = append(lists, nil)
		}
		label := imageLabel(img)
		var fs []Finding
		for _, f := range img.Findings {
			f.Images = []string{label}
			fs = append(fs, f)
		}
		lists[i] = append(lists[i], fs)
		agg := &out.Images[i]
		agg.Platforms = append(agg.Platforms, img.Platforms...)
	}
	for i := range out.Images {
		agg := &out.Images[i]
		agg.Findings = mergeFindings(lists[i]...)
		agg.Counts, agg.Fixable = countFindings(agg.Findings)
	}
	return &out
}

// imageLabel is digest (tags), short enough for a SARIF message.
func imageLabel(img ImageResult) string {
	d := img.Digest
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		d = d[:len(d)-len(hex)+12]
	}
	if len(img.Tags) > 0 {
		return d + " (" + strings.Join(img.Tags, ", ") + ")"
	}
	return d
}

// ResolveDigest pins ref to the digest of its manifest or index with one
// HEAD request (a GET when the registry answers HEAD badly), leaving the
// platforms to Scan, which reads the manifest once. Errors are *Error.
func ResolveDigest(ctx context.Context, ref name.Reference, opts []remote.Option) (name.Digest, error) {
	opts = append(slices.Clone(opts), remote.WithContext(ctx))
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		got, gerr := remote.Get(ref, opts...)
		if gerr != nil {
			return name.Digest{}, imageError(ctx, ref.String(), gerr)
		}
		desc = &got.Descriptor
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}
