package ecr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

const (
	opGetLifecyclePolicy          = "GetLifecyclePolicy"
	opPutLifecyclePolicy          = "PutLifecyclePolicy"
	opStartLifecyclePolicyPreview = "StartLifecyclePolicyPreview"
	opGetLifecyclePolicyPreview   = "GetLifecyclePolicyPreview"

	previewPageSize = 100 // GetLifecyclePolicyPreview's maximum

	defaultPreviewPollInterval = 3 * time.Second
	defaultPreviewTimeout      = 5 * time.Minute
)

// LifecyclePolicy returns the repository's lifecycle policy text; found is
// false when the repository has none.
func (c *Client) LifecyclePolicy(ctx context.Context, repo string) (text string, found bool, err error) {
	out, err := c.api.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{
		RegistryId:     c.registry(),
		RepositoryName: aws.String(repo),
	})
	if err != nil {
		var none *types.LifecyclePolicyNotFoundException
		if errors.As(err, &none) {
			return "", false, nil
		}
		return "", false, c.mapError(opGetLifecyclePolicy, repo, err)
	}
	return aws.ToString(out.LifecyclePolicyText), true, nil
}

// PutLifecyclePolicy sets the repository's lifecycle policy. ECR validates the
// policy; a rejection is an *Error of Kind ErrInvalidParameter carrying ECR's
// reason.
func (c *Client) PutLifecyclePolicy(ctx context.Context, repo, text string) error {
	_, err := c.api.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{
		RegistryId:          c.registry(),
		RepositoryName:      aws.String(repo),
		LifecyclePolicyText: aws.String(text),
	})
	return c.mapError(opPutLifecyclePolicy, repo, err)
}

// PreviewOptions bound the wait for a lifecycle policy preview.
type PreviewOptions struct {
	PollInterval time.Duration // default 3s
	Timeout      time.Duration // default 5m, for the whole preview
}

// PreviewResult is one image AWS's own evaluation of a policy would act on.
type PreviewResult struct {
	Digest   string
	Tags     []string
	PushedAt time.Time
	// RulePriority is the rulePriority of the rule that selected the image.
	RulePriority int
	// Action is "EXPIRE" or "TRANSITION".
	Action string
	// StorageClass is the image's current storage class (STANDARD, ARCHIVE);
	// TargetStorageClass the one a TRANSITION moves it to.
	StorageClass       string
	TargetStorageClass string
}

// PreviewLifecyclePolicy asks ECR to evaluate a policy against the repository
// without applying it, waits for the result (polling, bounded by
// opts.Timeout) and returns every image the policy would act on.
//
// The SDK's waiter is not used: it keeps polling a preview that has EXPIRED.
// Here an EXPIRED preview is restarted once, then reported (ErrPreviewExpired);
// FAILED is reported at once (ErrPreviewFailed). When another preview is
// already running on the repository, it is waited for and ours started after;
// a finished preview whose policy text is not ours (another job's) is
// started again once, then reported.
func (c *Client) PreviewLifecyclePolicy(ctx context.Context, repo, text string, opts PreviewOptions) ([]PreviewResult, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPreviewPollInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultPreviewTimeout
	}
	deadline := time.Now().Add(opts.Timeout)

	const maxStarts = 2
	for start := 1; ; start++ {
		if err := c.startPreview(ctx, repo, text, opts, deadline); err != nil {
			return nil, err
		}
		results, status, previewed, err := c.awaitPreview(ctx, repo, opts, deadline)
		if err != nil {
			return nil, err
		}
		// A repository has one preview at a time: another job may have
		// started its own over ours. Results for another policy text are
		// not this policy's preview.
		if previewed != nil && *previewed != text {
			if start < maxStarts {
				continue
			}
			return nil, &Error{Op: opGetLifecyclePolicyPreview, Repository: repo, Kind: ErrPreviewFailed,
				Message: fmt.Sprintf("ECR lifecycle policy preview for repository %q was replaced by a preview of another policy text twice (another job previews this repository): run again", repo)}
		}
		switch status {
		case types.LifecyclePolicyPreviewStatusComplete:
			return results, nil
		case types.LifecyclePolicyPreviewStatusExpired:
			if start < maxStarts {
				continue
			}
			return nil, &Error{Op: opGetLifecyclePolicyPreview, Repository: repo, Kind: ErrPreviewExpired,
				Message: fmt.Sprintf("ECR lifecycle policy preview for repository %q expired twice before its results could be read: run again", repo)}
		case types.LifecyclePolicyPreviewStatusFailed:
			return nil, &Error{Op: opGetLifecyclePolicyPreview, Repository: repo, Kind: ErrPreviewFailed,
				Message: fmt.Sprintf("ECR could not compute the lifecycle policy preview for repository %q (status FAILED): check the policy, or rely on the locally computed plan", repo)}
		default:
			return nil, &Error{Op: opGetLifecyclePolicyPreview, Repository: repo, Kind: ErrPreviewFailed,
				Message: fmt.Sprintf("ECR lifecycle policy preview for repository %q ended with unknown status %q", repo, status)}
		}
	}
}

