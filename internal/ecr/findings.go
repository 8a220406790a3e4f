package ecr

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/registry-actions/registry/internal/report"
)

const (
	opDescribeImageScanFindings = "DescribeImageScanFindings"

	findingsPageSize = 1000

	defaultScanPollInterval = 5 * time.Second
	defaultScanTimeout      = 5 * time.Minute
)

// WaitOptions bound the wait for a scan that has not finished.
type WaitOptions struct {
	Timeout      time.Duration // default 5m
	PollInterval time.Duration // default 5s
	// StartGrace is how long a missing scan (ScanNotFoundException) is
	// waited for before it is an error: right after a push, scan on push
	// may not have registered the scan yet. Default 0: fail at once.
	StartGrace time.Duration
}

// ScanFindings is the result of an image's ECR scan, basic or enhanced.
type ScanFindings struct {
	// Status is COMPLETE (basic scanning) or ACTIVE (enhanced, continuous).
	Status                       string
	CompletedAt                  time.Time
	VulnerabilitySourceUpdatedAt time.Time
	// SeverityCounts as ECR summarises them (basic scanning only).
	SeverityCounts map[string]int
	Findings       []Finding
}

// Finding is one vulnerability in one package. An enhanced (Amazon
// Inspector) finding affecting several packages yields one Finding each.
type Finding struct {
	ID       string // e.g. CVE-2024-1234
	Severity string // CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED or UNTRIAGED
	Title    string
	// Description and URI (the advisory's page) as ECR reports them.
	Description    string
	URI            string
	References     []string
	PackageName    string
	PackageVersion string
	// FixedInVersion is known for enhanced findings only.
	FixedInVersion string
	PackageManager string // enhanced only, e.g. OS, GOMOD, NPM
	FilePath       string // enhanced only, for language packages
	Score          float64
	CVSSVector     string
	// Status is ACTIVE, SUPPRESSED or CLOSED for enhanced findings, "" for basic.
	Status   string
	Enhanced bool
}

// ScanFindings reads an image's scan findings (DescribeImageScanFindings, all
// pages, basic and enhanced), waiting while the scan is PENDING or
// IN_PROGRESS, bounded by opts.Timeout.
func (c *Client) ScanFindings(ctx context.Context, repo, digest string, opts WaitOptions) (ScanFindings, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultScanTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultScanPollInterval
	}
	started := time.Now()
	deadline := started.Add(opts.Timeout)
	image := repo + "@" + digest
	for {
		first, err := c.findingsPage(ctx, repo, digest, nil)
		waiting := ""
		switch {
		case err != nil && errors.Is(err, ErrScanNotFound):
			if time.Since(started)+opts.PollInterval > opts.StartGrace {
				return ScanFindings{}, &Error{Op: opDescribeImageScanFindings, Repository: repo, Kind: ErrScanNotFound, Err: err,
					Message: fmt.Sprintf("ECR has no scan of %s: enable scan on push for the repository (ecr-scan-on-push: true) or start one with aws ecr start-image-scan", image)}
			}
			waiting = "to start"
		case err != nil && errors.Is(err, ErrImageNotFound):
			return ScanFindings{}, &Error{Op: opDescribeImageScanFindings, Repository: repo, Kind: ErrImageNotFound, Err: err,
				Message: fmt.Sprintf("ECR image %s not found: check the repository and digest", image)}
		case err != nil:
			return ScanFindings{}, err
		default:
			status := types.ScanStatusComplete
			description := ""
			if first.ImageScanStatus != nil {
				status = first.ImageScanStatus.Status
				description = report.OneLine(aws.ToString(first.ImageScanStatus.Description))
			}
			switch status {
			case types.ScanStatusComplete, types.ScanStatusActive:
				return c.collectFindings(ctx, repo, digest, string(status), first)
			case types.ScanStatusInProgress, types.ScanStatusPending:
				waiting = "to finish (" + string(status) + ")"
			default:
				msg := fmt.Sprintf("ECR scan of %s ended with status %s", image, status)
				if description != "" {
					msg += ": " + report.Clip(description, 300)
				}
				return ScanFindings{}, &Error{Op: opDescribeImageScanFindings, Repository: repo, Kind: ErrScanFailed, Code: string(status), Message: msg}
			}
		}
		if time.Now().Add(opts.PollInterval).After(deadline) {
			return ScanFindings{}, &Error{Op: opDescribeImageScanFindings, Repository: repo, Kind: ErrTimeout,
				Message: fmt.Sprintf("ECR scan of %s did not finish within %s (waiting %s): retry later or allow a longer wait", image, opts.Timeout, waiting)}
		}
		if err := sleep(ctx, opts.PollInterval); err != nil {
			return ScanFindings{}, c.mapError(opDescribeImageScanFindings, repo, err)
		}
	}
}

func (c *Client) findingsPage(ctx context.Context, repo, digest string, token *string) (*ecr.DescribeImageScanFindingsOutput, error) {
	out, err := c.api.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{
		RegistryId:     c.registry(),
		RepositoryName: aws.String(repo),
		ImageId:        &types.ImageIdentifier{ImageDigest: aws.String(digest)},
		MaxResults:     aws.Int32(findingsPageSize),
		NextToken:      token,
	})
	if err != nil {
		return nil, c.mapError(opDescribeImageScanFindings, repo, err)
	}
	return out, nil
}

