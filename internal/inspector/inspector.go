// Package inspector reads Amazon Inspector's findings for the images of an
// ECR repository (inspector2:ListFindings, aws-sdk-go-v2): active package
// vulnerabilities, filtered by repository, image tag or digest and
// severity, every page.
package inspector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/aws/smithy-go"

	"github.com/registry-actions/registry/internal/awsconfig"
	"github.com/registry-actions/registry/internal/report"
)

// PageSize is ListFindings' maximum page.
const PageSize = 100

// Error kinds; test with errors.Is.
var (
	ErrAccessDenied = errors.New("Inspector access denied")
	ErrCredentials  = errors.New("AWS credentials unavailable")
)

// Error is a failed call, one line naming the fix.
type Error struct {
	Kind error
	Code string
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() []error {
	out := []error{}
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Options configure a Client.
type Options struct {
	// Region of the repositories; empty means the environment's.
	Region string
	// Endpoint overrides the Inspector endpoint (tests); the SDK also honours
	// AWS_ENDPOINT_URL_INSPECTOR2 and AWS_ENDPOINT_URL.
	Endpoint    string
	HTTPClient  *http.Client
	Credentials aws.CredentialsProvider
	// MaxAttempts per call, retries included (default 8).
	MaxAttempts int
}

// Client calls Inspector in one region.
type Client struct {
	api    *inspector2.Client
	region string
}

// New loads the AWS configuration. It does not contact AWS.
func New(ctx context.Context, opts Options) (*Client, error) {
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{
		Region: opts.Region, HTTPClient: opts.HTTPClient, Credentials: opts.Credentials, MaxAttempts: opts.MaxAttempts,
	})
	if err != nil {
		return nil, err
	}
	api := inspector2.NewFromConfig(cfg, func(o *inspector2.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
	})
	return &Client{api: api, region: cfg.Region}, nil
}

// Query selects findings. Repository is required; the others narrow it.
type Query struct {
	// Account is the registry's AWS account ID; empty means any the
	// credentials see (Inspector's delegated administrator sees members').
	Account    string
	Repository string
	// Tags and Digests restrict to images carrying one of them.
	Tags    []string
	Digests []string
	// Severities are Inspector's: CRITICAL, HIGH, MEDIUM, LOW,
	// INFORMATIONAL, UNTRIAGED. Empty means all.
	Severities []string
}

// Image is the ECR image a finding is about.
type Image struct {
	Registry     string    `json:"registry"`
	Repository   string    `json:"repository"`
	Digest       string    `json:"digest"`
	Tags         []string  `json:"tags,omitempty"`
	Architecture string    `json:"architecture,omitempty"`
	Platform     string    `json:"platform,omitempty"` // the OS, e.g. DEBIAN_12
	PushedAt     time.Time `json:"pushedAt,omitzero"`
}

// Package is one vulnerable package of a finding.
type Package struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	Release        string `json:"release,omitempty"`
	FixedInVersion string `json:"fixedInVersion,omitempty"`
	FilePath       string `json:"filePath,omitempty"`
	PackageManager string `json:"packageManager,omitempty"`
}

// Finding is one Inspector finding about one image.
type Finding struct {
	Arn         string    `json:"arn"`
	ID          string    `json:"id"` // the vulnerability, e.g. CVE-2024-1234
	Severity    string    `json:"severity"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description,omitempty"`
	SourceURL   string    `json:"sourceUrl,omitempty"`
	References  []string  `json:"references,omitempty"`
	Score       float64   `json:"score,omitempty"`
	CVSSVector  string    `json:"cvssVector,omitempty"`
	Packages    []Package `json:"packages"`
	Image       Image     `json:"image"`
	UpdatedAt   time.Time `json:"updatedAt,omitzero"`
}

// ListFindings reads every page of active package-vulnerability findings
// the query selects. It returns the findings and the pages read.
func (c *Client) ListFindings(ctx context.Context, q Query) ([]Finding, int, error) {
	in := &inspector2.ListFindingsInput{FilterCriteria: filter(q), MaxResults: aws.Int32(PageSize)}
	p := inspector2.NewListFindingsPaginator(c.api, in)
	var out []Finding
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, pages, c.mapError(q.Repository, err)
		}
		pages++
		for _, f := range page.Findings {
			out = append(out, convert(f)...)
		}
	}
	return out, pages, nil
}

func equals(values ...string) []types.StringFilter {
	var out []types.StringFilter
	for _, v := range values {
		out = append(out, types.StringFilter{Comparison: types.StringComparisonEquals, Value: aws.String(v)})
	}
	return out
}

