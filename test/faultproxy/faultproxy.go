// Package faultproxy is a reverse proxy that stands between a client and a
// registry and misbehaves on request: it answers with 5xx or 429 and a
// Retry-After, drops connections (before the request, or after part of an
// upload's body), alters response bodies, goes down (refusing connections)
// and comes back, and runs a hook when a request arrives (to stop the
// registry or signal the client mid-push). It counts what passes, so a test
// can tell how many blobs an upload sent.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/registry-actions/registry/test/harness"
)

// Rule is one misbehaviour. The first rule whose Match accepts a request
// (and that has fired fewer than Times times, when Times > 0) fires.
type Rule struct {
	Match func(*http.Request) bool
	// Times bounds how often the rule fires; 0 means every time.
	Times int
	// Status answers with this status (and a registry-style error body)
	// instead of forwarding.
	Status int
	// RetryAfter is sent with Status.
	RetryAfter string
	// Drop closes the connection without an answer. With DropAfter > 0,
	// the request is forwarded and the connection cut once that many bytes
	// of its body went through.
	Drop      bool
	DropAfter int64
	// Delay stalls before anything else.
	Delay time.Duration
	// Rewrite alters the registry's response body (Content-Length follows).
	Rewrite func([]byte) []byte
	// Hook runs when the rule fires, before the misbehaviour.
	Hook func(*http.Request)

	hits int
}

// Proxy is a running fault proxy.
type Proxy struct {
	// Host is host:port on 127.0.0.1 (plain HTTP, as loopback registries are).
	Host string

	t        testing.TB
	upstream *url.URL
	handler  http.Handler

	mu     sync.Mutex
	rules  []*Rule
	counts map[string]int
	srv    *http.Server
}

// Start proxies to the registry at upstream (scheme://host:port) until the
// test ends. transport reaches the upstream (nil: http.DefaultTransport).
func Start(t testing.TB, upstream string, transport http.RoundTripper) *Proxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, upstream: u, counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	if transport != nil {
		rp.Transport = transport
	}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = p.rewrite
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// The upstream broke the exchange (e.g. a cut upload): do the same.
		abort(w)
	}
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(rp, w, r) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Host = ln.Addr().String()
	p.serveOn(ln)
	t.Cleanup(p.Down)
	return p
}

// Add installs a rule and returns it (for Hits).
func (p *Proxy) Add(r *Rule) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return r
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Hits returns how many times a rule fired.
func (p *Proxy) Hits(r *Rule) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return r.hits
}

// Count returns how many requests "METHOD kind" passed the proxy, kind as
// harness.PathKind names it: "PUT uploads" counts blob uploads committed
// (or attempted), "GET blobs" blobs downloaded.
func (p *Proxy) Count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[key]
}

// Reset zeroes the counts.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
}

// Down stops accepting connections and cuts the open ones, as a registry
// that stopped does; Up brings it back on the same address.
func (p *Proxy) Down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Up listens again on the proxy's address after Down.
func (p *Proxy) Up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; the kernel may need a moment to
	// release it.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.Host); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("fault proxy up again on %s: %v", p.Host, err)
	}
	p.serveOn(ln)
}

func (p *Proxy) serveOn(ln net.Listener) {
	srv := &http.Server{Handler: p.handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go srv.Serve(ln)
}

func (p *Proxy) serve(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.counts[r.Method+" "+harness.PathKind(r.URL.Path)]++
	var fire *Rule
	for _, rule := range p.rules {
		if (rule.Times == 0 || rule.hits < rule.Times) && (rule.Match == nil || rule.Match(r)) {
			rule.hits++
			fire = rule
			break
		}
	}
	p.mu.Unlock()
	if fire == nil {
		rp.ServeHTTP(w, r)
		return
	}
	if fire.Hook != nil {
		fire.Hook(r)
	}
	if fire.Delay > 0 {
		time.Sleep(fire.Delay)
	}
	switch {
	case fire.Drop && fire.DropAfter > 0 && r.Body != nil:
		r.Body = &cutBody{ReadCloser: r.Body, left: fire.DropAfter}
		rp.ServeHTTP(w, r)
	case fire.Drop:
		abort(w)
	case fire.Status != 0:
		if fire.RetryAfter != "" {
			w.Header().Set("Retry-After", fire.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fire.Status)
		io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}`)
	case fire.Rewrite != nil:
		r = r.WithContext(withRewrite(r.Context(), fire.Rewrite))
		rp.ServeHTTP(w, r)
	default:
		rp.ServeHTTP(w, r)
	}
}

// rewrite applies a firing rule's Rewrite to the registry's answer.
func (p *Proxy) rewrite(resp *http.Response) error {
	f := rewriteFrom(resp.Request.Context())
	if f == nil || resp.Body == nil {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	body = f(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// errCut ends a request body early, as a dropped connection does.
var errCut = errors.New("fault proxy: connection cut mid-body")

type cutBody struct {
	io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// abort closes the client's connection without an answer.
func abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

type rewriteKey struct{}

func withRewrite(ctx context.Context, f func([]byte) []byte) context.Context {
	return context.WithValue(ctx, rewriteKey{}, f)
}

func rewriteFrom(ctx context.Context) func([]byte) []byte {
	f, _ := ctx.Value(rewriteKey{}).(func([]byte) []byte)
	return f
}
