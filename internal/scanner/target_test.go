package scanner

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/demo/vulndb"
)

func writeLayout(t *testing.T) string {
	t.Helper()
	idx, err := vulndb.Index()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := layout.Write(dir, idx); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestScanLocalTargets(t *testing.T) {
	dir := writeLayout(t)
	archive := filepath.Join(t.TempDir(), "app.oci.tar")
	if err := synth.TarDir(dir, archive, "./"); err != nil {
		t.Fatal(err)
	}

	alpine, err := vulndb.AlpineImage()
	if err != nil {
		t.Fatal(err)
	}
	dockerSave := filepath.Join(t.TempDir(), "alpine.tar")
	tag, _ := name.NewTag("demo/alpine:1")
	if err := tarball.WriteToFile(dockerSave, tag, alpine); err != nil {
		t.Fatal(err)
	}

	// Three targets in one call: one engine, one layer cache.
	res, err := Scan(context.Background(), []Target{PathTarget(dir), PathTarget(archive), PathTarget(dockerSave)}, offlineOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 3 {
		t.Fatalf("got %d images", len(res.Images))
	}
	idx, _ := vulndb.Index()
	idxDigest, _ := idx.Digest()
	for _, img := range res.Images[:2] {
		if img.Digest != idxDigest.String() || len(img.Platforms) != 2 {
			t.Errorf("%s: digest %s, %d platforms; want the index %s with 2", img.Reference, img.Digest, len(img.Platforms), idxDigest)
		}
		diffRows(t, "findings of "+img.Reference, rowsOf(img.Findings), expectedRows(vulndb.Expected, ""))
	}
	single := res.Images[2]
	if len(single.Platforms) != 1 || single.Platforms[0].Platform != vulndb.PlatformAlpine {
		t.Fatalf("docker archive platforms = %+v", single.Platforms)
	}
	diffRows(t, "docker archive findings", rowsOf(single.Findings), expectedRows(vulndb.ExpectedFor(vulndb.PlatformAlpine), vulndb.PlatformAlpine))
	if c := DefaultSARIFCategory(single); c != "registry-scan/alpine/" {
		t.Errorf("category of a path = %q", c)
	}
	// Unique across images: the layout and the archive are the same image.
	if res.Counts.Total() != len(vulndb.Expected) {
		t.Errorf("total = %d, want %d unique findings", res.Counts.Total(), len(vulndb.Expected))
	}
}

func TestScanErrors(t *testing.T) {
	host := startRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v2/slow/") {
				<-r.Context().Done() // never answers
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	ref := pushIndex(t, host, "demo/app")
	missing, _ := name.NewDigest(host+"/demo/app@sha256:"+strings.Repeat("ab", 32), name.Insecure)
	slow, _ := name.NewDigest(host+"/slow/app@"+ref.DigestStr(), name.Insecure)

	t.Run("image not found", func(t *testing.T) {
		_, err := Scan(context.Background(), []Target{RemoteTarget(missing)}, offlineOptions(t))
		if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), missing.String()) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
	})
	t.Run("path not found", func(t *testing.T) {
		_, err := Scan(context.Background(), []Target{PathTarget(filepath.Join(t.TempDir(), "nope.tar"))}, offlineOptions(t))
		if !errors.Is(err, ErrImageNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not an image archive", func(t *testing.T) {
		_, err := Scan(context.Background(), []Target{PathTarget(writeFile(t, "x.tar", "plain text"))}, offlineOptions(t))
		if !errors.Is(err, ErrImageAccess) || !strings.Contains(err.Error(), "docker-save") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown severity", func(t *testing.T) {
		o := offlineOptions(t)
		o.Severities = []string{"HIGH", "SEVERE"}
		_, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, o)
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), `"SEVERE"`) || !strings.Contains(err.Error(), "CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		o := offlineOptions(t)
		o.Timeout = 300 * time.Millisecond
		_, err := Scan(context.Background(), []Target{RemoteTarget(slow)}, o)
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timed out after 300ms") || !strings.Contains(err.Error(), "raise timeout") {
			t.Fatalf("err = %v", err)
		}
	})
}
