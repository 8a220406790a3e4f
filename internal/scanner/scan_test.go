package scanner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aquasecurity/trivy/pkg/cache"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

// layerCounter records which layers Trivy analysed: it stores a blob in the
// cache exactly once per layer it analyses.
type layerCounter struct {
	mu       sync.Mutex
	analysed map[string]int // diff ID → times analysed
}

func (c *layerCounter) wrap(inner cache.ArtifactCache) cache.ArtifactCache {
	return countingCache{ArtifactCache: inner, c: c}
}

type countingCache struct {
	cache.ArtifactCache
	c *layerCounter
}

func (cc countingCache) PutBlob(ctx context.Context, key string, info ftypes.BlobInfo) error {
	cc.c.mu.Lock()
	cc.c.analysed[info.DiffID]++
	cc.c.mu.Unlock()
	return cc.ArtifactCache.PutBlob(ctx, key, info)
}

func TestScanIndexEveryPlatformExactFindings(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")

	counter := &layerCounter{analysed: map[string]int{}}
	opts := offlineOptions(t)
	opts.hooks.wrapCache = counter.wrap

	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 {
		t.Fatalf("got %d images, want 1", len(res.Images))
	}
	img := res.Images[0]
	if img.Digest != ref.DigestStr() || img.Reference != ref.String() {
		t.Errorf("image = %s %s, want %s", img.Reference, img.Digest, ref)
	}

	// Every platform, attestation manifest skipped, index order kept.
	var platforms []string
	for _, p := range img.Platforms {
		platforms = append(platforms, p.Platform)
	}
	if want := []string{vulndb.PlatformAlpine, vulndb.PlatformDebian}; !slices.Equal(platforms, want) {
		t.Fatalf("platforms = %v, want %v", platforms, want)
	}

	for _, p := range img.Platforms {
		diffRows(t, "findings of "+p.Platform, rowsOf(platformFindings(p)), expectedRows(vulndb.ExpectedFor(p.Platform), p.Platform))
		if p.Report.ArtifactName != ref.String() || len(p.Report.Results) == 0 {
			t.Errorf("%s: Trivy report not kept: %q with %d results", p.Platform, p.Report.ArtifactName, len(p.Report.Results))
		}
	}
	if os := img.Platforms[0]; os.OSFamily != "alpine" || os.OSVersion != vulndb.AlpineRelease {
		t.Errorf("amd64 OS = %s %s", os.OSFamily, os.OSVersion)
	}
	if os := img.Platforms[1]; os.OSFamily != "debian" || os.OSVersion != vulndb.DebianRelease {
		t.Errorf("arm64 OS = %s %s", os.OSFamily, os.OSVersion)
	}

	// Merged findings list every platform they affect.
	diffRows(t, "merged findings", rowsOf(img.Findings), expectedRows(vulndb.Expected, ""))
	if len(img.HiddenBySeverity) != 0 {
		t.Errorf("nothing is hidden with every severity reported, got %d", len(img.HiddenBySeverity))
	}

	want := SeverityCounts{Critical: 2, High: 4, Medium: 3, Low: 3, Unknown: 1}
	if res.Counts != want || img.Counts != want {
		t.Errorf("counts = %+v (image %+v), want %+v", res.Counts, img.Counts, want)
	}
	if res.Fixable != 10 {
		t.Errorf("fixable = %d, want 10", res.Fixable)
	}
	if c := img.Platforms[0].Counts; c != (SeverityCounts{Critical: 1, High: 3, Medium: 2, Low: 2}) {
		t.Errorf("amd64 counts = %+v", c)
	}

	// Three distinct layers, each analysed once although the base layer is in both platforms.
	shared, err := vulndb.SharedLayerDiffID()
	if err != nil {
		t.Fatal(err)
	}
	if counter.analysed[shared.String()] != 1 {
		t.Errorf("shared layer analysed %d times, want 1", counter.analysed[shared.String()])
	}
	if len(counter.analysed) != 3 {
		t.Errorf("analysed %d distinct layers, want 3: %v", len(counter.analysed), counter.analysed)
	}
	for id, n := range counter.analysed {
		if n != 1 {
			t.Errorf("layer %s analysed %d times", id, n)
		}
	}

	if res.DB.SchemaVersion != 2 || !res.DB.UpdatedAt.Equal(fixtureTime) || res.DB.Downloaded {
		t.Errorf("DB info = %+v", res.DB)
	}
	if res.DB.AgeSeconds <= 0 {
		t.Errorf("DB age = %d", res.DB.AgeSeconds)
	}
}

