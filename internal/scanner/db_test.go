package scanner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

// failRepo answers every request under /v2/<repo>/ with status, counting them.
func failRepo(repo string, status int, hits *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v2/"+repo+"/") {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				code := "TOOMANYREQUESTS"
				if status != http.StatusTooManyRequests {
					code = "UNAVAILABLE"
				}
				fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"come back later"}]}`, code)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func pushDB(t *testing.T, host, repo string, meta vulndb.Metadata) {
	t.Helper()
	art, err := vulndb.Artifact(meta)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, art); err != nil {
		t.Fatal(err)
	}
}

// noRetry keeps tests fast: the caller's transport owns retries, the engine
// owns the fallback between repositories.
var noRetry = remote.WithRetryBackoff(remote.Backoff{Steps: 1})

func downloadOptions(t *testing.T, host string, repos ...string) Options {
	return Options{
		CacheDir:           t.TempDir(),
		LayerCache:         "memory",
		DBRepositories:     repos,
		InsecureRegistries: []string{host},
		RemoteOptions:      []remote.Option{noRetry},
		Timeout:            5 * time.Minute,
	}
}

func TestDBDownloadFallsBackPast429(t *testing.T) {
	var limited atomic.Int32
	host := startRegistry(t, failRepo("limited/trivy-db", http.StatusTooManyRequests, &limited))
	meta := vulndb.MetadataAt(time.Now().Add(-2 * time.Hour))
	pushDB(t, host, "mirror/trivy-db:2", meta)
	ref := pushIndex(t, host, "demo/app")

	opts := downloadOptions(t, host, host+"/limited/trivy-db:2", host+"/mirror/trivy-db:2")
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if limited.Load() == 0 {
		t.Fatal("the rate-limited repository was never asked")
	}
	if !res.DB.Downloaded || res.DB.Repository != host+"/mirror/trivy-db:2" || !strings.HasPrefix(res.DB.Digest, "sha256:") {
		t.Errorf("DB = %+v, want downloaded from the mirror", res.DB)
	}
	if !res.DB.UpdatedAt.Equal(meta.UpdatedAt) || res.DB.DownloadedAt.IsZero() || res.DB.Age < 2*time.Hour {
		t.Errorf("DB metadata = %+v", res.DB)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "limited/trivy-db") || !strings.Contains(res.Warnings[0], "HTTP 429") {
		t.Errorf("warnings = %q, want one naming the 429 repository", res.Warnings)
	}
	diffRows(t, "findings with the downloaded DB", rowsOf(res.Images[0].Findings), expectedRows(vulndb.Expected, ""))

	// The next scan finds a fresh DB in the cache and does not download;
	// its origin is still known.
	limited.Store(0)
	res, err = Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.DB.Downloaded || res.DB.Repository != host+"/mirror/trivy-db:2" || limited.Load() != 0 {
		t.Errorf("second scan: DB = %+v, limited hits %d", res.DB, limited.Load())
	}
}

func TestDBDownloadEveryRepositoryFails(t *testing.T) {
	var limited, broken atomic.Int32
	host := startRegistry(t, func(h http.Handler) http.Handler {
		return failRepo("limited/trivy-db", http.StatusTooManyRequests, &limited)(failRepo("broken/trivy-db", http.StatusServiceUnavailable, &broken)(h))
	})
	ref := pushIndex(t, host, "demo/app")
	// A port nothing listens on: unreachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	opts := downloadOptions(t, host, host+"/limited/trivy-db:2", host+"/broken/trivy-db:2", dead+"/gone/trivy-db:2")
	opts.InsecureRegistries = append(opts.InsecureRegistries, dead)
	_, err = Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if !errors.Is(err, ErrDBDownload) || !CouldNotRun(err) {
		t.Fatalf("err = %v, want a DB download error", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"every repository", "limited/trivy-db:2", "HTTP 429", "broken/trivy-db:2", "HTTP 503", dead + "/gone/trivy-db:2", "db-repository"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if limited.Load() == 0 || broken.Load() == 0 {
		t.Errorf("repositories asked: limited %d, broken %d", limited.Load(), broken.Load())
	}
}

func TestDBDownloadStopsOnPermanentError(t *testing.T) {
	host := startRegistry(t, nil)
	pushDB(t, host, "mirror/trivy-db:2", vulndb.MetadataAt(time.Now()))
	ref := pushIndex(t, host, "demo/app")

	// A repository that does not exist is a configuration mistake another
	// mirror would hide, so the engine reports it instead of moving on.
	opts := downloadOptions(t, host, host+"/typo/trivy-db:2", host+"/mirror/trivy-db:2")
	_, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if !errors.Is(err, ErrDBDownload) || !strings.Contains(err.Error(), "typo/trivy-db:2") || strings.Contains(err.Error(), "mirror/trivy-db") {
		t.Fatalf("err = %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(opts.CacheDir, "db", "trivy.db")); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a DB was installed despite the error: %v", statErr)
	}
}

func TestSkipDBUpdateWithoutDB(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	opts := Options{CacheDir: t.TempDir(), SkipDBUpdate: true}
	_, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if !errors.Is(err, ErrNoDB) {
		t.Fatalf("err = %v, want ErrNoDB", err)
	}
	t.Log(err)
	for _, want := range []string{"skip-db-update", "without skip-db-update", "restore the cache", opts.CacheDir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestCorruptDB(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	opts := offlineOptions(t)
	if err := os.WriteFile(filepath.Join(opts.CacheDir, "db", "trivy.db"), []byte(strings.Repeat("not a bolt file ", 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if !errors.Is(err, ErrCorruptDB) || !strings.Contains(err.Error(), "delete") {
		t.Fatalf("err = %v, want ErrCorruptDB naming the fix", err)
	}
	t.Log(err)

	// Without skip-db-update a corrupt cache is replaced by a download.
	pushDB(t, host, "mirror/trivy-db:2", vulndb.MetadataAt(time.Now()))
	opts.SkipDBUpdate = false
	opts.DBRepositories = []string{host + "/mirror/trivy-db:2"}
	opts.InsecureRegistries = []string{host}
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.DB.Downloaded {
		t.Error("corrupt DB was not replaced")
	}
}

type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

func TestDBRemoteOptionsCarryDBDownloads(t *testing.T) {
	host := startRegistry(t, nil)
	pushDB(t, host, "mirror/trivy-db:2", vulndb.MetadataAt(time.Now()))
	ref := pushIndex(t, host, "demo/app")
	var images, db countingTransport
	opts := downloadOptions(t, host, host+"/mirror/trivy-db:2")
	opts.RemoteOptions = []remote.Option{noRetry, remote.WithTransport(&images)}
	opts.DBRemoteOptions = []remote.Option{noRetry, remote.WithTransport(&db)}
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.DB.Downloaded || db.n.Load() == 0 || images.n.Load() == 0 {
		t.Fatalf("DB downloaded %v; DB requests %d, image requests %d", res.DB.Downloaded, db.n.Load(), images.n.Load())
	}
	// A fresh cached DB is not downloaded again: only image requests follow.
	imagesBefore, dbBefore := images.n.Load(), db.n.Load()
	if _, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts); err != nil {
		t.Fatal(err)
	}
	if db.n.Load() != dbBefore || images.n.Load() == imagesBefore {
		t.Errorf("second scan: DB requests %d → %d, image requests %d → %d", dbBefore, db.n.Load(), imagesBefore, images.n.Load())
	}
}
