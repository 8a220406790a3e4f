package ecr

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/registry-actions/registry/internal/report"
)

// Kinds of failure a caller may branch on with errors.Is. Every error the
// client returns for these cases is an *Error whose Kind is one of them.
var (
	// ErrRepositoryNotFound: the repository does not exist in the registry.
	ErrRepositoryNotFound = errors.New("ECR repository not found")
	// ErrImageNotFound: the image (digest or tag) does not exist.
	ErrImageNotFound = errors.New("ECR image not found")
	// ErrLayerNotFound: the repository has no such blob.
	ErrLayerNotFound = errors.New("ECR layer not found")
	// ErrScanNotFound: the image has no scan (scan-on-push off, no manual scan).
	ErrScanNotFound = errors.New("ECR image scan not found")
	// ErrScanFailed: the scan ended in a state without findings
	// (FAILED, UNSUPPORTED_IMAGE, FINDINGS_UNAVAILABLE, ...).
	ErrScanFailed = errors.New("ECR image scan failed")
	// ErrAccessDenied: the AWS identity lacks an IAM permission.
	ErrAccessDenied = errors.New("ECR access denied")
	// ErrCredentials: no usable AWS credentials, or AWS rejected them.
	ErrCredentials = errors.New("AWS credentials unavailable")
	// ErrThrottled: ECR kept throttling after every retry.
	ErrThrottled = errors.New("ECR throttled the request")
	// ErrInvalidParameter: ECR rejected a parameter (e.g. a lifecycle policy).
	ErrInvalidParameter = errors.New("ECR rejected a parameter")
	// ErrPreviewExpired: the lifecycle policy preview expired, even after a restart.
	ErrPreviewExpired = errors.New("ECR lifecycle policy preview expired")
	// ErrPreviewFailed: ECR could not compute the lifecycle policy preview.
	ErrPreviewFailed = errors.New("ECR lifecycle policy preview failed")
	// ErrTimeout: a bounded wait (scan, preview) ran out.
	ErrTimeout = errors.New("timed out waiting for ECR")
)