func TestScanPlatformFilter(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	opts := offlineOptions(t)

	opts.Platforms = []string{"linux/arm64"} // no variant: matches arm64/v8
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	img := res.Images[0]
	if len(img.Platforms) != 1 || img.Platforms[0].Platform != vulndb.PlatformDebian {
		t.Fatalf("platforms = %+v", img.Platforms)
	}
	diffRows(t, "arm64 findings", rowsOf(img.Findings), expectedRows(vulndb.ExpectedFor(vulndb.PlatformDebian), vulndb.PlatformDebian))

	opts.Platforms = []string{"linux/s390x"}
	_, err = Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
	if !errors.Is(err, ErrInvalidOptions) || !CouldNotRun(err) {
		t.Fatalf("err = %v, want invalid options", err)
	}
	for _, want := range []string{"linux/s390x", vulndb.PlatformAlpine, vulndb.PlatformDebian} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestFSLayerCacheAcrossRuns(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	counter := &layerCounter{analysed: map[string]int{}}
	opts := offlineOptions(t)
	opts.LayerCache = "" // the default: analysed layers persist in CacheDir
	opts.hooks.wrapCache = counter.wrap

	for run := 1; run <= 2; run++ {
		res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts)
		if err != nil {
			t.Fatal(err)
		}
		diffRows(t, "findings", rowsOf(res.Images[0].Findings), expectedRows(vulndb.Expected, ""))
		total := 0
		for _, n := range counter.analysed {
			total += n
		}
		// The first run analyses the three layers; the second finds them all cached.
		if total != 3 {
			t.Errorf("after run %d, %d layer analyses, want 3", run, total)
		}
	}
}

// BenchmarkScan compares one platform with the two-platform index. The layer
// cache lives for one Scan call, so every iteration analyses layers afresh;
// the shared layer is analysed once per iteration in both cases.
func BenchmarkScan(b *testing.B) {
	host := startRegistry(b, nil)
	ref := pushIndex(b, host, "demo/app")
	for _, bc := range []struct {
		name      string
		platforms []string
	}{
		{"one-platform", []string{vulndb.PlatformAlpine}},
		{"two-platforms", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := offlineOptions(b)
			opts.Platforms = bc.platforms
			for b.Loop() {
				if _, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestConfigureTrivyLogging(t *testing.T) {
	// Trivy's buffering handler is spent once flushed: later tests log to nowhere.
	t.Cleanup(func() { ConfigureTrivyLogging(nil, false) })
	var buf bytes.Buffer
	ConfigureTrivyLogging(&buf, false)

	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	if _, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, offlineOptions(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Detecting vulnerabilities") || strings.Contains(buf.String(), "DEBUG") {
		t.Errorf("Trivy's log at info level:\n%s", buf.String())
	}
}

func TestCorruptLayerIsNamed(t *testing.T) {
	junk := bytes.Repeat([]byte("not a tar archive "), 256)
	layer := static.NewLayer(junk, types.OCILayer)
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	diffID, _ := layer.DiffID()
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}}})
	if err != nil {
		t.Fatal(err)
	}
	host := startRegistry(t, nil)
	ref := pushImage(t, host, "demo/corrupt", img)
	_, err = Scan(context.Background(), []Target{RemoteTarget(ref)}, offlineOptions(t))
	if !errors.Is(err, ErrImageAccess) || !CouldNotRun(err) {
		t.Fatalf("err = %v, want an image access error", err)
	}
	want := fmt.Sprintf("layer %s of %s (linux/amd64) cannot be analysed (failed to extract the archive: archive/tar: invalid tar header): the image is corrupt; rebuild and push it", diffID, ref)
	if err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
}

func pushLargeIndex(t testing.TB, host string, o vulndb.LargeOptions) name.Digest {
	t.Helper()
	idx, err := vulndb.LargeIndex(o)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	ref, err := name.NewDigest(host+"/bench/app@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestLargeIndexHasExactlyTheFixtureFindings(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushLargeIndex(t, host, vulndb.LargeOptions{OSPackages: 60, NpmPackages: 40, SharedBytes: 1 << 20, PlatformBytes: 1 << 20})
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, offlineOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	diffRows(t, "findings of the large index", rowsOf(res.Images[0].Findings), expectedRows(vulndb.Expected, ""))
}

// BenchmarkScanLarge compares one platform with two on images of realistic
// size (vulndb.DefaultLargeOptions), each iteration with a cold layer cache.
func BenchmarkScanLarge(b *testing.B) {
	host := startRegistry(b, nil)
	ref := pushLargeIndex(b, host, vulndb.DefaultLargeOptions)
	for _, bc := range []struct {
		name      string
		platforms []string
	}{
		{"one-platform", []string{vulndb.PlatformAlpine}},
		{"two-platforms", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := offlineOptions(b)
			opts.Platforms = bc.platforms
			for b.Loop() {
				if _, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
