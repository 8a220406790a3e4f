package inventory_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
)

func TestOCIInventoryFindsChildrenSignaturesAndReferrersThroughTags(t *testing.T) {
	reg, host := startRegistry(t)
	repo := repoAt(t, host, "team/app")
	old := push(t, repo, cleanfixture.Image{Tags: []string{"v1", "stable"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"},
		Attestations: true, Signature: true, Referrer: true, Seed: 1})
	recent := push(t, repo, cleanfixture.Image{Tags: []string{"v2"}, Created: now.AddDate(0, 0, -1), Annotate: true, Seed: 2})
	reg.reset()

	store := &inventory.OCI{Repo: repo, Remote: noRetry(), Concurrency: 4}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	arts := byDigest(inv.Artifacts)
	want := append(old.Digests(), recent.Digests()...)
	if got := sorted(keys(arts)); !slices.Equal(got, sorted(want)) {
		t.Fatalf("inventory holds %d manifests %v, want %d %v", len(got), got, len(want), sorted(want))
	}
	index := arts[old.Digest]
	children := append(roleDigests(old, cleanfixture.RolePlatform), roleDigests(old, cleanfixture.RoleAttestation)...)
	if !slices.Equal(sorted(index.Children), sorted(children)) || len(children) != 4 {
		t.Errorf("index children = %v, want the 2 platforms and 2 attestations %v", index.Children, children)
	}
	if !slices.Equal(index.Tags, []string{"stable", "v1"}) {
		t.Errorf("index tags = %v", index.Tags)
	}
	if !index.PushedAt.Equal(longAgo) {
		t.Errorf("index dated %s, want its images' config created %s", index.PushedAt, longAgo)
	}
	ref := arts[roleDigests(old, cleanfixture.RoleReferrer)[0]]
	if ref.Subject != old.Digest || len(ref.Tags) != 0 {
		t.Errorf("referrer = %+v, want untagged with subject %s", ref, old.Digest)
	}
	sig := arts[roleDigests(old, cleanfixture.RoleSignature)[0]]
	if len(sig.Tags) != 1 || !strings.HasSuffix(sig.Tags[0], ".sig") {
		t.Errorf("signature tags = %v", sig.Tags)
	}
	if fallback := roleDigests(old, cleanfixture.RoleReferrersIndex); len(fallback) != 1 || !slices.Contains(arts[fallback[0]].Children, ref.Digest) {
		t.Errorf("the sha256-<hex> referrers index is missing or does not list the referrer: %v", fallback)
	}
	if got := arts[recent.Digest].PushedAt; !got.Equal(now.AddDate(0, 0, -1)) {
		t.Errorf("annotated image dated %s", got)
	}
	if inv.Clocks[inventory.ClockAnnotation] != 1 || inv.Clocks[inventory.ClockConfig] != 1 {
		t.Errorf("clocks = %v, want one annotation and one config", inv.Clocks)
	}
	if !slices.Contains(inv.Notes, inventory.NoteUntaggedInvisible) {
		t.Errorf("notes = %v, want the note on untagged manifests", inv.Notes)
	}
	for _, a := range inv.Artifacts {
		if a.Size <= 0 {
			t.Errorf("%s has no size", a.Digest)
		}
	}

	// API economy: one HEAD per tag, one GET per manifest, one config per
	// image dated from its config (the index's two platform images), the
	// signature's payload (which proves what it signs) and the single
	// image's config (for its platform).
	tags := 0
	for _, b := range []*cleanfixture.Built{old, recent} {
		for _, m := range b.Manifests {
			tags += len(m.Tags)
		}
	}
	if n := reg.count("HEAD manifests"); n != tags {
		t.Errorf("HEAD manifests = %d, want one per tag (%d)", n, tags)
	}
	if n := reg.count("GET manifests"); n != len(want) {
		t.Errorf("GET manifests = %d, want one per manifest (%d)", n, len(want))
	}
	if n := reg.count("GET blobs"); n != 4 {
		t.Errorf("GET blobs = %d, want the 2 platform configs, the signature payload and the single image's config", n)
	}
	if n := reg.count("GET tags"); n != 1 {
		t.Errorf("GET tags = %d, want 1 page", n)
	}
}

func TestOCIInventoryUsesTheReferrersAPI(t *testing.T) {
	reg, host := startRegistry(t, ggcrregistry.WithReferrersSupport(true))
	repo := repoAt(t, host, "app")
	b := push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Referrer: true, Seed: 3})
	reg.reset()
	inv, err := (&inventory.OCI{Repo: repo, Remote: noRetry()}).Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	arts := byDigest(inv.Artifacts)
	refDigest := roleDigests(b, cleanfixture.RoleReferrer)[0]
	if arts[refDigest].Subject != b.Digest {
		t.Fatalf("referrer not found through the referrers API: %v", keys(arts))
	}
	if reg.count("GET referrers") == 0 {
		t.Error("the referrers API was not asked")
	}
	for _, n := range inv.Notes {
		if strings.Contains(n, "no referrers API") {
			t.Errorf("note %q on a registry with the referrers API", n)
		}
	}
}

