package inventory_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/test/fakeecr"
)

// TestMain isolates the tests from the machine's AWS configuration.
func TestMain(m *testing.M) {
	fakeecr.IsolateAWS()
	os.Exit(m.Run())
}

var (
	now     = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	longAgo = now.AddDate(0, 0, -90)
)

// counting wraps a handler, counting "METHOD kind" requests where kind is
// manifests, blobs, tags or referrers, and lets a test refuse requests.
type counting struct {
	h      http.Handler
	mu     sync.Mutex
	counts map[string]int
	refuse func(*http.Request) int // status to answer instead, 0 to pass
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := "other"
	for _, k := range []string{"manifests", "blobs", "tags", "referrers"} {
		if strings.Contains(r.URL.Path, "/"+k+"/") {
			kind = k
		}
	}
	c.mu.Lock()
	c.counts[r.Method+" "+kind]++
	refuse := c.refuse
	c.mu.Unlock()
	if refuse != nil {
		if status := refuse(r); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(`{"errors":[{"code":"DENIED","message":"refused by the test"}]}`))
			return
		}
	}
	c.h.ServeHTTP(w, r)
}

func (c *counting) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

func (c *counting) reset() {
	c.mu.Lock()
	c.counts = map[string]int{}
	c.mu.Unlock()
}

// startRegistry runs go-containerregistry's in-memory registry behind a
// request counter.
func startRegistry(t *testing.T, opts ...ggcrregistry.Option) (*counting, string) {
	t.Helper()
	opts = append(opts, ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	c := &counting{h: ggcrregistry.New(opts...), counts: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, strings.TrimPrefix(srv.URL, "http://")
}

func repoAt(t *testing.T, host, path string) name.Repository {
	t.Helper()
	repo, err := name.NewRepository(host+"/"+path, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// noRetry keeps go-containerregistry from retrying refusals the tests inject.
func noRetry() []remote.Option {
	return []remote.Option{remote.WithRetryStatusCodes()}
}

func push(t *testing.T, repo name.Repository, spec cleanfixture.Image) *cleanfixture.Built {
	t.Helper()
	b, err := cleanfixture.Push(context.Background(), repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func byDigest(arts []lifecycle.Artifact) map[string]lifecycle.Artifact {
	out := map[string]lifecycle.Artifact{}
	for _, a := range arts {
		out[a.Digest] = a
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func roleDigests(b *cleanfixture.Built, role string) []string {
	var out []string
	for _, m := range b.Manifests {
		if m.Role == role {
			out = append(out, m.Digest)
		}
	}
	return out
}

func newECRClient(t *testing.T, srv *fakeecr.Server) *ecr.Client {
	t.Helper()
	c, err := ecr.New(context.Background(), ecr.Options{
		Region:      "us-east-1",
		Endpoint:    srv.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret-key", ""),
		MaxBackoff:  2 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seedECR adds the manifests of built images to a fake ECR repository.
func seedECR(t *testing.T, srv *fakeecr.Server, repo string, pushed time.Time, built ...*cleanfixture.Built) {
	t.Helper()
	for _, b := range built {
		for _, m := range b.Manifests {
			srv.AddImages(repo, fakeecr.Image{Digest: m.Digest, Tags: m.Tags, PushedAt: pushed, SizeBytes: m.Size,
				Manifest: m.Body, MediaType: m.MediaType, SubjectDigest: m.Subject, Blobs: m.Blobs})
		}
	}
}
