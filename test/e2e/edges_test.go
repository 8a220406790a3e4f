package e2e

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/test/harness"
)

// Helpers shared by the tests that try the program at its edges: hostile
// image content, bad inputs, secrets and the outputs table.

// hostileLine is text from outside the workflow file (an annotation, a
// server's error body) that would act on the job if printed raw: it starts
// workflow commands on new lines, in both syntaxes.
const hostileLine = "release notes\n::error title=pwned::owned\n::add-mask::hunter2\n##[warning]pwned\n<img src=x onerror=alert(1)>|cell|break"

// hostileVariant is a platform variant that carries commands but no control
// character (a source's platform fields may not hold one): "##[" starts a
// command anywhere in a line, so printed raw it acts on the job.
const hostileVariant = "v8::error title=pwned::owned##[warning]pwned"

// hostileIndex is the sample two-platform image (Alpine and Debian, with
// known vulnerable packages) whose arm64 variant, index and manifest
// annotations carry workflow commands.
func hostileIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	alpine, err := vulndb.AlpineImage()
	if err != nil {
		t.Fatal(err)
	}
	debian, err := vulndb.DebianImage()
	if err != nil {
		t.Fatal(err)
	}
	// Trivy logs the OS version it detects (a later Debian release file
	// wins): its own log lines carry the image's text too.
	release, err := synth.NewLayer(synth.Layer{Files: map[string][]byte{"etc/debian_version": []byte("12.11##[warning]pwned-by-trivy-log\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if debian, err = mutate.AppendLayers(debian, release); err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{"org.opencontainers.image.description": hostileLine, "org.opencontainers.image.title": "::add-mask::hunter2"}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: alpine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}, Annotations: ann}},
		mutate.IndexAddendum{Add: debian, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: hostileVariant}, Annotations: ann}},
	)
	return mutate.Annotations(idx, ann).(v1.ImageIndex)
}

var resumeToken = regexp.MustCompile(`^::[0-9a-f]{32}::$`)

// injectedCommands returns the lines of a run's stdout and stderr that a
// runner would obey as workflow commands this program did not mean to send:
// any "::name::" line other than the program's own annotations, groups and
// masks of known secrets, any line holding the old "##[" syntax, and any
// mask or command carrying the hostile texts' markers.
func injectedCommands(res harness.Result, secrets ...string) []string {
	var bad []string
	for _, line := range strings.Split(res.Stdout+"\n"+res.Stderr, "\n") {
		trimmed := strings.TrimLeft(line, " \t")
		if strings.Contains(line, "##[") {
			// The older syntax is obeyed anywhere in a line.
			bad = append(bad, line)
			continue
		}
		if !strings.HasPrefix(trimmed, "::") {
			continue
		}
		switch {
		case strings.HasPrefix(trimmed, "::add-mask::"):
			if v := strings.TrimPrefix(trimmed, "::add-mask::"); !slices.Contains(secrets, v) || strings.Contains(v, "hunter2") {
				bad = append(bad, line)
			}
		case strings.HasPrefix(trimmed, "::error::"), strings.HasPrefix(trimmed, "::warning::"),
			strings.HasPrefix(trimmed, "::group::"), trimmed == "::endgroup::",
			strings.HasPrefix(trimmed, "::stop-commands::"), resumeToken.MatchString(trimmed):
			// The program's own commands: data inside them is escaped
			// (%0A for a line break) and cannot start another.
			if strings.Contains(trimmed, "\r") {
				bad = append(bad, line)
			}
		default:
			bad = append(bad, line)
		}
	}
	return bad
}

// errorLines returns the ::error:: annotations of a run (action mode), or
// the CLI's "error:" lines on stderr.
func errorLines(res harness.Result) []string {
	var out []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		if msg, ok := strings.CutPrefix(line, "::error::"); ok {
			out = append(out, msg)
		}
	}
	for _, line := range strings.Split(res.Stderr, "\n") {
		if msg, ok := strings.CutPrefix(line, "error: "); ok {
			out = append(out, msg)
		} else if msg, ok := strings.CutPrefix(line, "registry: "); ok {
			out = append(out, msg)
		}
	}
	return out
}

// registrySnapshot is what a registry holds: every repository's tags and
// the manifest digest each points at.
type registrySnapshot map[string]map[string]string

func snapshotRegistry(t *testing.T, host string) registrySnapshot {
	t.Helper()
	reg, err := name.NewRegistry(host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var repos []string
	for last := ""; ; {
		// distribution serves at most 100 names a page.
		page, err := remote.CatalogPage(reg, last, 100, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("catalog: %v", err)
		}
		repos = append(repos, page...)
		if len(page) < 100 {
			break
		}
		last = page[len(page)-1]
	}
	snap := registrySnapshot{}
	for _, r := range repos {
		repo := reg.Repo(r)
		tags, err := remote.List(repo, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("list %s: %v", repo, err)
		}
		snap[r] = map[string]string{}
		for _, tag := range tags {
			desc, err := remote.Head(repo.Tag(tag), remote.WithContext(ctx))
			if err != nil {
				t.Fatalf("head %s:%s: %v", repo, tag, err)
			}
			snap[r][tag] = desc.Digest.String()
		}
	}
	return snap
}

// equal compares the tags of two snapshots; a repository holding no tag
// (blobs uploaded before a push was refused) counts as absent.
func (s registrySnapshot) equal(o registrySnapshot) bool {
	tagged := func(r registrySnapshot) registrySnapshot {
		out := registrySnapshot{}
		for repo, tags := range r {
			if len(tags) > 0 {
				out[repo] = tags
			}
		}
		return out
	}
	return maps.EqualFunc(tagged(s), tagged(o), func(a, b map[string]string) bool { return maps.Equal(a, b) })
}

// copyTree copies a workspace fixture so every run gets its own.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// edgeKeyPassword protects the key pair edgeWorkspace writes.
const edgeKeyPassword = "edge-key-password-7f3a"

// edgeWorkspace writes what a chain needs into dir: the sample image as an
// OCI layout (./image), the fixture vulnerability DB in the default
// cache-dir, and an encrypted cosign key pair (cosign.key, cosign.pub).
func edgeWorkspace(t *testing.T, dir string) (privatePEM string) {
	t.Helper()
	idx, err := vulndb.Index()
	if err != nil {
		t.Fatal(err)
	}
	writeLayout(t, filepath.Join(dir, "image"), idx)
	if err := vulndb.SeedCache(filepath.Join(dir, ".cache", "trivy"), vulndb.MetadataAt(time.Now().Add(-3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(edgeKeyPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cosign.key"), kb.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cosign.pub"), kb.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return string(kb.PrivateBytes)
}

// leftovers lists what a run left in its temp directory.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}
