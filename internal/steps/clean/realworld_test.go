package clean_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/ghcr"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/clean"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/fakegithub"
)

// Repositories change while they are cleaned. Each test below changes one
// mid-run, the way a concurrent push, a re-tag, a deletion by someone else
// or a stopped run does, and checks that the live image stays whole.

// toLocal sends ghcr.io's registry requests to a test registry.
type toLocal struct {
	host string
	next http.RoundTripper
}

func (t toLocal) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "ghcr.io" {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = "http", t.host, t.host
	}
	return t.next.RoundTrip(r)
}

type ghcrSetup struct {
	gh    *fakegithub.Server
	reg   *methodCounter
	local name.Repository // where the test writes the package's manifests
	opts  clean.Options
}

// startGHCR serves package acme/app: versions from the fake GitHub API,
// manifests from a test registry standing in for ghcr.io.
func startGHCR(t *testing.T) *ghcrSetup {
	reg, host := startRegistry(t)
	gh := fakegithub.Start(t)
	gh.AddOwner("acme", fakegithub.Organization)
	gh.AddPackage("acme", "app", false)
	local, err := name.NewRepository(host+"/acme/app", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := baseOptions(t, "ghcr.io/acme/app")
	opts.Registry = registry.New(registry.Options{UserAgent: "clean-test", Base: toLocal{host: host, next: http.DefaultTransport}})
	opts.GitHub = func() (inventory.GitHubAPI, error) {
		return ghcr.New(ghcr.Options{APIURL: gh.URL(), Token: fakegithub.DefaultToken, RetryBaseDelay: time.Millisecond})
	}
	opts.Mode = clean.ModeEnforce
	opts.UntaggedGrace = clean.DefaultUntaggedGrace
	return &ghcrSetup{gh: gh, reg: reg, local: local, opts: opts}
}

func (g *ghcrSetup) push(t *testing.T, created time.Time, spec cleanfixture.Image) *cleanfixture.Built {
	t.Helper()
	b := push(t, g.local.Name(), spec)
	for _, m := range b.Manifests {
		g.gh.AddVersions("acme", "app", fakegithub.Version{Digest: m.Digest, Tags: m.Tags, CreatedAt: created})
	}
	return b
}

func (g *ghcrSetup) versions() map[string][]string {
	out := map[string][]string{}
	for _, v := range g.gh.Versions("acme", "app") {
		out[v.Digest] = v.Tags
	}
	return out
}

// pushIndexReusing pushes, tagged tag, a new index listing an existing
// platform image: the same digest, so the same GHCR version or ECR image.
func pushIndexReusing(t *testing.T, repo name.Repository, platformDigest, tag string) v1.ImageIndex {
	t.Helper()
	img, err := remote.Image(repo.Digest(platformDigest))
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	if err := remote.WriteIndex(repo.Tag(tag), idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func summaryOf(res *clean.Result) string {
	var md report.Markdown
	res.Summary(&md)
	return md.String()
}

func TestGHCRIndexPushedDuringTheRunKeepsThePlatformItShares(t *testing.T) {
	g := startGHCR(t)
	old := g.push(t, longAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
	g.push(t, now, cleanfixture.Image{Tags: []string{"v2"}, Created: now, Seed: 2})
	amd64 := roleDigests(old, cleanfixture.RolePlatform)[0]
	var v3 string
	// After the plan, before the deletions: an index pushed now lists the
	// amd64 image of v1, which the plan deletes with v1.
	g.gh.Before(fakegithub.GetOrgPackage, 3, func() {
		idx := pushIndexReusing(t, g.local, amd64, "v3")
		d, _ := idx.Digest()
		v3 = d.String()
		g.gh.AddVersions("acme", "app", fakegithub.Version{Digest: v3, Tags: []string{"v3"}, CreatedAt: time.Now()})
	})
	opts := g.opts
	opts.Policy = policyText(expireV1)
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	left := g.versions()
	if _, ok := left[amd64]; !ok {
		t.Fatal("the platform image the new index lists was deleted: v3 is broken")
	}
	if _, ok := left[old.Digest]; ok || len(left) != 3 { // v2, v3 and the shared amd64
		t.Errorf("versions left: %v", left)
	}
	if _, err := remote.Image(g.local.Digest(amd64)); err != nil {
		t.Errorf("v3's platform image cannot be read: %v", err)
	}
	rc := res.Repositories[0].Recheck
	if rc == nil || len(rc.Dropped) != 1 || rc.Dropped[0].Digest != amd64 || !strings.Contains(rc.Dropped[0].Reason, "the new index "+inventory.Short(v3)+" (v3) references it now") || rc.Appeared != 1 {
		t.Fatalf("re-check = %+v", rc)
	}
	if outs := outputs(res); outs["failed"] != "ghcr.io/acme/app@"+amd64 || outs["deleted-count"] != "3" {
		t.Errorf("outputs %v", outs)
	}
	if s := summaryOf(res); !strings.Contains(s, "Re-checked just before deleting:") || !strings.Contains(s, "1 manifest pushed since the listing, left for the next run") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestGHCRVersionTaggedDuringTheRunIsNotDeleted(t *testing.T) {
	g := startGHCR(t)
	orphanImage := g.push(t, longAgo, cleanfixture.Image{Created: longAgo, Seed: 1}) // untagged
	g.push(t, now, cleanfixture.Image{Tags: []string{"v2"}, Created: now, Seed: 2})
	// `buildx imagetools create` or an identical rebuild tags it again.
	g.gh.Before(fakegithub.GetOrgPackage, 3, func() { g.gh.SetTags("acme", "app", orphanImage.Digest, "v1.0.1") })
	opts := g.opts
	opts.Policy = policyText(untagged)
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if tags, ok := g.versions()[orphanImage.Digest]; !ok || !slices.Equal(tags, []string{"v1.0.1"}) {
		t.Fatalf("the re-tagged image was deleted (%v)", g.versions())
	}
	if d := res.Repositories[0].Recheck.Dropped; len(d) != 1 || d[0].Reason != "its tags changed since it was listed (untagged, now v1.0.1)" {
		t.Errorf("dropped = %+v", d)
	}
	if n := g.gh.Count(fakegithub.DeleteOrgVersion); n != 0 {
		t.Errorf("%d DELETEs", n)
	}
}

func TestGHCRPlatformsPushedBeforeTheirIndexAreInGrace(t *testing.T) {
	g := startGHCR(t)
	g.push(t, now, cleanfixture.Image{Tags: []string{"v2"}, Created: now, Seed: 2})
	// A push in progress: two platform images written, the index not yet.
	justNow := time.Now().Add(-time.Minute)
	a := g.push(t, justNow, cleanfixture.Image{Created: longAgo, Seed: 3})
	b := g.push(t, justNow, cleanfixture.Image{Created: longAgo, Platforms: []string{"linux/arm64"}, Seed: 4})
	keepOneUntagged := `{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`
	opts := g.opts
	opts.Now = time.Now()
	opts.Policy = policyText(keepOneUntagged)
	opts.Mode = clean.ModePreview
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Planned != 0 || !strings.Contains(summaryOf(res), "within the untagged grace period of 1h0m0s") {
		t.Fatalf("planned %d:\n%s", res.Totals.Planned, summaryOf(res))
	}
	// Without the grace period, one of them would go.
	opts.UntaggedGrace = 0
	res, err = clean.Run(context.Background(), opts)
	if err != nil || res.Totals.Planned != 1 {
		t.Fatalf("without grace: planned %d, %v", res.Totals.Planned, err)
	}
	_, _ = a, b
}

func TestGHCRIndexThatCannotBeReadStopsTheRunBeforeAnyDeletion(t *testing.T) {
	g := startGHCR(t)
	old := g.push(t, longAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	g.push(t, now, cleanfixture.Image{Tags: []string{"v2"}, Created: now, Seed: 2})
	g.reg.before = func(r *http.Request) int {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+old.Digest) {
			return http.StatusNotFound
		}
		return 0
	}
	opts := g.opts
	opts.Policy = policyText(untagged) // would delete the platforms, judged alone
	res, err := clean.Run(context.Background(), opts)
	if !errors.Is(err, inventory.ErrInconsistent) || failure.Code(err) != 1 || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("err = %v (exit %d)", err, failure.Code(err))
	}
	if n := g.gh.Count(fakegithub.DeleteOrgVersion); n != 0 || len(g.versions()) != len(old.Manifests)+1 {
		t.Errorf("%d DELETEs, %d versions left", n, len(g.versions()))
	}
	if res == nil || res.Repositories[0].Aborted == "" || !strings.Contains(summaryOf(res), "Nothing was deleted here") {
		t.Errorf("the summary does not say why nothing was deleted")
	}
}

func TestGHCRRunStoppedMidwayIsFinishedByTheNextRun(t *testing.T) {
	g := startGHCR(t)
	old := g.push(t, longAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
	recent := g.push(t, now, cleanfixture.Image{Tags: []string{"v2"}, Created: now, Seed: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	// The job is cancelled once the index is deleted.
	g.gh.Before(fakegithub.DeleteOrgVersion, 2, func() { once.Do(cancel) })
	opts := g.opts
	opts.Policy = policyText(expireV1)
	res, err := clean.Run(ctx, opts)
	if !errors.Is(err, context.Canceled) && (err == nil || !strings.Contains(err.Error(), "not attempted")) {
		t.Fatalf("err = %v", err)
	}
	left := g.versions()
	if _, ok := left[old.Digest]; ok {
		t.Fatal("the index was not deleted first")
	}
	if len(left) < 2 {
		t.Fatalf("the stop came too late: %v", left)
	}
	journal := res.Repositories[0].Journal
	if journal[0].Digest != old.Digest || journal[0].State != clean.StateDeleted {
		t.Errorf("journal = %+v", journal)
	}

	// The policy alone leaves the platform images and the signature.
	alone := opts
	alone.OutputDir = t.TempDir()
	alone.Mode = clean.ModePreview
	if res, err := clean.Run(context.Background(), alone); err != nil || res.Totals.Planned != 0 {
		t.Fatalf("without the journal: planned %d, %v", res.Totals.Planned, err)
	}
	// The next run, with the plan file of the stopped one, finishes it.
	res, err = clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	left = g.versions()
	if len(left) != 1 || left[recent.Digest] == nil {
		t.Errorf("versions left after the next run: %v", left)
	}
	if f := res.Repositories[0].Plan.Finished; len(f) == 0 || !strings.Contains(summaryOf(res), "an interrupted run deleted what referenced it and left it behind") {
		t.Errorf("finished = %+v\n%s", f, summaryOf(res))
	}
}

func TestGHCRLastTaggedVersionIsKeptAndSaidSo(t *testing.T) {
	g := startGHCR(t)
	older := g.push(t, longAgo.AddDate(0, 0, -1), cleanfixture.Image{Tags: []string{"v0"}, Created: longAgo, Seed: 1})
	newest := g.push(t, longAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 2})
	opts := g.opts
	opts.Policy = policyText(`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}`)
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	left := g.versions()
	if _, ok := left[older.Digest]; ok || len(left) != len(newest.Manifests) {
		t.Errorf("versions left %v, want v1 and all that goes with it", left)
	}
	if s := summaryOf(res); !strings.Contains(s, inventory.Short(newest.Digest)) || !strings.Contains(s, "GitHub refuses to delete the last tagged version of a package") {
		t.Errorf("summary does not say which image was kept and why:\n%s", s)
	}
}

func TestGHCRWithoutAdminStopsAtTheFirstRefusal(t *testing.T) {
	g := startGHCR(t)
	old := g.push(t, longAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	g.push(t, now, cleanfixture.Image{Tags: []string{"v2"}, Created: now, Seed: 2})
	g.gh.WithoutAdmin("acme", "app")
	opts := g.opts
	opts.Policy = policyText(expireV1)
	_, err := clean.Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "grant the workflow Admin on the package") || !strings.Contains(err.Error(), "2 not attempted") {
		t.Fatalf("err = %v", err)
	}
	if n := g.gh.Count(fakegithub.DeleteOrgVersion); n != 1 || len(g.versions()) != len(old.Manifests)+1 {
		t.Errorf("%d DELETEs sent, %d versions left", n, len(g.versions()))
	}
}

func TestECRTagPushedOntoAPlannedImageKeepsIt(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "team/app"})
	stale, _ := cleanfixture.Build(cleanfixture.Image{Seed: 5}) // untagged
	seedECR(t, srv, "team/app", stale)
	// BatchDeleteImage by digest would take the tag with it.
	srv.Before(fakeecr.OpDescribeImages, 2, func() { srv.SetTags("team/app", stale.Digest, "hotfix") })
	opts := withECR(baseOptions(t, ecrHost+"/team/app"), srv)
	opts.Policy = policyText(untagged)
	opts.Mode = clean.ModeEnforce
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if imgs := srv.Images("team/app"); len(imgs) != 1 || !slices.Equal(imgs[0].Tags, []string{"hotfix"}) {
		t.Fatalf("images left %+v", imgs)
	}
	if srv.Calls(fakeecr.OpBatchDeleteImage) != 0 || len(res.Repositories[0].Recheck.Dropped) != 1 {
		t.Errorf("re-check %+v", res.Repositories[0].Recheck)
	}
}

func TestECRSignaturePushedDuringTheRunKeepsItsImage(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "team/app"})
	old, _ := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Seed: 1})
	seedECR(t, srv, "team/app", old)
	sig, _ := cleanfixture.Build(cleanfixture.Image{Referrer: true, Seed: 7})
	referrer := sig.Manifests[len(sig.Manifests)-1]
	srv.Before(fakeecr.OpDescribeImages, 2, func() {
		// An attestation of v1 lands: an OCI 1.1 referrer naming it.
		body := strings.Replace(string(referrer.Body), sig.Digest, old.Digest, 1)
		srv.AddImages("team/app", fakeecr.Image{Manifest: []byte(body), SubjectDigest: old.Digest, PushedAt: time.Now()})
	})
	opts := withECR(baseOptions(t, ecrHost+"/team/app"), srv)
	opts.Policy = policyText(expireV1)
	opts.Mode = clean.ModeEnforce
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.Images("team/app")) != 2 || srv.Calls(fakeecr.OpBatchDeleteImage) != 0 {
		t.Fatalf("images left %d, BatchDeleteImage %d", len(srv.Images("team/app")), srv.Calls(fakeecr.OpBatchDeleteImage))
	}
	if d := res.Repositories[0].Recheck.Dropped; len(d) != 1 || !strings.Contains(d[0].Reason, "the new referrer") {
		t.Errorf("dropped = %+v", d)
	}
}

