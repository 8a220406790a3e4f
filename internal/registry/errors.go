package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

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
// such as "push to" or "read"; target is the reference or repository.
func Explain(err error, action, target string, access Access) error {
	if err == nil {
		return nil
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
	switch {
	case errors.As(err, &terr) && hasCode(terr, transport.DigestInvalidErrorCode):
		return fmt.Errorf("%s %s: the registry refused a blob whose content does not match its digest: the source is corrupt (%s)", action, target, report.OneLine(diagnostics(terr)))
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		what := "unauthorized"
		if terr.StatusCode == http.StatusForbidden {
			what = "denied"
		}
		return fmt.Errorf("%s %s: %s (%d): %s", action, target, what, terr.StatusCode, permissionHint(KindOf(host), access))
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: not found: %s", action, target, report.OneLine(diagnostics(terr)))
	case errors.As(err, &terr) && terr.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("%s %s: the registry does not allow this operation (405 Method Not Allowed)", action, target)
	case errors.As(err, &exhausted):
		return fmt.Errorf("%s %s: %s did not answer after %d attempts: %s", action, target, exhausted.Host, exhausted.Attempts, report.OneLine(exhausted.Last.Error()))
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostnameErr):
		return fmt.Errorf("%s %s: the TLS certificate of %s is not trusted (%s): add its CA to the runner's trust store (SSL_CERT_FILE)", action, target, host, report.OneLine(err.Error()))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s %s: cannot connect to %s: connection refused", action, target, host)
	case errors.As(err, &terr) && terr.StatusCode >= 500:
		return fmt.Errorf("%s %s: the registry failed (%d %s) after retries: %s", action, target, terr.StatusCode, http.StatusText(terr.StatusCode), report.OneLine(diagnostics(terr)))
	}
	return fmt.Errorf("%s %s: %s", action, target, report.OneLine(err.Error()))
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
