package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/report"
)

// Access says what an operation needs from the registry, to name the right
// permission when it is refused.
type Access int

const (
	Read Access = iota
	Write
	Delete
)

// Explain turns a registry error into one line a user can act on: what
// failed, against which registry, and what to change. action is a verb phrase
// such as "push to" or "read"; target is the reference or repository. A
// problem with the caller's input (a corrupt source) passes through as it
// is; no URL in the message keeps its query (upload tokens live there).
func Explain(err error, action, target string, access Access) error {
	if err == nil {
		return nil
	}
	var invalid *failure.InvalidError
	if errors.As(err, &invalid) {
		return invalid
	}
	host := target
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	var terr *transport.Error
	var exhausted *ExhaustedError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	const rerun = "re-run to finish: blobs already uploaded are skipped"
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s %s: interrupted (the run was cancelled): %s", action, target, rerun)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: timed out: raise the timeout input, or %s", action, target, rerun)
	case errors.As(err, &terr) && hasCode(terr, transport.DigestInvalidErrorCode):
		return fmt.Errorf("%s %s: the registry refused the bytes as not matching their digest, though they were checked before sending (%s): something between here and the registry alters uploads; %s", action, target, clean(diagnostics(terr)), rerun)
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		what := "unauthorized"
		if terr.StatusCode == http.StatusForbidden {
			what = "denied"
		}
		return fmt.Errorf("%s %s: %s (%d): %s", action, target, what, terr.StatusCode, permissionHint(KindOf(host), access))
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: not found: %s", action, target, clean(diagnostics(terr)))
	case errors.As(err, &terr) && terr.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("%s %s: the registry does not allow this operation (405 Method Not Allowed)", action, target)
	case errors.As(err, &exhausted):
		return fmt.Errorf("%s %s: %s did not answer after %d attempts (last: %s): the registry may be down or overloaded; %s", action, target, exhausted.Host, exhausted.Attempts, clean(exhausted.Last.Error()), rerun)
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostnameErr):
		return fmt.Errorf("%s %s: the TLS certificate of %s is not trusted (%s): add its CA to the runner's trust store (SSL_CERT_FILE)", action, target, host, clean(cause(err)))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s %s: cannot connect to %s (connection refused): check the registry address and that it is up, then re-run", action, target, host)
	case errors.As(err, &terr) && terr.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%s %s: the registry kept answering 429 Too Many Requests: lower concurrency or wait for the rate limit to reset, then %s", action, target, rerun)
	case errors.As(err, &terr) && terr.StatusCode >= 500:
		return fmt.Errorf("%s %s: the registry failed (%d %s) after retries: %s; %s", action, target, terr.StatusCode, http.StatusText(terr.StatusCode), clean(diagnostics(terr)), rerun)
	case isConnectionError(err):
		return fmt.Errorf("%s %s: the connection to %s broke (%s): %s", action, target, host, clean(cause(err)), rerun)
	}
	return fmt.Errorf("%s %s: %s", action, target, clean(cause(err)))
}

// cause is an error's message without the request line an HTTP client
// error starts with (`Patch "https://…": `): the action already names it.
func cause(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) && uerr.Err != nil {
		return uerr.Err.Error()
	}
	return err.Error()
}

// clean folds a message to one line with every URL's query, fragment and
// credentials removed, and net/http's wording for a short body said plainly.
func clean(s string) string {
	s = shortBody.ReplaceAllString(redactURLs(s), "the blob's bytes ended after $2 of $1")
	return report.OneLine(s)
}

var shortBody = regexp.MustCompile(`http: ContentLength=(\d+) with Body length (\d+)`)

var urlPattern = regexp.MustCompile(`(?i)\bhttps?://[^\s"'<>]+`)

// redactURLs removes query strings (upload session tokens such as _state),
// fragments and user information from every URL in s.
func redactURLs(s string) string {
	return urlPattern.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			if i := strings.IndexAny(raw, "?#"); i >= 0 {
				return raw[:i]
			}
			return raw
		}
		u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
		return u.String()
	})
}

// permissionHint names the permission a refused request needs, per registry kind.
func permissionHint(kind Kind, access Access) string {
	switch kind {
	case KindGHCR:
		switch access {
		case Write:
			return `grant the job "permissions: packages: write" (or pass a token with write:packages as github-token), and give this repository write access in the package's settings`
		case Delete:
			return `deleting needs admin on the package: give this repository the Admin role under the package's "Manage Actions access", or pass a token with delete:packages as github-token`
		default:
			return `grant the job "permissions: packages: read" (or pass a token with read:packages as github-token)`
		}
	case KindECR:
		switch access {
		case Write:
			return "the AWS role needs ecr:GetAuthorizationToken, ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload and ecr:PutImage on this repository"
		case Delete:
			return "the AWS role needs ecr:BatchDeleteImage on this repository"
		default:
			return "the AWS role needs ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on this repository"
		}
	case KindECRPublic:
		return "public.ecr.aws allows anonymous pulls only; pushing needs ecr-public credentials in the Docker config"
	default:
		return "check registry-username and registry-password (or the Docker config's credentials for this registry)"
	}
}

func hasCode(terr *transport.Error, code transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

func diagnostics(terr *transport.Error) string {
	if len(terr.Errors) == 0 {
		return http.StatusText(terr.StatusCode)
	}
	var parts []string
	for _, d := range terr.Errors {
		s := string(d.Code)
		if d.Message != "" {
			s += ": " + d.Message
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
