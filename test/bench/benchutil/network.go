package benchutil

import (
	"context"
	"io"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// Network models put in front of a benchmark's loopback registry, so a
// figure can say what a runner talking to ECR or GHCR would see.

// Throttle limits the request bodies a registry receives to mbps, shared by
// all its connections.
func Throttle(mbps int) func(http.Handler) http.Handler {
	limiter := rate.NewLimiter(bytesPerSecond(mbps), burst)
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil {
				r.Body = &limitedBody{ReadCloser: r.Body, limiters: []*rate.Limiter{limiter}, ctx: r.Context()}
			}
			h.ServeHTTP(w, r)
		})
	}
}

// WAN models a registry across a wide-area network, as ECR and GHCR are from
// a runner: every request pays a round trip before the registry sees it, one
// connection streams no faster than TCP manages over that path, and all
// connections share the link.
func WAN(rtt time.Duration, streamMbps, linkMbps int) func(http.Handler) http.Handler {
	link := rate.NewLimiter(bytesPerSecond(linkMbps), burst)
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(rtt)
			if r.Body != nil {
				stream := rate.NewLimiter(bytesPerSecond(streamMbps), burst)
				r.Body = &limitedBody{ReadCloser: r.Body, limiters: []*rate.Limiter{stream, link}, ctx: r.Context()}
			}
			h.ServeHTTP(w, r)
		})
	}
}

const burst = 256 << 10

func bytesPerSecond(mbps int) rate.Limit { return rate.Limit(mbps * 1000 * 1000 / 8) }

// limitedBody reads no faster than every one of its limiters allows.
type limitedBody struct {
	io.ReadCloser
	limiters []*rate.Limiter
	ctx      context.Context
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if len(p) > burst {
		p = p[:burst]
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		for _, l := range b.limiters {
			if werr := l.WaitN(b.ctx, n); werr != nil {
				return n, werr
			}
		}
	}
	return n, err
}
