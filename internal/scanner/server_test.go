package scanner

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aquasecurity/trivy/pkg/cache"
	tdb "github.com/aquasecurity/trivy/pkg/db"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/rpc/server"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

// startTrivyServer runs Trivy's own server handlers in-process on loopback,
// serving the fixture DB.
func startTrivyServer(t *testing.T, token string) string {
	t.Helper()
	serverCache := seededCache(t)
	if err := tdb.Init(tdb.Dir(serverCache)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tdb.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := server.NewServer("test", "127.0.0.1:0", serverCache, token, "Trivy-Token", "", nil, ftypes.RegistryOptions{})
	mux := s.NewServeMux(ctx, cache.NewMemoryCache(), &sync.WaitGroup{}, &sync.WaitGroup{})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestClientServerMode(t *testing.T) {
	const token = "test-token-1"
	url := startTrivyServer(t, token)
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")

	clientCache := t.TempDir()
	opts := Options{CacheDir: clientCache, LayerCache: "memory", Server: url, ServerToken: token}
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Images[0].Platforms {
		diffRows(t, "findings of "+p.Platform, rowsOf(platformFindings(p)), expectedRows(vulndb.ExpectedFor(p.Platform), p.Platform))
	}
	diffRows(t, "merged findings", rowsOf(res.Images[0].Findings), expectedRows(vulndb.Expected, ""))

	// The server's DB was used: nothing was downloaded or opened locally.
	if res.DB.Server != url || !res.DB.UpdatedAt.Equal(fixtureTime) || res.DB.SchemaVersion != 2 || res.DB.Downloaded {
		t.Errorf("DB = %+v", res.DB)
	}
	if _, err := os.Stat(filepath.Join(clientCache, "db", "trivy.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("client cache holds a DB: %v", err)
	}

	opts.ServerToken = "wrong"
	_, err = Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), url) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err = %v, want a server error naming the server and not the token", err)
	}
	t.Log(err)
}
