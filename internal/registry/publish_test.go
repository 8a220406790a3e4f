package registry_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/test/harness"
)

var users = map[string]string{"ci": "p4ssw0rd-for-ci"}

// fixture builds a two-platform index with buildx-style attestations.
func fixture(t *testing.T, layerSize int64) v1.ImageIndex {
	t.Helper()
	base := synth.Layer{Files: map[string][]byte{"etc/os-release": []byte("ID=synth\n")}}
	var spec synth.Index
	for i, p := range []string{"linux/amd64", "linux/arm64"} {
		pl, _ := synth.Platform(p)
		spec.Images = append(spec.Images, synth.Image{Platform: pl, Layers: []synth.Layer{
			base,
			{RandomBytes: layerSize, Seed: uint64(100 + i)},
			{RandomBytes: layerSize / 2, Seed: uint64(200 + i)},
		}})
	}
	spec.Attestations = true
	idx, err := synth.NewIndex(spec)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func layoutOf(t *testing.T, idx v1.ImageIndex) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := synth.WriteLayout(dir, idx); err != nil {
		t.Fatal(err)
	}
	return dir
}

func open(ctx context.Context, c *registry.Client, spec string) (*registry.Source, error) {
	return registry.Sources{Client: c}.Open(ctx, spec)
}

// publish walks a source and publishes it, as push does.
func publish(ctx context.Context, t *testing.T, c *registry.Client, src *registry.Source, opts registry.PublishOptions) ([]registry.TargetStats, error) {
	t.Helper()
	g, err := registry.Walk(src.Root)
	if err != nil {
		return nil, err
	}
	opts.Graph, opts.From = g, src.Ref
	return c.Publish(ctx, opts)
}

func clientFor(regs ...*harness.Registry) *registry.Client {
	pool := regs[0].CertPool
	for _, r := range regs[1:] {
		pool.AppendCertsFromPEM(r.CAPEM)
	}
	return registry.New(registry.Options{
		RootCAs:     pool,
		Credentials: registry.Credentials{Username: "ci", Password: users["ci"]},
		Retry:       registry.RetryPolicy{Attempts: 5, BaseDelay: 1, MaxDelay: 2, MaxRetryAfter: 1e9, Budget: 1e11},
	})
}

func repo(t *testing.T, c *registry.Client, s string) name.Repository {
	t.Helper()
	r, err := c.Repository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// assertSame checks that ref holds exactly the bytes of want, children included.
func assertSame(t *testing.T, c *registry.Client, ref name.Reference, want v1.ImageIndex) {
	t.Helper()
	desc, err := remote.Get(ref, c.Remote(context.Background())...)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	raw, _ := want.RawManifest()
	if !bytes.Equal(desc.Manifest, raw) {
		t.Fatalf("%s: index bytes differ from the source", ref)
	}
	im, _ := want.IndexManifest()
	for _, d := range im.Manifests {
		child, err := remote.Get(ref.Context().Digest(d.Digest.String()), c.Remote(context.Background())...)
		if err != nil {
			t.Fatalf("child %s missing at %s: %v", d.Digest, ref, err)
		}
		img, _ := want.Image(d.Digest)
		wraw, _ := img.RawManifest()
		if !bytes.Equal(child.Manifest, wraw) {
			t.Fatalf("child %s bytes differ", d.Digest)
		}
		got, _ := child.Image()
		layers, _ := got.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("blob missing at %s: %v", ref, err)
			}
			rc.Close()
		}
	}
}