func TestOCITagMovedOntoAPlannedImageKeepsIt(t *testing.T) {
	reg, host := startRegistry(t)
	repo, _ := name.NewRepository(host+"/app", name.Insecure)
	old, _ := multiArch(t, repo.Name())
	// The re-check starts with the tags list: a release tag lands on v1.
	var once sync.Once
	tagsLists := 0
	reg.before = func(r *http.Request) int {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/tags/list") {
			tagsLists++
			if tagsLists == 2 {
				once.Do(func() {
					idx, err := remote.Index(repo.Digest(old.Digest))
					if err == nil {
						err = remote.Tag(repo.Tag("stable"), idx)
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
		}
		return 0
	}
	opts := baseOptions(t, repo.Name())
	opts.Policy = policyText(expireV1)
	opts.Mode = clean.ModeEnforce
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if reg.count(http.MethodDelete) != 0 {
		t.Fatalf("%d DELETEs: the re-tagged image lost parts", reg.count(http.MethodDelete))
	}
	for _, d := range old.Digests() {
		if _, err := remote.Head(repo.Digest(d)); err != nil {
			t.Errorf("%s is gone", d)
		}
	}
	if n := len(res.Repositories[0].Recheck.Dropped); n != len(old.Manifests) {
		t.Errorf("dropped %d, want the index and all that goes with it (%d)", n, len(old.Manifests))
	}
}

func TestListModeNeedsNoPolicyAndWritesTheInventory(t *testing.T) {
	_, host := startRegistry(t)
	repo := host + "/app"
	old, recent := multiArch(t, repo)
	opts := baseOptions(t, repo)
	opts.Mode = clean.ModeList
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	outs := outputs(res)
	if outs["inventory"] == "" || outs["plan"] != "" || outs["deleted-count"] != "" || outs["policy"] != "" {
		t.Errorf("list outputs = %v", outs)
	}
	inv := res.Repositories[0].Inventory
	if len(inv.Images) != 2 || inv.Images[0].Digest != recent.Digest || inv.Images[1].Digest != old.Digest {
		t.Errorf("inventory = %+v", inv.Images)
	}
	s := summaryOf(res)
	for _, want := range []string{"**List** — nothing was deleted", "<details>", "Inventory: 2 images", "linux/amd64, linux/arm64", "1 signature"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

func roleDigests(b *cleanfixture.Built, role string) []string {
	var out []string
	for _, m := range b.Manifests {
		if m.Role == role {
			out = append(out, m.Digest)
		}
	}
	return out
}

func TestECRReclaimedBytesCountAnIndexAsECRReportsIt(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "team/app"})
	b, _ := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
	var largest, sig int64
	for _, m := range b.Manifests {
		switch m.Role {
		case cleanfixture.RolePlatform:
			largest = max(largest, m.Size)
		case cleanfixture.RoleSignature:
			sig = m.Size
		}
	}
	for _, m := range b.Manifests {
		size := m.Size
		if m.Role == cleanfixture.RoleImage {
			size = largest // DescribeImages: an index is the size of its largest image
		}
		srv.AddImages("team/app", fakeecr.Image{Digest: m.Digest, Tags: m.Tags, PushedAt: longAgo, SizeBytes: size, Manifest: m.Body, MediaType: m.MediaType, Blobs: m.Blobs})
	}
	opts := withECR(baseOptions(t, ecrHost+"/team/app"), srv)
	opts.Policy = policyText(expireV1)
	for _, mode := range []string{clean.ModePreview, clean.ModeEnforce} {
		opts.Mode = mode
		opts.AWSPreview.Timeout = time.Millisecond // no preview scripted: the comparison is not this test's
		res, err := clean.Run(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Totals.BytesReclaimed; got != largest+sig {
			t.Errorf("%s: %d bytes reclaimed, want the index as ECR reports it and the signature, %d", mode, got, largest+sig)
		}
	}
}