// startPreview starts a preview; if one is already running (possibly another
// job's, for another policy) it waits for that one to end and starts again.
func (c *Client) startPreview(ctx context.Context, repo, text string, opts PreviewOptions, deadline time.Time) error {
	for attempt := 1; ; attempt++ {
		_, err := c.api.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{
			RegistryId:          c.registry(),
			RepositoryName:      aws.String(repo),
			LifecyclePolicyText: aws.String(text),
		})
		if err == nil {
			return nil
		}
		var busy *types.LifecyclePolicyPreviewInProgressException
		if !errors.As(err, &busy) || attempt > 1 {
			return c.mapError(opStartLifecyclePolicyPreview, repo, err)
		}
		if _, _, _, err := c.awaitPreview(ctx, repo, opts, deadline); err != nil {
			return err
		}
	}
}

// awaitPreview polls until the current preview leaves IN_PROGRESS. On
// COMPLETE it reads every page of results.
func (c *Client) awaitPreview(ctx context.Context, repo string, opts PreviewOptions, deadline time.Time) ([]PreviewResult, types.LifecyclePolicyPreviewStatus, *string, error) {
	for {
		out, err := c.api.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{
			RegistryId:     c.registry(),
			RepositoryName: aws.String(repo),
			MaxResults:     aws.Int32(previewPageSize),
		})
		if err != nil {
			return nil, "", nil, c.mapError(opGetLifecyclePolicyPreview, repo, err)
		}
		if out.Status != types.LifecyclePolicyPreviewStatusInProgress {
			if out.Status != types.LifecyclePolicyPreviewStatusComplete {
				return nil, out.Status, out.LifecyclePolicyText, nil
			}
			results, err := c.previewPages(ctx, repo, out)
			return results, out.Status, out.LifecyclePolicyText, err
		}
		if time.Now().Add(opts.PollInterval).After(deadline) {
			return nil, "", nil, &Error{Op: opGetLifecyclePolicyPreview, Repository: repo, Kind: ErrTimeout,
				Message: fmt.Sprintf("ECR lifecycle policy preview for repository %q still IN_PROGRESS after %s: retry later or allow a longer wait", repo, opts.Timeout)}
		}
		if err := sleep(ctx, opts.PollInterval); err != nil {
			return nil, "", nil, c.mapError(opGetLifecyclePolicyPreview, repo, err)
		}
	}
}

func (c *Client) previewPages(ctx context.Context, repo string, first *ecr.GetLifecyclePolicyPreviewOutput) ([]PreviewResult, error) {
	var results []PreviewResult
	page := first
	for {
		for _, r := range page.PreviewResults {
			results = append(results, previewResultFrom(r))
		}
		if aws.ToString(page.NextToken) == "" {
			return results, nil
		}
		next, err := c.api.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{
			RegistryId:     c.registry(),
			RepositoryName: aws.String(repo),
			MaxResults:     aws.Int32(previewPageSize),
			NextToken:      page.NextToken,
		})
		if err != nil {
			return nil, c.mapError(opGetLifecyclePolicyPreview, repo, err)
		}
		if aws.ToString(next.NextToken) == aws.ToString(page.NextToken) {
			return nil, fmt.Errorf("ECR %s for repository %q returned the same page token twice", opGetLifecyclePolicyPreview, repo)
		}
		page = next
	}
}

func previewResultFrom(r types.LifecyclePolicyPreviewResult) PreviewResult {
	res := PreviewResult{
		Digest:       aws.ToString(r.ImageDigest),
		Tags:         r.ImageTags,
		PushedAt:     aws.ToTime(r.ImagePushedAt),
		RulePriority: int(aws.ToInt32(r.AppliedRulePriority)),
		StorageClass: string(r.StorageClass),
	}
	if r.Action != nil {
		res.Action = string(r.Action.Type)
		res.TargetStorageClass = string(r.Action.TargetStorageClass)
	}
	return res
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