func TestPublishLayoutToTwoRegistriesKeepsEveryByte(t *testing.T) {
	a := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	b := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	c := clientFor(a, b)
	idx := fixture(t, 64<<10)
	src, err := open(context.Background(), c, layoutOf(t, idx))
	if err != nil {
		t.Fatal(err)
	}
	if src.Kind != registry.SourceLayout {
		t.Fatalf("kind %s", src.Kind)
	}
	targets := []registry.Target{
		{Repo: repo(t, c, a.Host+"/team/app"), Tags: []string{"v1", "latest"}},
		{Repo: repo(t, c, b.Host+"/app"), Tags: []string{"v1"}},
	}
	stats, err := publish(context.Background(), t, c, src, registry.PublishOptions{Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	for _, s := range stats {
		if s.Digest != want.String() {
			t.Errorf("%s: digest %s, want %s", s.Repository, s.Digest, want)
		}
		if s.BlobsUploaded == 0 || s.BlobsPresent != 0 {
			t.Errorf("%s: cold push stats %+v", s.Repository, s)
		}
	}
	for _, tg := range []string{a.Host + "/team/app:v1", a.Host + "/team/app:latest", b.Host + "/app:v1"} {
		ref, _ := c.Reference(tg)
		assertSame(t, c, ref, idx)
	}

	// An identical push moves no layer bytes and writes nothing.
	a.Counter.Reset()
	b.Counter.Reset()
	stats, err = publish(context.Background(), t, c, src, registry.PublishOptions{Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.BytesUploaded != 0 || s.BlobsMounted != 0 || s.Manifests != 0 || len(s.TagsUnchanged) != len(s.Tags) {
			t.Errorf("re-push of %s did work: %+v", s.Repository, s)
		}
	}
	for _, r := range []*harness.Registry{a, b} {
		if n := r.Counter.Requests("PATCH uploads") + r.Counter.Requests("PUT manifests"); n != 0 {
			t.Errorf("re-push wrote %d uploads or manifests", n)
		}
	}
}

func TestSecondRepositoryOfSameRegistryMountsInsteadOfUploading(t *testing.T) {
	a := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	c := clientFor(a)
	idx := fixture(t, 256<<10)
	src, err := open(context.Background(), c, "oci:"+layoutOf(t, idx))
	if err != nil {
		t.Fatal(err)
	}
	targets := []registry.Target{
		{Repo: repo(t, c, a.Host+"/staging/app"), Tags: []string{"v1"}},
		{Repo: repo(t, c, a.Host+"/prod/app"), Tags: []string{"v1"}},
	}
	stats, err := publish(context.Background(), t, c, src, registry.PublishOptions{Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	if stats[1].BytesUploaded != 0 || stats[1].BlobsMounted != stats[0].BlobsUploaded {
		t.Fatalf("second repository: %+v (first: %+v)", stats[1], stats[0])
	}
	// The registry received the blobs once: about one image's worth of bytes.
	if in := a.Counter.BlobBytesIn(); in > stats[0].BytesUploaded+64<<10 {
		t.Fatalf("registry received %d bytes for %d bytes of blobs", in, stats[0].BytesUploaded)
	}
	ref, _ := c.Reference(a.Host + "/prod/app:v1")
	assertSame(t, c, ref, idx)
}

func TestPublishSurvivesServerErrorsRateLimitsAndDroppedConnections(t *testing.T) {
	a := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	c := clientFor(a)
	idx := fixture(t, 128<<10)
	src, err := open(context.Background(), c, layoutOf(t, idx))
	if err != nil {
		t.Fatal(err)
	}
	heads := &harness.FaultRule{Times: 3, Status: http.StatusInternalServerError, Match: func(r *http.Request) bool {
		return r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/")
	}}
	limited := &harness.FaultRule{Times: 2, Status: http.StatusTooManyRequests, RetryAfter: "0", Match: func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
	}}
	dropped := &harness.FaultRule{Times: 2, Status: 0, Match: func(r *http.Request) bool {
		return r.Method == http.MethodPatch
	}}
	a.Faults.Add(heads)
	a.Faults.Add(limited)
	a.Faults.Add(dropped)
	target := registry.Target{Repo: repo(t, c, a.Host+"/app"), Tags: []string{"v1"}}
	if _, err := publish(context.Background(), t, c, src, registry.PublishOptions{Targets: []registry.Target{target}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*harness.FaultRule{heads, limited, dropped} {
		if a.Faults.Hits(r) != r.Times {
			t.Errorf("fault fired %d of %d times", a.Faults.Hits(r), r.Times)
		}
	}
	ref, _ := c.Reference(a.Host + "/app:v1")
	assertSame(t, c, ref, idx)
}

func TestRegistryThatKeepsFailingLeavesNoTag(t *testing.T) {
	a := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	c := clientFor(a)
	idx := fixture(t, 32<<10)
	src, _ := open(context.Background(), c, layoutOf(t, idx))
	a.Faults.Add(&harness.FaultRule{Times: 1000, Status: http.StatusServiceUnavailable, Match: func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256:")
	}})
	target := registry.Target{Repo: repo(t, c, a.Host+"/app"), Tags: []string{"v1"}}
	_, err := publish(context.Background(), t, c, src, registry.PublishOptions{Targets: []registry.Target{target}})
	if err == nil || !strings.Contains(err.Error(), "no tag was written") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want a one-line failure saying no tag was written, got %v", err)
	}
	ref, _ := c.Reference(a.Host + "/app:v1")
	if _, err := remote.Head(ref, c.Remote(context.Background())...); err == nil {
		t.Fatal("a tag was written although the image is incomplete")
	}
}

func TestCorruptSourceBlobIsCaughtBeforeAnyTag(t *testing.T) {
	a := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	c := clientFor(a)
	idx := fixture(t, 32<<10)
	dir := layoutOf(t, idx)
	// Flip a byte of the largest blob.
	var victim string
	var size int64
	filepath.Walk(filepath.Join(dir, "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Size() > size {
			victim, size = p, info.Size()
		}
		return nil
	})
	data, _ := os.ReadFile(victim)
	data[len(data)/2] ^= 0xff
	os.WriteFile(victim, data, 0o644)

	src, err := open(context.Background(), c, dir)
	if err != nil {
		t.Fatal(err)
	}
	target := registry.Target{Repo: repo(t, c, a.Host+"/app"), Tags: []string{"v1"}}
	_, err = publish(context.Background(), t, c, src, registry.PublishOptions{Targets: []registry.Target{target}})
	if !errors.Is(err, registry.ErrCorruptBlob) && (err == nil || !strings.Contains(err.Error(), "corrupt")) {
		t.Fatalf("want a corrupt-source error, got %v", err)
	}
	ref, _ := c.Reference(a.Host + "/app:v1")
	if _, err := remote.Head(ref, c.Remote(context.Background())...); err == nil {
		t.Fatal("tag written for an image with a corrupt blob")
	}
}

func TestArchiveDockerSaveAndRegistrySources(t *testing.T) {
	a := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	b := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: users})
	c := clientFor(a, b)
	ctx := context.Background()
	idx := fixture(t, 48<<10)
	want, _ := idx.Digest()

	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := synth.WriteOCIArchive(archive, idx); err != nil {
		t.Fatal(err)
	}
	src, err := open(ctx, c, archive)
	if err != nil {
		t.Fatal(err)
	}
	if src.Kind != registry.SourceOCIArchive {
		t.Fatalf("archive detected as %s", src.Kind)
	}
	stats, err := publish(ctx, t, c, src, registry.PublishOptions{Targets: []registry.Target{{Repo: repo(t, c, a.Host+"/from-archive"), Tags: []string{"v1"}}}})
	src.Close()
	if err != nil || stats[0].Digest != want.String() {
		t.Fatalf("archive push: %v %+v", err, stats)
	}

	// Registry to registry: same registry (mounted) and another registry.
	src, err = open(ctx, c, a.Host+"/from-archive:v1")
	if err != nil {
		t.Fatal(err)
	}
	if src.Kind != registry.SourceRegistry {
		t.Fatalf("reference detected as %s", src.Kind)
	}
	stats, err = publish(ctx, t, c, src, registry.PublishOptions{Targets: []registry.Target{
		{Repo: repo(t, c, a.Host+"/promoted"), Tags: []string{"v1"}},
		{Repo: repo(t, c, b.Host+"/mirror"), Tags: []string{"v1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if stats[0].BytesUploaded != 0 || stats[0].BlobsMounted == 0 {
		t.Errorf("promotion within a registry should mount: %+v", stats[0])
	}
	for _, s := range stats {
		if s.Digest != want.String() {
			t.Errorf("%s: digest %s want %s", s.Repository, s.Digest, want)
		}
	}
	ref, _ := c.Reference(b.Host + "/mirror:v1")
	assertSame(t, c, ref, idx)

	// docker save: single platform.
	img, _ := synth.PlatformImage(idx, "linux/arm64")
	tarPath := filepath.Join(t.TempDir(), "saved.tar")
	if err := synth.WriteDockerSave(tarPath, "example.com/app:v1", img); err != nil {
		t.Fatal(err)
	}
	src, err = open(ctx, c, tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if src.Kind != registry.SourceDockerArchive || src.Note == "" {
		t.Fatalf("docker-save detected as %s (note %q)", src.Kind, src.Note)
	}
	if _, err := publish(ctx, t, c, src, registry.PublishOptions{Targets: []registry.Target{{Repo: repo(t, c, a.Host+"/saved"), Tags: []string{"v1"}}}}); err != nil {
		t.Fatal(err)
	}
}

func TestSourceErrors(t *testing.T) {
	c := registry.New(registry.Options{})
	ctx := context.Background()
	dir := t.TempDir()
	notLayout := filepath.Join(dir, "plain")
	os.MkdirAll(notLayout, 0o755)
	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("this is not a tar archive at all, not even close........"), 0o644)
	cases := map[string]string{
		"":                       "no source",
		notLayout:                "not an OCI layout",
		junk:                     "not a tar archive",
		filepath.Join(dir, "no"): "not found",
		"Bad Ref:::":             "not found",
	}
	for spec, want := range cases {
		_, err := open(ctx, c, spec)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) = %v, want one line containing %q", spec, err, want)
		}
	}
}
