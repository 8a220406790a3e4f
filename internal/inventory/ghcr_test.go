package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/ghcr"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/test/fakegithub"
)

func newGitHub(t *testing.T, srv *fakegithub.Server) *ghcr.Client {
	t.Helper()
	// GitHub's secondary limit paces deletions at 180 a minute; these
	// tests delete hundreds and check counts, not pace.
	srv.SetSecondaryLimit(0, 0)
	c, err := ghcr.New(ghcr.Options{APIURL: srv.URL(), Token: fakegithub.DefaultToken, RetryBaseDelay: time.Millisecond, PointsPerWindow: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seedGitHub lists every manifest of the built images as package versions.
func seedGitHub(srv *fakegithub.Server, owner, pkg string, created time.Time, built ...*cleanfixture.Built) {
	for _, b := range built {
		for _, m := range b.Manifests {
			srv.AddVersions(owner, pkg, fakegithub.Version{Digest: m.Digest, Tags: m.Tags, CreatedAt: created})
		}
	}
}

func TestGHCRInventoryListsVersionsAndReadsEachManifestOnce(t *testing.T) {
	reg, host := startRegistry(t)
	repo := repoAt(t, host, "acme/team/app")
	gh := fakegithub.Start(t)
	gh.AddOwner("acme", fakegithub.Organization)
	gh.AddPackage("acme", "team/app", false)
	var built []*cleanfixture.Built
	total := 0
	for i := range 60 {
		b := push(t, repo, cleanfixture.Image{Tags: []string{fmt.Sprintf("v%d", i)}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: i%2 == 0, Seed: uint64(i)})
		built = append(built, b)
		total += len(b.Manifests)
	}
	seedGitHub(gh, "acme", "team/app", longAgo, built...)
	reg.reset()

	store := &inventory.GHCR{API: newGitHub(t, gh), Owner: "acme", Package: "team/app", Repo: repo, Remote: noRetry(), Concurrency: 8}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Artifacts) != total {
		t.Fatalf("%d artifacts, want %d", len(inv.Artifacts), total)
	}
	want := (total + 99) / 100
	if got := gh.Count(fakegithub.ListOrgVersions); got != want {
		t.Errorf("list calls = %d for %d versions, want ⌈%d/100⌉ = %d", got, total, total, want)
	}
	if got := reg.count("GET manifests"); got != total {
		t.Errorf("manifest GETs = %d, want one per version (%d)", got, total)
	}
	arts := byDigest(inv.Artifacts)
	for _, b := range built {
		if len(arts[b.Digest].Children) != 2 {
			t.Fatalf("index %s children = %v", b.Digest, arts[b.Digest].Children)
		}
	}
	if inv.Clocks[inventory.ClockGitHub] != 60 {
		t.Errorf("clocks = %v, want 60 images dated by created_at", inv.Clocks)
	}
}

func TestGHCRDeletionWithoutAdminStopsAtTheFirstRefusal(t *testing.T) {
	_, host := startRegistry(t)
	repo := repoAt(t, host, "acme/app")
	gh := fakegithub.Start(t)
	gh.AddOwner("acme", fakegithub.Organization)
	gh.AddPackage("acme", "app", false)
	a := push(t, repo, cleanfixture.Image{Tags: []string{"a"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	b := push(t, repo, cleanfixture.Image{Tags: []string{"b"}, Created: longAgo, Seed: 2})
	seedGitHub(gh, "acme", "app", longAgo, a, b)
	store := &inventory.GHCR{API: newGitHub(t, gh), Owner: "acme", Package: "app", Repo: repo, Remote: noRetry()}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// GitHub answers 404 "Package not found." to a token without the Admin
	// role: the first one stops the run, not max-deletions of them.
	gh.WithoutAdmin("acme", "app")
	del := store.Delete(context.Background(), inv, a.Digests(), nil)
	if !errors.Is(del.Err, ghcr.ErrNoAdmin) || !strings.Contains(del.Err.Error(), "grant the workflow Admin on the package") {
		t.Fatalf("err = %v, want the admin-on-package hint", del.Err)
	}
	if len(del.Failed) != 1 || len(del.NotAttempted) != 2 || len(del.Deleted) != 0 {
		t.Errorf("deletion = %+v", del)
	}
	if n := gh.Count(fakegithub.DeleteOrgVersion); n != 1 {
		t.Errorf("%d delete calls after a 404, want 1", n)
	}
}

func TestGHCRDeletionWaitsOutRateLimitsAndDeletesByVersionID(t *testing.T) {
	_, host := startRegistry(t)
	repo := repoAt(t, host, "octo/app")
	gh := fakegithub.Start(t)
	gh.SetViewer("octo") // the owner's own token
	gh.AddOwner("octo", fakegithub.User)
	gh.AddPackage("octo", "app", false)
	a := push(t, repo, cleanfixture.Image{Tags: []string{"a"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	keep := push(t, repo, cleanfixture.Image{Tags: []string{"keep"}, Created: longAgo, Seed: 2})
	seedGitHub(gh, "octo", "app", longAgo, a, keep)
	store := &inventory.GHCR{API: newGitHub(t, gh), Owner: "octo", Package: "app", Repo: repo, Remote: noRetry()}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gh.FailNext(fakegithub.DeleteUserVersion, 1, fakegithub.TooManyRequests(0))
	del := store.Delete(context.Background(), inv, a.Digests(), nil)
	if del.Err != nil || len(del.Deleted) != 3 {
		t.Fatalf("deletion = %+v", del)
	}
	left := gh.Versions("octo", "app")
	if len(left) != 1 || left[0].Digest != keep.Digest {
		t.Errorf("versions left = %+v, want only the kept image", left)
	}
	if n := gh.Count(fakegithub.DeleteUserVersion); n != 4 {
		t.Errorf("delete calls = %d, want 3 and one retry after the 429", n)
	}
}

func TestGHCRUnknownPackage(t *testing.T) {
	_, host := startRegistry(t)
	gh := fakegithub.Start(t)
	gh.AddOwner("acme", fakegithub.Organization)
	store := &inventory.GHCR{API: newGitHub(t, gh), Owner: "acme", Package: "nope", Repo: repoAt(t, host, "acme/nope"), Remote: noRetry()}
	_, err := store.Inventory(context.Background())
	if !errors.Is(err, ghcr.ErrNotFound) || !strings.Contains(err.Error(), `"acme/nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSplitGHCR(t *testing.T) {
	owner, pkg, err := inventory.SplitGHCR("acme/team/app")
	if err != nil || owner != "acme" || pkg != "team/app" {
		t.Fatalf("got %q %q %v", owner, pkg, err)
	}
	if _, _, err := inventory.SplitGHCR("acme"); err == nil || !strings.Contains(err.Error(), "ghcr.io/<owner>/<package>") {
		t.Fatalf("err = %v", err)
	}
}
