package scanner

import (
	"cmp"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

// fixtureTime is when the fixture DB claims to have been built.
var fixtureTime = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

// startRegistry serves go-containerregistry's in-memory registry on loopback.
func startRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func pushIndex(t testing.TB, host, repo string) name.Digest {
	t.Helper()
	idx, err := vulndb.Index()
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(fmt.Sprintf("%s/%s@%s", host, repo, d), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return ref
}

func pushImage(t testing.TB, host, repo string, img v1.Image) name.Digest {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(fmt.Sprintf("%s/%s@%s", host, repo, d), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// seededCache returns a cache directory holding the fixture DB.
func seededCache(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	meta := vulndb.MetadataAt(fixtureTime)
	meta.DownloadedAt = fixtureTime.Add(time.Hour)
	if err := vulndb.SeedCache(dir, meta); err != nil {
		t.Fatal(err)
	}
	return dir
}

// offlineOptions scan with the seeded fixture DB and no DB download.
func offlineOptions(t testing.TB) Options {
	return Options{CacheDir: seededCache(t), SkipDBUpdate: true, LayerCache: "memory", Timeout: 5 * time.Minute}
}

// row is a comparable view of a finding.
type row struct {
	ID, Severity, Pkg, Type, Installed, Fixed, Status string
	Platforms                                         string
}

func rowsOf(fs []Finding) []row {
	var out []row
	for _, f := range fs {
		p := slices.Clone(f.Platforms)
		slices.Sort(p)
		out = append(out, row{f.ID, f.Severity, f.PkgName, f.PkgType, f.InstalledVersion, f.FixedVersion, f.Status, strings.Join(p, ",")})
	}
	sortRows(out)
	return out
}

func expectedRows(fs []vulndb.ExpectedFinding, platform string) []row {
	var out []row
	for _, f := range fs {
		p := slices.Clone(f.Platforms)
		if platform != "" {
			p = []string{platform}
		}
		slices.Sort(p)
		out = append(out, row{f.VulnerabilityID, f.Severity, f.PkgName, f.PkgType, f.InstalledVersion, f.FixedVersion, f.Status, strings.Join(p, ",")})
	}
	sortRows(out)
	return out
}

func sortRows(rs []row) {
	slices.SortFunc(rs, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Pkg, b.Pkg), cmp.Compare(a.Platforms, b.Platforms))
	})
}

func diffRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var b strings.Builder
	for _, r := range want {
		if !slices.Contains(got, r) {
			fmt.Fprintf(&b, "\n  missing: %+v", r)
		}
	}
	for _, r := range got {
		if !slices.Contains(want, r) {
			fmt.Fprintf(&b, "\n  unexpected: %+v", r)
		}
	}
	t.Errorf("%s differ:%s", what, b.String())
}

// filterExpected keeps the expected findings a predicate accepts.
func filterExpected(keep func(vulndb.ExpectedFinding) bool) []vulndb.ExpectedFinding {
	var out []vulndb.ExpectedFinding
	for _, f := range vulndb.Expected {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// platformFindings converts one platform's Trivy report back to findings.
func platformFindings(p PlatformResult) []Finding {
	return findingsOf(p.Report, p.Platform)
}
