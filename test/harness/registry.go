// Package harness is what the end-to-end tests stand on: a real registry
// (distribution/distribution v3 in-process) with optional TLS, basic auth,
// deletes, request counting and fault injection; a proxy that lets the binary
// reach it under real registry host names (ECR, ghcr.io); synthetic images;
// and a runner that starts the built binary exactly as GitHub's runner does.
package harness

import (
	"bufio"
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-actions/registry/internal/demo/localregistry"
)

// Registry is a running test registry.
type Registry struct {
	*localregistry.Registry
	Counter *Counter
	Faults  *Faults
	// CAFile is a PEM file of the registry's CA (TLS only), for SSL_CERT_FILE.
	CAFile string
}

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	TLS       bool
	Hostnames []string
	Users     map[string]string
	Deletes   bool
}

// StartRegistry starts a registry for the test and stops it at cleanup.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	counter := &Counter{}
	faults := &Faults{}
	reg, err := localregistry.Start(context.Background(), localregistry.Options{
		TLS: opts.TLS, Hostnames: opts.Hostnames, Users: opts.Users, Deletes: opts.Deletes,
		Wrap: func(h http.Handler) http.Handler { return counter.Wrap(faults.Wrap(h)) },
	})
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	r := &Registry{Registry: reg, Counter: counter, Faults: faults}
	if opts.TLS {
		r.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(r.CAFile, reg.CAPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// Pool returns the registry's CA pool (nil without TLS).
func (r *Registry) Pool() *x509.CertPool { return r.CertPool }

// Counter counts requests and the body bytes the registry received.
type Counter struct {
	mu       sync.Mutex
	requests map[string]int
	bytesIn  atomic.Int64
}

// Wrap counts requests passing to h, keyed "METHOD kind" where kind is
// blobs, uploads, manifests, tags or base.
func (c *Counter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + PathKind(r.URL.Path)
		c.mu.Lock()
		if c.requests == nil {
			c.requests = map[string]int{}
		}
		c.requests[key]++
		c.mu.Unlock()
		if r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, n: &c.bytesIn}
		}
		h.ServeHTTP(w, r)
	})
}

// Requests returns how many requests matched "METHOD kind".
func (c *Counter) Requests(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[key]
}

// BlobBytesIn returns the request body bytes received so far.
func (c *Counter) BlobBytesIn() int64 { return c.bytesIn.Load() }

// Reset zeroes the counters.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.requests = map[string]int{}
	c.mu.Unlock()
	c.bytesIn.Store(0)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// PathKind names the part of the distribution API a path belongs to:
// base, uploads, blobs, manifests, tags, referrers or other.
func PathKind(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "base"
	case strings.Contains(p, "/blobs/uploads"):
		return "uploads"
	case strings.Contains(p, "/blobs/"):
		return "blobs"
	case strings.Contains(p, "/manifests/"):
		return "manifests"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags"
	case strings.Contains(p, "/referrers/"):
		return "referrers"
	}
	return "other"
}

// Faults injects failures into matching requests.
type Faults struct {
	mu    sync.Mutex
	rules []*FaultRule
}

// FaultRule fails the next Times requests that Match.
type FaultRule struct {
	Match func(*http.Request) bool
	// Status to answer with (e.g. 500, 429); 0 drops the connection.
	Status     int
	RetryAfter string
	// Body replaces the default error body (e.g. a hostile one).
	Body string
	// Delay stalls before answering.
	Delay time.Duration
	Times int
	hits  int
}

// Add installs a rule.
func (f *Faults) Add(rule *FaultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, rule)
}

// Hits returns how many times a rule fired.
func (f *Faults) Hits(rule *FaultRule) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return rule.hits
}

// Wrap applies the rules in front of h.
func (f *Faults) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var fire *FaultRule
		for _, rule := range f.rules {
			if rule.hits < rule.Times && (rule.Match == nil || rule.Match(r)) {
				rule.hits++
				fire = rule
				break
			}
		}
		f.mu.Unlock()
		if fire == nil {
			h.ServeHTTP(w, r)
			return
		}
		if fire.Delay > 0 {
			time.Sleep(fire.Delay)
		}
		if fire.Status == 0 {
			if hj, ok := w.(http.Hijacker); ok {
				conn, _, err := hj.Hijack()
				if err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if fire.RetryAfter != "" {
			w.Header().Set("Retry-After", fire.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fire.Status)
		body := fire.Body
		if body == "" {
			body = `{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}`
		}
		io.WriteString(w, body)
	})
}

// Proxy is an HTTP CONNECT proxy that sends every tunnel to one address, so
// the binary can reach a loopback registry under a real host name such as
// 123456789012.dkr.ecr.us-east-1.amazonaws.com or ghcr.io. Set HTTPS_PROXY
// to its URL (and SSL_CERT_FILE to the registry's CA).
type Proxy struct {
	URL     string
	ln      net.Listener
	mu      sync.Mutex
	targets map[string]string
	seen    map[string]int
}

// StartProxy starts a proxy; Route maps host names to addresses.
func StartProxy(t testing.TB) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln, targets: map[string]string{}, seen: map[string]int{}}
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

// Route sends CONNECT host:443 tunnels to addr.
func (p *Proxy) Route(host, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets[host] = addr
}

// Seen returns how many tunnels were opened to host.
func (p *Proxy) Seen(host string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[host]
}

func (p *Proxy) serve() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(conn)
	}
}

func (p *Proxy) handle(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		io.WriteString(conn, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	host, _, _ := net.SplitHostPort(req.Host)
	p.mu.Lock()
	addr, ok := p.targets[host]
	p.seen[host]++
	p.mu.Unlock()
	if !ok {
		io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", addr)
	if err != nil {
		io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer up.Close()
	io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); done <- struct{}{} }()
	go func() { io.Copy(conn, up); done <- struct{}{} }()
	<-done
}
