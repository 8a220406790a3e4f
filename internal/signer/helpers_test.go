package signer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/synth"
)

// testRegistry is a registry the tests push fixtures to.
type testRegistry struct {
	name string
	host string
}

// registries returns go-containerregistry's in-memory registry and the
// in-process distribution registry, so every format is checked against
// both referrers implementations.
func registries(t *testing.T) []testRegistry {
	t.Helper()
	mem := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
	t.Cleanup(mem.Close)
	dist, err := localregistry.Start(context.Background(), localregistry.Options{})
	if err != nil {
		t.Fatalf("distribution registry: %v", err)
	}
	t.Cleanup(func() { dist.Close() })
	return []testRegistry{
		{name: "ggcr", host: strings.TrimPrefix(mem.URL, "http://")},
		{name: "distribution", host: dist.Host},
	}
}

// memRegistry starts only the in-memory registry, optionally wrapped.
func memRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(discardLogger()))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// fixture is a pushed two-platform index.
type fixture struct {
	index    name.Digest
	children []name.Digest // in index order: linux/amd64, linux/arm64
}

func pushIndex(t testing.TB, host, repo string, seed uint64) fixture {
	t.Helper()
	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, 1, 512, seed)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Push(context.Background(), tag, idx); err != nil {
		t.Fatalf("push: %v", err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{index: tag.Context().Digest(d.String())}
	for _, m := range im.Manifests {
		f.children = append(f.children, tag.Context().Digest(m.Digest.String()))
	}
	return f
}

// all lists the fixture's digests in signing order: children, then index.
func (f fixture) all() []string {
	var out []string
	for _, c := range f.children {
		out = append(out, c.String())
	}
	return append(out, f.index.String())
}

// subjects gives every platform and the index the same attestations.
func (f fixture) subjects(atts []Attestation) []Subject {
	var out []Subject
	for _, d := range append(append([]name.Digest{}, f.children...), f.index) {
		out = append(out, Subject{Image: d, Attestations: atts})
	}
	return out
}

type keyPair struct {
	private, public []byte
	password        string
	privatePath     string
	publicPath      string
}

func newKeyPair(t testing.TB, password string) keyPair {
	t.Helper()
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kp := keyPair{private: kb.PrivateBytes, public: kb.PublicBytes, password: password,
		privatePath: filepath.Join(dir, "cosign.key"), publicPath: filepath.Join(dir, "cosign.pub")}
	if err := os.WriteFile(kp.privatePath, kp.private, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.publicPath, kp.public, 0o644); err != nil {
		t.Fatal(err)
	}
	return kp
}

func keyOptions(kp keyPair) Options {
	return Options{Key: string(kp.private), KeyPassword: kp.password, Recursive: true}
}

func mustNew(t *testing.T, opts Options) *Signer {
	t.Helper()
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func assertOneLine(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error")
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("error is not one line: %q", err.Error())
	}
}
