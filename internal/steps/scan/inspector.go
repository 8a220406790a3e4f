package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/inspector"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
)

// SourceInspector names Amazon Inspector's findings in the summary.
const SourceInspector = "Amazon Inspector (ECR repository findings)"

// InspectorTool names Amazon Inspector in SARIF runs.
var InspectorTool = scanner.SARIFTool{
	Name:           "Amazon Inspector",
	FullName:       "Amazon Inspector ECR container image scanning",
	InformationURI: "https://docs.aws.amazon.com/inspector/latest/user/scanning-ecr.html",
}

// InspectorOptions configure scanner: inspector.
type InspectorOptions struct {
	// Client returns the Inspector API for an ECR registry's region.
	Client func(ctx context.Context, host registry.ECRHost) (InspectorFindings, error)
	// JustPushed says the images were pushed in this run: Inspector may
	// not have scanned them yet, so no findings is no verdict.
	JustPushed bool
}

// InspectorFindings is the part of the Inspector API scan reads.
type InspectorFindings interface {
	ListFindings(ctx context.Context, q inspector.Query) ([]inspector.Finding, int, error)
}

// InspectorQuery is what was asked of Inspector for one repository.
type InspectorQuery struct {
	Repository string   `json:"repository"`
	Tags       []string `json:"tags,omitempty"`
	Digests    []string `json:"digests,omitempty"`
	Severities []string `json:"severities"`
	Images     int      `json:"images"`
	Findings   int      `json:"findings"`
	Pages      int      `json:"pages"`
}

// runInspector reads Amazon Inspector's active findings for every image of
// each repository (narrowed by tag or digest when the reference has one),
// asking only for the severities reported or failing the gate, and maps
// them per image digest, with its tags, into the scanner's model.
func runInspector(ctx context.Context, opts Options, threshold scanner.Threshold) (*Result, error) {
	if opts.Inspector.Client == nil {
		return nil, errors.New("scan: scanner: inspector needs an Inspector client")
	}
	ignore, warnings, err := externalFilters(ctx, opts)
	if err != nil {
		return nil, err
	}
	reported, err := scanner.ParseSeverities(opts.Trivy.Severities)
	if err != nil {
		return nil, failure.Invalid(fmt.Errorf("scan: severity: %w", err))
	}
	if len(reported) == 0 {
		reported = scanner.SeverityNames
	}
	wanted := inspectorSeverities(reported, threshold.Severities())
	clients := map[string]InspectorFindings{}
	type imageAt struct {
		img      scanner.ExternalImage
		pushedAt time.Time
	}
	byDigest := map[string]*imageAt{}
	var order []string
	var queries []InspectorQuery
	for _, t := range opts.Targets {
		if t.Path != "" {
			return nil, failure.Invalidf("scan: scanner: inspector reads Amazon Inspector's findings of ECR repositories, not local files (%s): use scanner: trivy", t.Path)
		}
		ref, err := parseRef(opts, t.Ref)
		if err != nil {
			return nil, err
		}
		registryStr := ref.Context().RegistryStr()
		host, ok := registry.ParseECRHost(registry.HostOnly(registryStr))
		if !ok {
			return nil, failure.Invalidf("scan: scanner: inspector reads findings of private ECR repositories, and %s is not one: use scanner: trivy", ref.Context())
		}
		client, ok := clients[registryStr]
		if !ok {
			if client, err = opts.Inspector.Client(ctx, host); err != nil {
				return nil, fmt.Errorf("scan: %w", err)
			}
			clients[registryStr] = client
		}
		q := inspector.Query{Account: host.AccountID, Repository: ref.Context().RepositoryStr(), Severities: wanted}
		// A bare repository parses with the default tag: only a tag the
		// user wrote narrows the query.
		if tag, ok := ref.(name.Tag); ok && strings.HasSuffix(t.Ref, ":"+tag.TagStr()) {
			q.Tags = []string{tag.TagStr()}
		}
		if d, ok := ref.(name.Digest); ok {
			q.Digests = []string{d.DigestStr()}
		}
		end := opts.Log.Group("Amazon Inspector findings of " + ref.Context().String())
		fs, pages, err := client.ListFindings(ctx, q)
		end()
		if err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		iq := InspectorQuery{Repository: ref.Context().Name(), Tags: q.Tags, Digests: q.Digests, Severities: wanted, Findings: len(fs), Pages: pages}
		images := map[string]bool{}
		for _, f := range fs {
			digest := f.Image.Digest
			if digest == "" {
				continue
			}
			images[digest] = true
			at, ok := byDigest[registryStr+"@"+digest]
			if !ok {
				repo := ref.Context().Name()
				platform := ""
				if f.Image.Architecture != "" {
					platform = "linux/" + f.Image.Architecture
				}
				at = &imageAt{img: scanner.ExternalImage{Reference: repo + "@" + digest, Repository: repo, Digest: digest,
					Platforms: []scanner.ExternalPlatform{{Platform: platform, Digest: digest}}}, pushedAt: f.Image.PushedAt}
				byDigest[registryStr+"@"+digest] = at
				order = append(order, registryStr+"@"+digest)
			}
			for _, tag := range f.Image.Tags {
				if !slices.Contains(at.img.Tags, tag) {
					at.img.Tags = append(at.img.Tags, tag)
				}
			}
			for _, sf := range fromInspector(f) {
				switch {
				case ignore.Ignored(sf.ID):
				case !pkgTypeWanted(opts.Trivy.PkgTypes, sf.PkgClass):
				case opts.Trivy.IgnoreUnfixed && sf.FixedVersion == "":
				default:
					at.img.Platforms[0].Findings = append(at.img.Platforms[0].Findings, sf)
				}
			}
		}
		iq.Images = len(images)
		if opts.Inspector.JustPushed && len(images) == 0 {
			warnings = append(warnings, fmt.Sprintf("Amazon Inspector has no findings for %s yet: it scans an image minutes after a push, so this pass says nothing about it; read its findings in a later run, or use scanner: ecr, which waits for the scan", t.Ref))
		}
		opts.Log.Infof("%s: Amazon Inspector reports %d active findings (%s) on %s, in %s",
			iq.Repository, len(fs), strings.Join(wanted, ", "), plural(iq.Images, "image"), plural(pages, "page"))
		queries = append(queries, iq)
	}
	// Newest push first, as a repository listing reads.
	slices.SortStableFunc(order, func(a, b string) int { return byDigest[b].pushedAt.Compare(byDigest[a].pushedAt) })
	var images []scanner.ExternalImage
	for _, k := range order {
		images = append(images, byDigest[k].img)
	}
	sres, err := scanner.Assemble(images, reported)
	if err != nil {
		return nil, failure.Invalid(fmt.Errorf("scan: severity: %w", err))
	}
	sres.SetDB(SourceInspector, time.Time{}, opts.Now())
	sres.Warnings = warnings
	res := newResult(ScannerInspector, sres)
	res.Warnings = warnings
	res.Inspector = queries
	res.logImages(opts.Log)
	return res, nil
}