// Error is the error type of this package. Error() is one line that names
// what failed and how to fix it; Kind (matched by errors.Is) lets callers
// reword it, e.g. to name their own input.
type Error struct {
	Op         string // ECR API operation, e.g. "BatchDeleteImage"
	Repository string // repository concerned, "" when none
	Kind       error  // one of the Err* sentinels, nil for other failures
	Code       string // AWS error code when ECR answered, e.g. "AccessDeniedException"
	Message    string // the one-line, actionable message
	Err        error  // the underlying SDK error
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's Kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// IAMAction is the permission an operation needs, e.g. "ecr:BatchDeleteImage".
// ECR's IAM actions carry the names of its API operations.
func IAMAction(op string) string { return "ecr:" + op }

var (
	throttleCodes = map[string]bool{
		"ThrottlingException": true, "Throttling": true, "TooManyRequestsException": true,
		"RequestLimitExceeded": true, "RequestThrottled": true, "RequestThrottledException": true,
		"ProvisionedThroughputExceededException": true, "SlowDown": true,
	}
	deniedCodes = map[string]bool{
		"AccessDeniedException": true, "AccessDenied": true, "UnauthorizedOperation": true,
		"UnauthorizedException": true,
	}
	badCredentialCodes = map[string]bool{
		"UnrecognizedClientException": true, "InvalidSignatureException": true,
		"SignatureDoesNotMatch": true, "InvalidClientTokenId": true, "ExpiredTokenException": true,
		"ExpiredToken": true, "MissingAuthenticationTokenException": true, "IncompleteSignatureException": true,
	}
	// "User: arn:aws:sts::123:assumed-role/ci/run is not authorized to perform: ..."
	principalPattern = regexp.MustCompile(`User: (arn:[^ ]+) is not authorized`)
)

// mapError turns an SDK error into an *Error with a one-line message.
func (c *Client) mapError(op, repo string, err error) error {
	if err == nil {
		return nil
	}
	var mapped *Error
	if errors.As(err, &mapped) {
		return err
	}
	e := &Error{Op: op, Repository: repo, Err: err}
	what := c.describeTarget(repo)

	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		e.Message = fmt.Sprintf("ECR %s %s: %v", op, what, contextCause(err))
		return e
	}

	var credErr *credentialsError
	if errors.As(err, &credErr) {
		e.Kind = ErrCredentials
		e.Message = fmt.Sprintf("no usable AWS credentials for ECR %s (%s): run aws-actions/configure-aws-credentials before this step (with permissions id-token: write for OIDC), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
			op, credentialsCause(credErr.err))
		return e
	}

	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		e.Message = fmt.Sprintf("ECR %s %s failed: %s", op, what, report.Clip(report.OneLine(err.Error()), 400))
		return e
	}
	code, msg := apiErr.ErrorCode(), report.OneLine(apiErr.ErrorMessage())
	e.Code = code
	attempts := ""
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		attempts = fmt.Sprintf(" after %d attempts", maxErr.Attempt)
	}

	switch {
	case code == "RepositoryNotFoundException":
		e.Kind = ErrRepositoryNotFound
		hint := "check the repository name and the region"
		if op == opDescribeRepositories {
			hint = "create it, or set ecr-create-repository: true"
		}
		e.Message = fmt.Sprintf("ECR repository %q does not exist in %s: %s", repo, c.registryLabel(), hint)
	case code == "ImageNotFoundException":
		e.Kind = ErrImageNotFound
		e.Message = fmt.Sprintf("ECR %s %s: image not found (%s)", op, what, report.Clip(msg, 300))
	case code == "LayersNotFoundException" || code == "LayerNotFoundException":
		e.Kind = ErrLayerNotFound
		e.Message = fmt.Sprintf("ECR %s %s: layer not found (%s)", op, what, report.Clip(msg, 300))
	case code == "ScanNotFoundException":
		e.Kind = ErrScanNotFound
		e.Message = fmt.Sprintf("ECR has no scan of this image in repository %q: enable scan on push for the repository (ecr-scan-on-push: true) or start one with aws ecr start-image-scan", repo)
	case deniedCodes[code]:
		e.Kind = ErrAccessDenied
		who := "the AWS identity this job uses"
		if m := principalPattern.FindStringSubmatch(msg); m != nil {
			who = m[1]
		}
		e.Message = fmt.Sprintf("ECR denied %s %s: grant %s to %s (for OIDC, the role assumed by aws-actions/configure-aws-credentials)",
			IAMAction(op), what, IAMAction(op), who)
	case badCredentialCodes[code]:
		e.Kind = ErrCredentials
		e.Message = fmt.Sprintf("AWS rejected the credentials for ECR %s (%s): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the role of aws-actions/configure-aws-credentials; session credentials may have expired", op, code)
	case throttleCodes[code]:
		e.Kind = ErrThrottled
		e.Message = fmt.Sprintf("ECR kept throttling %s %s%s: retry later or lower the concurrency", op, what, attempts)
	case code == "InvalidParameterException" || code == "ValidationException":
		e.Kind = ErrInvalidParameter
		e.Message = fmt.Sprintf("ECR rejected %s %s: %s", op, what, report.Clip(msg, 400))
	case isServerError(err, apiErr):
		e.Message = fmt.Sprintf("ECR %s %s failed with a server error%s (%s: %s): retry later", op, what, attempts, code, report.Clip(msg, 200))
	default:
		e.Message = fmt.Sprintf("ECR %s %s failed: %s: %s", op, what, code, report.Clip(msg, 400))
	}
	return e
}

// credentialsCause shortens the credential chain's failure. When the chain
// fell through to instance metadata, nothing was configured at all.
func credentialsCause(err error) string {
	cause := strings.TrimPrefix(report.OneLine(err.Error()), "failed to refresh cached credentials, ")
	if strings.Contains(cause, "no EC2 IMDS role found") {
		return "none found in the environment, shared config or instance metadata"
	}
	return report.Clip(cause, 200)
}

func isServerError(err error, apiErr smithy.APIError) bool {
	if apiErr.ErrorFault() == smithy.FaultServer {
		return true
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500
}

// describeTarget names the repository for messages ("for repository \"x\"").
func (c *Client) describeTarget(repo string) string {
	if repo == "" {
		return "in " + c.registryLabel()
	}
	return fmt.Sprintf("for repository %q", repo)
}

func (c *Client) registryLabel() string {
	if c.registryID != "" {
		return fmt.Sprintf("registry %s (%s)", c.registryID, c.region)
	}
	return c.region
}

func contextCause(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}