func TestOCIInventoryRefusesToGuessAMissingCreationTime(t *testing.T) {
	_, host := startRegistry(t)
	repo := repoAt(t, host, "app")
	push(t, repo, cleanfixture.Image{Tags: []string{"dated"}, Created: longAgo, Seed: 4})
	// An image whose config has no created time and no annotation.
	if err := remote.Write(repo.Tag("undated"), empty.Image); err != nil {
		t.Fatal(err)
	}
	_, err := (&inventory.OCI{Repo: repo, Remote: noRetry()}).Inventory(context.Background())
	if err == nil || !strings.Contains(err.Error(), "(undated)") || !strings.Contains(err.Error(), inventory.AnnotationCreated) || strings.Contains(err.Error(), "dated,") {
		t.Fatalf("err = %v, want the undated image named with the annotation to add", err)
	}
}

func TestOCIUnknownRepository(t *testing.T) {
	_, host := startRegistry(t)
	_, err := (&inventory.OCI{Repo: repoAt(t, host, "nope"), Remote: noRetry()}).Inventory(context.Background())
	if !errors.Is(err, inventory.ErrRepositoryNotFound) || !strings.Contains(err.Error(), "/nope") {
		t.Fatalf("err = %v, want repository not found naming it", err)
	}
}

func TestOCIDeleteRefusedByTheRegistryStopsAtOnce(t *testing.T) {
	reg, host := startRegistry(t)
	repo := repoAt(t, host, "app")
	b := push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 5})
	store := &inventory.OCI{Repo: repo, Remote: noRetry()}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reg.refuse = func(r *http.Request) int {
		if r.Method == http.MethodDelete {
			return http.StatusMethodNotAllowed
		}
		return 0
	}
	del := store.Delete(context.Background(), inv, b.Digests(), nil)
	if !errors.Is(del.Err, inventory.ErrDeleteNotAllowed) || !strings.Contains(del.Err.Error(), "REGISTRY_STORAGE_DELETE_ENABLED") {
		t.Fatalf("err = %v, want a clear refusal", del.Err)
	}
	if len(del.Deleted) != 0 || len(del.Failed) != 1 || len(del.NotAttempted) != len(b.Digests())-1 {
		t.Fatalf("deletion = %+v, want the first refused and the rest not attempted", del)
	}
	if reg.count("DELETE manifests") != 1 {
		t.Errorf("DELETE sent %d times after a 405", reg.count("DELETE manifests"))
	}
}

func TestOCIDeleteKeepsChildrenOfAnIndexThatCouldNotBeDeleted(t *testing.T) {
	reg, host := startRegistry(t)
	repo := repoAt(t, host, "app")
	a := push(t, repo, cleanfixture.Image{Tags: []string{"a"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 6})
	b := push(t, repo, cleanfixture.Image{Tags: []string{"b"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 7})
	store := &inventory.OCI{Repo: repo, Remote: noRetry()}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The registry refuses to delete a's index (a conflict, not a missing
	// permission): its platform manifests and signature must stay, b goes.
	reg.refuse = func(r *http.Request) int {
		if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, a.Digest) {
			return http.StatusConflict
		}
		return 0
	}
	order := append([]string{a.Digest, b.Digest}, a.Digests()[1:]...)
	order = append(order, b.Digests()[1:]...)
	del := store.Delete(context.Background(), inv, order, nil)
	if del.Err != nil {
		t.Fatalf("a refusal of one digest stopped everything: %v", del.Err)
	}
	if !slices.Equal(sorted(del.Deleted), sorted(b.Digests())) {
		t.Errorf("deleted %v, want b's %v", del.Deleted, b.Digests())
	}
	if len(del.Failed) != 1 || del.Failed[0].Digest != a.Digest {
		t.Errorf("failed = %+v", del.Failed)
	}
	var held []string
	for _, n := range del.NotAttempted {
		held = append(held, n.Digest)
		if !strings.Contains(n.Reason, inventory.Short(a.Digest)) {
			t.Errorf("reason %q does not name the index", n.Reason)
		}
	}
	if !slices.Equal(sorted(held), sorted(a.Digests()[1:])) {
		t.Errorf("held back %v, want a's children and signature %v", held, a.Digests()[1:])
	}
}

func TestParentsFromChildrenSubjectsAndCosignTags(t *testing.T) {
	b, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Referrer: true, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	var arts []lifecycle.Artifact
	for _, m := range b.Manifests {
		a := lifecycle.Artifact{Digest: m.Digest, Tags: m.Tags, Subject: m.Subject}
		if m.Role == cleanfixture.RoleSignature {
			a.AttachedTo = b.Digest // as the inventory proves from its payload
		}
		if m.Role == cleanfixture.RoleImage {
			a.Children = append(roleDigests(b, cleanfixture.RolePlatform), "sha256:"+strings.Repeat("0", 64)) // an absent child is ignored
		}
		arts = append(arts, a)
	}
	parents := inventory.Parents(arts)
	for _, m := range b.Manifests[1:] {
		if !slices.Equal(parents[m.Digest], []string{b.Digest}) {
			t.Errorf("%s (%s) parents = %v, want the index", m.Digest, m.Role, parents[m.Digest])
		}
	}
	if len(parents) != len(b.Manifests)-1 {
		t.Errorf("parents of %d digests, want %d", len(parents), len(b.Manifests)-1)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