func (c *Client) collectFindings(ctx context.Context, repo, digest, status string, page *ecr.DescribeImageScanFindingsOutput) (ScanFindings, error) {
	res := ScanFindings{Status: status}
	if f := page.ImageScanFindings; f != nil {
		res.CompletedAt = aws.ToTime(f.ImageScanCompletedAt)
		res.VulnerabilitySourceUpdatedAt = aws.ToTime(f.VulnerabilitySourceUpdatedAt)
		if len(f.FindingSeverityCounts) > 0 {
			res.SeverityCounts = make(map[string]int, len(f.FindingSeverityCounts))
			for k, v := range f.FindingSeverityCounts {
				res.SeverityCounts[k] = int(v)
			}
		}
	}
	for {
		if f := page.ImageScanFindings; f != nil {
			for _, b := range f.Findings {
				res.Findings = append(res.Findings, basicFinding(b))
			}
			for _, e := range f.EnhancedFindings {
				res.Findings = append(res.Findings, enhancedFindings(e)...)
			}
		}
		token := aws.ToString(page.NextToken)
		if token == "" {
			return res, nil
		}
		next, err := c.findingsPage(ctx, repo, digest, page.NextToken)
		if err != nil {
			return ScanFindings{}, err
		}
		if aws.ToString(next.NextToken) == token {
			return ScanFindings{}, fmt.Errorf("ECR %s for %s@%s returned the same page token twice", opDescribeImageScanFindings, repo, digest)
		}
		page = next
	}
}

func basicFinding(b types.ImageScanFinding) Finding {
	f := Finding{
		ID:          aws.ToString(b.Name),
		Severity:    string(b.Severity),
		Description: report.OneLine(aws.ToString(b.Description)),
		URI:         aws.ToString(b.Uri),
	}
	attrs := map[string]string{}
	for _, a := range b.Attributes {
		attrs[aws.ToString(a.Key)] = aws.ToString(a.Value)
	}
	f.PackageName = attrs["package_name"]
	f.PackageVersion = attrs["package_version"]
	for _, v := range []string{"CVSS3", "CVSS2"} {
		if s, ok := attrs[v+"_SCORE"]; ok {
			f.Score, _ = strconv.ParseFloat(s, 64)
			f.CVSSVector = attrs[v+"_VECTOR"]
			break
		}
	}
	return f
}

func enhancedFindings(e types.EnhancedImageScanFinding) []Finding {
	base := Finding{
		Severity:    aws.ToString(e.Severity),
		Title:       aws.ToString(e.Title),
		Description: report.OneLine(aws.ToString(e.Description)),
		Score:       e.Score,
		Status:      aws.ToString(e.Status),
		Enhanced:    true,
	}
	if e.ScoreDetails != nil && e.ScoreDetails.Cvss != nil {
		base.CVSSVector = aws.ToString(e.ScoreDetails.Cvss.ScoringVector)
		if base.Score == 0 {
			base.Score = e.ScoreDetails.Cvss.Score
		}
	}
	if e.Remediation != nil && e.Remediation.Recommendation != nil {
		base.URI = aws.ToString(e.Remediation.Recommendation.Url)
	}
	d := e.PackageVulnerabilityDetails
	if d == nil {
		base.ID = base.Title
		return []Finding{base}
	}
	base.ID = aws.ToString(d.VulnerabilityId)
	if u := aws.ToString(d.SourceUrl); u != "" {
		base.URI = u
	}
	base.References = d.ReferenceUrls
	if base.CVSSVector == "" && len(d.Cvss) > 0 {
		base.CVSSVector = aws.ToString(d.Cvss[0].ScoringVector)
		if base.Score == 0 {
			base.Score = d.Cvss[0].BaseScore
		}
	}
	if len(d.VulnerablePackages) == 0 {
		return []Finding{base}
	}
	out := make([]Finding, 0, len(d.VulnerablePackages))
	for _, p := range d.VulnerablePackages {
		f := base
		f.PackageName = aws.ToString(p.Name)
		f.PackageVersion = packageVersion(p)
		if fixed := aws.ToString(p.FixedInVersion); fixed != "NotAvailable" {
			f.FixedInVersion = fixed
		}
		f.PackageManager = aws.ToString(p.PackageManager)
		f.FilePath = aws.ToString(p.FilePath)
		out = append(out, f)
	}
	return out
}

// packageVersion rebuilds the installed version Inspector splits into epoch,
// version and release (e.g. 1:2.28-10.el9).
func packageVersion(p types.VulnerablePackage) string {
	var b strings.Builder
	if e := aws.ToInt32(p.Epoch); e > 0 {
		b.WriteString(strconv.Itoa(int(e)))
		b.WriteByte(':')
	}
	b.WriteString(aws.ToString(p.Version))
	if r := aws.ToString(p.Release); r != "" {
		b.WriteByte('-')
		b.WriteString(r)
	}
	return b.String()
}