func filter(q Query) *types.FilterCriteria {
	f := &types.FilterCriteria{
		ResourceType:           equals(string(types.ResourceTypeAwsEcrContainerImage)),
		FindingType:            equals(string(types.FindingTypePackageVulnerability)),
		FindingStatus:          equals(string(types.FindingStatusActive)),
		EcrImageRepositoryName: equals(q.Repository),
		EcrImageTags:           equals(q.Tags...),
		EcrImageHash:           equals(q.Digests...),
		Severity:               equals(q.Severities...),
	}
	if q.Account != "" {
		f.AwsAccountId = equals(q.Account)
	}
	return f
}

// convert keeps the ECR image resources of a finding: one Finding each.
func convert(f types.Finding) []Finding {
	base := Finding{
		Arn:         aws.ToString(f.FindingArn),
		Severity:    string(f.Severity),
		Title:       aws.ToString(f.Title),
		Description: aws.ToString(f.Description),
		Score:       aws.ToFloat64(f.InspectorScore),
		UpdatedAt:   aws.ToTime(f.UpdatedAt),
	}
	if d := f.InspectorScoreDetails; d != nil && d.AdjustedCvss != nil {
		base.CVSSVector = aws.ToString(d.AdjustedCvss.ScoringVector)
	}
	if d := f.PackageVulnerabilityDetails; d != nil {
		base.ID = aws.ToString(d.VulnerabilityId)
		base.SourceURL = aws.ToString(d.SourceUrl)
		base.References = d.ReferenceUrls
		if base.CVSSVector == "" {
			for _, s := range d.Cvss {
				if s.ScoringVector != nil {
					base.CVSSVector = *s.ScoringVector
					if base.Score == 0 {
						base.Score = aws.ToFloat64(s.BaseScore)
					}
					break
				}
			}
		}
		for _, p := range d.VulnerablePackages {
			base.Packages = append(base.Packages, Package{
				Name: aws.ToString(p.Name), Version: aws.ToString(p.Version), Release: aws.ToString(p.Release),
				FixedInVersion: aws.ToString(p.FixedInVersion), FilePath: aws.ToString(p.FilePath),
				PackageManager: string(p.PackageManager),
			})
		}
	}
	if base.ID == "" {
		base.ID = base.Title
	}
	var out []Finding
	for _, r := range f.Resources {
		if r.Details == nil || r.Details.AwsEcrContainerImage == nil {
			continue
		}
		d := r.Details.AwsEcrContainerImage
		one := base
		one.Image = Image{
			Registry: aws.ToString(d.Registry), Repository: aws.ToString(d.RepositoryName), Digest: aws.ToString(d.ImageHash),
			Tags: d.ImageTags, Architecture: aws.ToString(d.Architecture), Platform: aws.ToString(d.Platform), PushedAt: aws.ToTime(d.PushedAt),
		}
		out = append(out, one)
	}
	return out
}

var principalPattern = regexp.MustCompile(`User: (arn:[^ ]+) is not authorized`)

// mapError words a failed ListFindings.
func (c *Client) mapError(repo string, err error) error {
	what := fmt.Sprintf("Inspector ListFindings for ECR repository %q in %s", repo, c.region)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Err: err, Msg: fmt.Sprintf("%s: %v", what, err)}
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		msg := report.Clip(report.OneLine(err.Error()), 400)
		if strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "no EC2 IMDS role found") {
			return &Error{Kind: ErrCredentials, Err: err, Msg: fmt.Sprintf("no usable AWS credentials for %s (%s): run aws-actions/configure-aws-credentials before this step, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", what, msg)}
		}
		return &Error{Err: err, Msg: fmt.Sprintf("%s failed: %s", what, msg)}
	}
	code, msg := apiErr.ErrorCode(), report.Clip(report.OneLine(apiErr.ErrorMessage()), 300)
	switch code {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedException":
		who := "the AWS identity this job uses"
		if m := principalPattern.FindStringSubmatch(msg); m != nil {
			who = m[1]
		}
		return &Error{Kind: ErrAccessDenied, Code: code, Err: err, Msg: fmt.Sprintf("Inspector denied inspector2:ListFindings for ECR repository %q: grant inspector2:ListFindings to %s, and enable Amazon Inspector ECR scanning (enhanced scanning) in %s", repo, who, c.region)}
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "MissingAuthenticationTokenException":
		return &Error{Kind: ErrCredentials, Code: code, Err: err, Msg: fmt.Sprintf("AWS rejected the credentials for %s (%s): check the role of aws-actions/configure-aws-credentials; session credentials may have expired", what, code)}
	case "ThrottlingException", "TooManyRequestsException":
		return &Error{Code: code, Err: err, Msg: fmt.Sprintf("Inspector kept throttling %s: retry later", what)}
	case "ValidationException":
		return &Error{Code: code, Err: err, Msg: fmt.Sprintf("Inspector rejected %s: %s", what, msg)}
	}
	return &Error{Code: code, Err: err, Msg: fmt.Sprintf("%s failed: %s: %s: retry later", what, code, msg)}
}
