package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/failure"
)

// Options configure a Client.
type Options struct {
	// UserAgent names this tool and its version on every request.
	UserAgent string
	// Insecure lists registries (host[:port]) that may use plain HTTP.
	Insecure    []string
	Credentials Credentials
	// RootCAs replaces the system trust store (tests use their own CA).
	RootCAs *x509.CertPool
	// Retry bounds retries; the zero value means DefaultRetryPolicy.
	Retry RetryPolicy
	// Base replaces the connection pool (tests insert faults or counters).
	Base http.RoundTripper
}

// Client is the one way stages reach registries.
type Client struct {
	Resolver
	keychain  *Keychain
	transport http.RoundTripper
}

// New builds a client. It does no I/O: credentials are fetched when a
// registry first asks for them.
func New(opts Options) *Client {
	if opts.Retry == (RetryPolicy{}) {
		opts.Retry = DefaultRetryPolicy()
	}
	base := opts.Base
	if base == nil {
		base = baseTransport(opts.RootCAs)
	}
	return &Client{
		Resolver:  Resolver{Insecure: opts.Insecure},
		keychain:  NewKeychain(opts.Credentials),
		transport: &retryTransport{inner: base, policy: opts.Retry, userAgent: opts.UserAgent, sleep: sleepCtx},
	}
}

// Keychain returns the credential resolver (for libraries that take one).
func (c *Client) Keychain() authn.Keychain { return c.keychain }

// Transport returns the retrying transport (for libraries that take one).
func (c *Client) Transport() http.RoundTripper { return c.transport }

// Remote returns go-containerregistry options bound to ctx: our keychain,
// our transport, and go-containerregistry's own retry layer narrowed so that
// it does not repeat what our transport already retried. Its per-blob upload
// retry stays, so a failed upload resumes that blob, not the whole image.
func (c *Client) Remote(ctx context.Context, extra ...remote.Option) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(retryOnceMore),
	}
	return append(opts, extra...)
}

// retryOnceMore is go-containerregistry's retry predicate: temporary
// failures of requests our transport could not replay (streamed uploads).
func retryOnceMore(err error) bool {
	if err == nil {
		return false
	}
	var exhausted *ExhaustedError
	if errors.As(err, &exhausted) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || failure.IsInvalid(err) {
		return false
	}
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}
