package signer

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/registry-actions/registry/internal/report"
)

// Errors a caller may branch on with errors.Is. Their messages are the
// one-line fixes shown to users.
var (
	// ErrNoIDToken: keyless signing was asked for outside a job that may
	// request an OIDC token.
	ErrNoIDToken = errors.New("keyless signing needs the job's OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set): add `permissions: id-token: write` to the job, or set key")
	// ErrWrongKeyPassword: the encrypted private key did not decrypt.
	ErrWrongKeyPassword = errors.New("the private key did not decrypt: check key-password")
	// ErrImageNotFound: the digest to sign or verify is not in the registry.
	ErrImageNotFound = errors.New("image not found")
)

// PartialError reports a signing run that stopped part-way. Children are
// signed before their index, so an index never carries a signature while
// one of its platform manifests lacks one.
type PartialError struct {
	Signed    []string // digest references signed before the failure
	NotSigned []string // digest references left unsigned
	Err       error
}

func (e *PartialError) Error() string {
	signed := "none"
	if len(e.Signed) > 0 {
		signed = strings.Join(e.Signed, ", ")
	}
	return report.OneLine(fmt.Sprintf("%v (signed: %s; not signed: %s)", e.Err, signed, strings.Join(e.NotSigned, ", ")))
}

func (e *PartialError) Unwrap() error { return e.Err }

// ServiceError reports a Sigstore service (Fulcio, Rekor, the OIDC token
// endpoint) that could not be used.
type ServiceError struct {
	Service  string // "Fulcio", "Rekor", "OIDC token endpoint"
	URL      string
	Attempts int
	Fix      string
	Err      error
}

func (e *ServiceError) Error() string {
	what := "failed"
	if isUnreachable(e.Err) {
		what = "unreachable"
	}
	msg := fmt.Sprintf("%s at %s %s", e.Service, e.URL, what)
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	msg += fmt.Sprintf(": %v", e.Err)
	if e.Fix != "" {
		msg += ": " + e.Fix
	}
	return report.OneLine(msg)
}

func (e *ServiceError) Unwrap() error { return e.Err }

// isUnreachable tells network failures (refused, reset, timeout, DNS) from
// answers the service gave.
func isUnreachable(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &netErr) || errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "giving up after")
}

// registryError turns registry failures about one digest into one line,
// recognising "not found" so the caller can say which image is missing.
func registryError(ref string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s (check the reference and that it was pushed to this registry)", ErrImageNotFound, ref)
	}
	return singleLine(fmt.Errorf("%s: %w", ref, err))
}

// registryFailed tells a registry that could not answer (5xx, 429, a
// refused or dropped connection) from an answer about the content.
func registryFailed(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode >= 500 || terr.StatusCode == http.StatusTooManyRequests
	}
	return isUnreachable(err)
}

// lineError keeps the chain of a wrapped error but guarantees the message
// the user sees is a single line.
type lineError struct{ err error }

func (e lineError) Error() string { return report.OneLine(e.err.Error()) }
func (e lineError) Unwrap() error { return e.err }

func singleLine(err error) error {
	if err == nil {
		return nil
	}
	return lineError{err}
}