// inspectorSeverities are Inspector's names for the severities reported or
// failing: its INFORMATIONAL is our LOW, UNTRIAGED our UNKNOWN.
func inspectorSeverities(lists ...[]string) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, l := range lists {
		for _, s := range l {
			switch s {
			case "LOW":
				add("LOW")
				add("INFORMATIONAL")
			case "UNKNOWN":
				add("UNTRIAGED")
			default:
				add(s)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(inspectorRank(a), inspectorRank(b)) })
	return out
}

func inspectorRank(s string) int {
	return slices.Index([]string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"}, s)
}

// fromInspector maps one finding to one Finding per vulnerable package.
func fromInspector(f inspector.Finding) []scanner.Finding {
	var out []scanner.Finding
	pkgs := f.Packages
	if len(pkgs) == 0 {
		pkgs = []inspector.Package{{}}
	}
	for _, p := range pkgs {
		version := p.Version
		if p.Release != "" {
			version += "-" + p.Release
		}
		sf := scanner.Finding{
			Kind:             scanner.KindVulnerability,
			ID:               f.ID,
			Severity:         ecrSeverity(f.Severity),
			PkgName:          p.Name,
			PkgPath:          p.FilePath,
			InstalledVersion: version,
			FixedVersion:     p.FixedInVersion,
			Title:            f.Title,
			Description:      f.Description,
			PrimaryURL:       f.SourceURL,
			CVSSScore:        f.Score,
			CVSSVector:       f.CVSSVector,
			PkgClass:         "os-pkgs",
			PkgType:          "os",
			Status:           "affected",
		}
		if p.PackageManager != "" && !strings.EqualFold(p.PackageManager, "OS") {
			sf.PkgClass = "lang-pkgs"
			sf.PkgType = strings.ToLower(p.PackageManager)
		}
		if sf.FixedVersion != "" {
			sf.Status = "fixed"
		}
		out = append(out, sf)
	}
	return out
}

// inspectorSummary says what Inspector was asked, per repository.
func (r *Result) inspectorSummary(md *report.Markdown) {
	var rows [][]string
	for _, q := range r.Inspector {
		scope := "every image"
		switch {
		case len(q.Digests) > 0:
			scope = codeList(q.Digests)
		case len(q.Tags) > 0:
			scope = "tag " + codeList(q.Tags)
		}
		rows = append(rows, []string{report.Code(q.Repository), scope, report.Escape(strings.Join(q.Severities, ", ")),
			fmt.Sprint(q.Images), fmt.Sprint(q.Findings)})
	}
	md.Table([]string{"Repository", "Images asked", "Severities asked", "Images with findings", "Active findings"}, rows)
}
