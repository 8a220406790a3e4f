package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/registry-actions/registry/internal/failure"
)

// RetryPolicy bounds how hard the transport tries before giving up.
type RetryPolicy struct {
	// Attempts is the total number of tries per request, the first included.
	Attempts int
	// BaseDelay doubles after each failure (with full jitter) up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured.
	MaxRetryAfter time.Duration
	// Budget bounds the time spent on one request across all its attempts.
	Budget time.Duration
}

// DefaultRetryPolicy suits CI: a flaky registry gets about a minute and a
// half to recover, a dead one fails in well under the job's patience.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Attempts: 5, BaseDelay: 500 * time.Millisecond, MaxDelay: 20 * time.Second, MaxRetryAfter: 60 * time.Second, Budget: 2 * time.Minute}
}

// ExhaustedError is returned when every attempt failed. go-containerregistry's
// own retry layer recognises it and does not start over.
type ExhaustedError struct {
	Host     string
	Attempts int
	Last     error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("%s did not answer after %d attempts: %v", e.Host, e.Attempts, e.Last)
}

func (e *ExhaustedError) Unwrap() error { return e.Last }

// retryTransport retries connection errors, 408, 429 and 5xx with
// exponential backoff and jitter, honouring Retry-After. Only requests whose
// body can be replayed are retried here; streamed blob uploads are retried
// whole, per blob, by go-containerregistry's writer.
type retryTransport struct {
	inner     http.RoundTripper
	policy    RetryPolicy
	userAgent string
	sleep     func(ctx context.Context, d time.Duration) error
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.userAgent != "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.userAgent)
	}
	if !replayable(req) || t.policy.Attempts <= 1 {
		return t.inner.RoundTrip(req)
	}
	deadline := time.Now().Add(t.policy.Budget)
	var lastErr error
	for attempt := 1; ; attempt++ {
		try := req
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		resp, err := t.inner.RoundTrip(try)
		wait, retry := t.classify(resp, err, attempt)
		if !retry {
			return resp, err
		}
		if err != nil {
			lastErr = err
		} else {
			lastErr = fmt.Errorf("%s %s: %s", req.Method, redactURLs(req.URL.String()), resp.Status)
		}
		if attempt >= t.policy.Attempts || time.Now().Add(wait).After(deadline) {
			if resp != nil {
				// Hand the last answer to the caller: its body explains more
				// than we could (e.g. the registry's error JSON).
				return resp, nil
			}
			return nil, &ExhaustedError{Host: req.URL.Host, Attempts: attempt, Last: lastErr}
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// replayable reports whether a request can be sent again as it is. A blob
// upload's body is not: the registry may have stored part of it in the
// upload session, and sending it again from the start is refused (416).
// go-containerregistry retries such an upload whole, in a new session.
func replayable(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if strings.Contains(req.URL.Path, "/blobs/uploads/") {
		return false
	}
	return req.GetBody != nil
}

// classify decides whether to retry and how long to wait first.
func (t *retryTransport) classify(resp *http.Response, err error, attempt int) (time.Duration, bool) {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, false
		}
		if !isConnectionError(err) {
			return 0, false
		}
		return t.backoff(attempt), true
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return 0, false
	}
	if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		return min(d, t.policy.MaxRetryAfter), true
	}
	return t.backoff(attempt), true
}

func (t *retryTransport) backoff(attempt int) time.Duration {
	ceiling := t.policy.BaseDelay << min(attempt-1, 16)
	if ceiling <= 0 || ceiling > t.policy.MaxDelay {
		ceiling = t.policy.MaxDelay
	}
	// Full jitter: many runners retrying one registry must not stampede.
	return time.Duration(rand.Int64N(int64(ceiling)/2+1)) + ceiling/2
}

// retryAfter parses a Retry-After header: delta-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

func isConnectionError(err error) bool {
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		// Retrying cannot fix trust; say so at once.
		return false
	}
	if failure.IsInvalid(err) {
		// A corrupt source fails the body's read, which the HTTP client
		// reports wrapped in a network error: no retry reads it better.
		return false
	}
	var netErr net.Error
	var opErr *net.OpError
	return errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout()) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// baseTransport is the shared connection pool: keep-alive, HTTP/2, proxy
// from the environment, enough idle connections for parallel blob uploads.
func baseTransport(roots *x509.CertPool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = 5 * time.Minute
	if roots != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return t
}
