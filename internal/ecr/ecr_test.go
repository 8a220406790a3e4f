package ecr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/test/fakeecr"
)

// TestMain isolates the tests from the machine's AWS configuration: no
// profile, no endpoint override, no instance metadata lookups.
func TestMain(m *testing.M) {
	fakeecr.IsolateAWS()
	os.Exit(m.Run())
}

const testRepo = "team/app"

func newClient(t *testing.T, srv *fakeecr.Server, mod ...func(*ecr.Options)) *ecr.Client {
	t.Helper()
	opts := ecr.Options{
		Region:      "us-east-1",
		Endpoint:    srv.URL(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret-key", ""),
		MaxBackoff:  2 * time.Millisecond,
	}
	for _, f := range mod {
		f(&opts)
	}
	c, err := ecr.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func startWithRepo(t *testing.T) *fakeecr.Server {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: testRepo})
	return srv
}

func digestN(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }

func manifestN(i int) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, digestN(i), i)
}

func wantError(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %q, got nil", msg)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	if err.Error() != msg {
		t.Errorf("error message\n got: %s\nwant: %s", err, msg)
	}
}

func TestAuthorizationToken(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.SetPassword("p4ss:with:colons")
	c := newClient(t, srv)

	user, pass, exp, err := c.AuthorizationToken(context.Background(), "210987654321")
	if err != nil {
		t.Fatal(err)
	}
	if user != "AWS" || pass != "p4ss:with:colons" {
		t.Errorf("got %q/%q, want AWS/p4ss:with:colons", user, pass)
	}
	if until := time.Until(exp); until < 11*time.Hour || until > 13*time.Hour {
		t.Errorf("token expires in %s, want about 12h", until)
	}
	var req struct{ RegistryIDs []string }
	if err := json.Unmarshal(srv.Requests(fakeecr.OpGetAuthorizationToken)[0], &req); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(req.RegistryIDs, []string{"210987654321"}) {
		t.Errorf("registryIds sent = %v", req.RegistryIDs)
	}
}

func TestAuthorizationTokenMalformed(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.SetPassword("")
	_, _, _, err := newClient(t, srv).AuthorizationToken(context.Background(), "")
	wantError(t, err, nil, "ECR GetAuthorizationToken returned a token that is not of the form user:password")
}

func TestRepositorySettings(t *testing.T) {
	srv := fakeecr.Start(t)
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	srv.AddRepository(fakeecr.Repository{
		Name: "immutable", TagMutability: "IMMUTABLE_WITH_EXCLUSION", MutabilityExclusions: []string{"latest", "dev-*"},
		ScanOnPush: true, EncryptionType: "KMS", KMSKey: "arn:aws:kms:us-east-1:123456789012:key/k1", CreatedAt: created,
	})
	repo, err := newClient(t, srv).Repository(context.Background(), "immutable")
	if err != nil {
		t.Fatal(err)
	}
	want := ecr.Repository{
		Name: "immutable", URI: "123456789012.dkr.ecr.us-east-1.amazonaws.com/immutable",
		ARN: "arn:aws:ecr:us-east-1:123456789012:repository/immutable", RegistryID: "123456789012", CreatedAt: created,
		TagMutability: ecr.ImmutableWithExclusion, MutabilityExclusions: []string{"latest", "dev-*"},
		ScanOnPush: true, EncryptionType: "KMS", KMSKey: "arn:aws:kms:us-east-1:123456789012:key/k1",
	}
	if fmt.Sprint(repo) != fmt.Sprint(want) || !repo.CreatedAt.Equal(created) {
		t.Errorf("got  %+v\nwant %+v", repo, want)
	}
	for tag, immutable := range map[string]bool{"v1.2.3": true, "latest": false, "dev-42": false, "xdev-42": true} {
		if got := repo.TagImmutable(tag); got != immutable {
			t.Errorf("TagImmutable(%q) = %v, want %v", tag, got, immutable)
		}
	}
}

func TestTagImmutable(t *testing.T) {
	cases := []struct {
		mutability string
		exclusions []string
		tag        string
		want       bool
	}{
		{ecr.Mutable, nil, "v1", false},
		{ecr.Immutable, nil, "latest", true},
		{ecr.MutableWithExclusion, []string{"release-*"}, "release-1", true},
		{ecr.MutableWithExclusion, []string{"release-*"}, "main", false},
		{ecr.ImmutableWithExclusion, []string{"*-snapshot"}, "1.0-snapshot", false},
		{ecr.ImmutableWithExclusion, []string{"a*b*c"}, "axxbyyc", false},
		{ecr.ImmutableWithExclusion, []string{"a*b*c"}, "axxbyycd", true},
	}
	for _, tc := range cases {
		r := ecr.Repository{TagMutability: tc.mutability, MutabilityExclusions: tc.exclusions}
		if got := r.TagImmutable(tc.tag); got != tc.want {
			t.Errorf("%s %v TagImmutable(%q) = %v, want %v", tc.mutability, tc.exclusions, tc.tag, got, tc.want)
		}
	}
}

func TestRepositoryNotFound(t *testing.T) {
	srv := fakeecr.Start(t)
	_, err := newClient(t, srv).Repository(context.Background(), "missing")
	wantError(t, err, ecr.ErrRepositoryNotFound, `ECR repository "missing" does not exist in us-east-1: create it, or set ecr-create-repository: true`)
	var e *ecr.Error
	if !errors.As(err, &e) || e.Repository != "missing" || e.Op != "DescribeRepositories" || e.Code != "RepositoryNotFoundException" {
		t.Errorf("error details = %+v", e)
	}

	// Other operations do not suggest creating the repository.
	c := newClient(t, srv, func(o *ecr.Options) { o.RegistryID = "123456789012" })
	_, err = c.ListImages(context.Background(), "missing")
	wantError(t, err, ecr.ErrRepositoryNotFound, `ECR repository "missing" does not exist in registry 123456789012 (us-east-1): check the repository name and the region`)
}

func TestCreateRepositoryIsIdempotent(t *testing.T) {
	srv := fakeecr.Start(t)
	c := newClient(t, srv)
	ctx := context.Background()
	opts := ecr.CreateOptions{TagMutability: "immutable", ScanOnPush: true, KMSKey: "alias/images"}

	repo, created, err := c.CreateRepository(ctx, "org/new", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !created || repo.Name != "org/new" || repo.TagMutability != ecr.Immutable || !repo.ScanOnPush || repo.EncryptionType != "KMS" || repo.KMSKey != "alias/images" {
		t.Errorf("first create: created=%v repo=%+v", created, repo)
	}
	if !repo.TagImmutable("v1") {
		t.Error("created repository should be immutable")
	}
	stored, _ := srv.Repository("org/new")
	if stored.TagMutability != "IMMUTABLE" || !stored.ScanOnPush || stored.KMSKey != "alias/images" {
		t.Errorf("server state = %+v", stored)
	}

	again, created, err := c.CreateRepository(ctx, "org/new", ecr.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second create reported created=true")
	}
	if again.TagMutability != ecr.Immutable || again.URI != repo.URI {
		t.Errorf("second create returned %+v, want the existing repository", again)
	}
	if n := srv.Calls(fakeecr.OpCreateRepository); n != 2 {
		t.Errorf("CreateRepository calls = %d, want 2", n)
	}
	if n := srv.Calls(fakeecr.OpDescribeRepositories); n != 1 {
		t.Errorf("DescribeRepositories calls = %d, want 1", n)
	}
}

func TestCreateRepositoryRejectsUnknownMutability(t *testing.T) {
	srv := fakeecr.Start(t)
	_, _, err := newClient(t, srv).CreateRepository(context.Background(), "x/y", ecr.CreateOptions{TagMutability: "sometimes"})
	wantError(t, err, nil, `create ECR repository "x/y": tag mutability must be MUTABLE or IMMUTABLE, got "sometimes"`)
	if n := srv.Calls(fakeecr.OpCreateRepository); n != 0 {
		t.Errorf("CreateRepository calls = %d, want 0", n)
	}
}

func TestListImagesPaginates(t *testing.T) {
	srv := startWithRepo(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var seeded []fakeecr.Image
	for i := range 2345 {
		img := fakeecr.Image{
			Digest: digestN(i), PushedAt: base.Add(time.Duration(i) * time.Minute), SizeBytes: int64(1000 + i),
			MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactMediaType: "application/vnd.oci.image.config.v1+json",
		}
		if i%3 == 0 {
			img.Tags = []string{fmt.Sprintf("v%d", i), fmt.Sprintf("build-%d", i)}
		}
		if i%5 == 0 {
			img.LastPulledAt = base.Add(time.Duration(i) * time.Hour)
		}
		if i == 7 {
			img.SubjectDigest = digestN(6)
		}
		seeded = append(seeded, img)
	}
	srv.AddImages(testRepo, seeded...)

	images, err := newClient(t, srv).ListImages(context.Background(), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(fakeecr.OpDescribeImages); n != 3 {
		t.Errorf("DescribeImages calls = %d, want 3", n)
	}
	for _, body := range srv.Requests(fakeecr.OpDescribeImages) {
		var req struct{ MaxResults int }
		if err := json.Unmarshal(body, &req); err != nil || req.MaxResults != 1000 {
			t.Errorf("request %s: maxResults = %d, want 1000", body, req.MaxResults)
		}
	}
	if len(images) != len(seeded) {
		t.Fatalf("got %d images, want %d", len(images), len(seeded))
	}
	for i, img := range images {
		s := seeded[i]
		if img.Digest != s.Digest || !slices.Equal(img.Tags, s.Tags) || !img.PushedAt.Equal(s.PushedAt) ||
			!img.LastPulledAt.Equal(s.LastPulledAt) || img.SizeBytes != s.SizeBytes || img.ManifestMediaType != s.MediaType ||
			img.ArtifactMediaType != s.ArtifactMediaType || img.SubjectDigest != s.SubjectDigest || img.Status != ecr.StatusActive {
			t.Fatalf("image %d = %+v, seeded %+v", i, img, s)
		}
	}
}

func TestListImagesByStatus(t *testing.T) {
	srv := startWithRepo(t)
	srv.AddImages(testRepo,
		fakeecr.Image{Digest: digestN(1), Tags: []string{"live"}},
		fakeecr.Image{Digest: digestN(2), Status: "ARCHIVED", LastArchivedAt: time.Now().Add(-time.Hour)},
	)
	c := newClient(t, srv)
	active, err := c.ListImages(context.Background(), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].Digest != digestN(1) {
		t.Errorf("ListImages = %+v, want only the active image", active)
	}
	all, err := c.ListImagesByStatus(context.Background(), testRepo, ecr.StatusAny)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[1].Status != ecr.StatusArchived || all[1].LastArchivedAt.IsZero() {
		t.Errorf("ListImagesByStatus(ANY) = %+v", all)
	}
	_, err = c.ListImagesByStatus(context.Background(), testRepo, "GONE")
	wantError(t, err, nil, `list ECR images of "team/app": unknown image status "GONE" (want ACTIVE, ARCHIVED, ACTIVATING or ANY)`)
}

func TestGetManifestsBatchesConcurrently(t *testing.T) {
	srv := startWithRepo(t)
	var digests []string
	for i := range 250 {
		stored := srv.AddImages(testRepo, fakeecr.Image{Manifest: manifestN(i)})
		digests = append(digests, stored[0].Digest)
	}
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	idx := srv.AddImages(testRepo, fakeecr.Image{Manifest: index})[0]
	digests = append(digests, idx.Digest, digestN(9999), idx.Digest) // one unknown, one duplicate

	manifests, failed, err := newClient(t, srv).GetManifests(context.Background(), testRepo, digests)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(fakeecr.OpBatchGetImage); n != 3 {
		t.Errorf("BatchGetImage calls = %d, want 3 (252 unique ids)", n)
	}
	if len(manifests) != 251 {
		t.Fatalf("got %d manifests, want 251", len(manifests))
	}
	for i := range 250 {
		m := manifests[digests[i]]
		if string(m.Body) != string(manifestN(i)) || m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Digest != digests[i] {
			t.Fatalf("manifest %d = %+v", i, m)
		}
	}
	if m := manifests[idx.Digest]; m.MediaType != "application/vnd.oci.image.index.v1+json" || string(m.Body) != string(index) {
		t.Errorf("index manifest = %+v", m)
	}
	if len(failed) != 1 || failed[0].Digest != digestN(9999) || failed[0].Code != "ImageNotFound" {
		t.Errorf("failed = %+v", failed)
	}
	var req struct{ AcceptedMediaTypes []string }
	if err := json.Unmarshal(srv.Requests(fakeecr.OpBatchGetImage)[0], &req); err != nil {
		t.Fatal(err)
	}
	for _, mt := range []string{"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"} {
		if !slices.Contains(req.AcceptedMediaTypes, mt) {
			t.Errorf("acceptedMediaTypes %v lacks %s", req.AcceptedMediaTypes, mt)
		}
	}
}

func TestDeleteImagesInBatchesOf100(t *testing.T) {
	srv := startWithRepo(t)
	var digests []string
	for i := range 250 {
		srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(i), Tags: []string{fmt.Sprintf("t%d", i)}})
		digests = append(digests, digestN(i))
	}
	res, err := newClient(t, srv).DeleteImages(context.Background(), testRepo, digests)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(fakeecr.OpBatchDeleteImage); n != 3 {
		t.Errorf("BatchDeleteImage calls = %d, want 3", n)
	}
	if !slices.Equal(res.Deleted, digests) || len(res.Failed) != 0 || len(res.NotAttempted) != 0 {
		t.Errorf("result: %d deleted, failed %v, not attempted %v", len(res.Deleted), res.Failed, res.NotAttempted)
	}
	if left := srv.Images(testRepo); len(left) != 0 {
		t.Errorf("%d images left", len(left))
	}
}

func TestDeleteImagesReportsPartialFailures(t *testing.T) {
	srv := startWithRepo(t)
	var digests []string
	for i := range 118 {
		srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(i)})
		digests = append(digests, digestN(i))
	}
	srv.MarkReferenced(testRepo, digestN(5))
	digests = append(digests, digestN(5000), "sha256:not-a-digest")

	res, err := newClient(t, srv).DeleteImages(context.Background(), testRepo, digests)
	if err != nil {
		t.Fatal(err)
	}
	// Two batches, then one retry of the image still referenced by an index.
	if n := srv.Calls(fakeecr.OpBatchDeleteImage); n != 3 {
		t.Errorf("BatchDeleteImage calls = %d, want 3", n)
	}
	if len(res.Deleted) != 117 || slices.Contains(res.Deleted, digestN(5)) {
		t.Errorf("deleted %d images (want 117, not %s)", len(res.Deleted), digestN(5))
	}
	want := []ecr.Failure{
		{Digest: digestN(5000), Code: "ImageNotFound", Reason: "Requested image not found"},
		{Digest: "sha256:not-a-digest", Code: "InvalidImageDigest", Reason: "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"},
		{Digest: digestN(5), Code: "ImageReferencedByManifestList", Reason: "Requested image referenced by manifest list: [marked]"},
	}
	if !slices.Equal(res.Failed, want) {
		t.Errorf("failed\n got: %+v\nwant: %+v", res.Failed, want)
	}
	if left := srv.Images(testRepo); len(left) != 1 || left[0].Digest != digestN(5) {
		t.Errorf("left in repository: %+v", left)
	}
}

func TestDeleteIndexAndChildrenInAnyOrder(t *testing.T) {
	srv := startWithRepo(t)
	c1 := srv.AddImages(testRepo, fakeecr.Image{Manifest: manifestN(1)})[0].Digest
	c2 := srv.AddImages(testRepo, fakeecr.Image{Manifest: manifestN(2)})[0].Digest
	index := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1}]}`, c1, c2)
	idx := srv.AddImages(testRepo, fakeecr.Image{Manifest: index, Tags: []string{"v1"}})[0].Digest

	res, err := newClient(t, srv).DeleteImages(context.Background(), testRepo, []string{c1, c2, idx})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 0 || len(res.Deleted) != 3 {
		t.Errorf("result = %+v", res)
	}
	if n := srv.Calls(fakeecr.OpBatchDeleteImage); n != 2 {
		t.Errorf("BatchDeleteImage calls = %d, want 2", n)
	}
	if left := srv.Images(testRepo); len(left) != 0 {
		t.Errorf("left: %+v", left)
	}
}

func TestDeleteImagesAccessDenied(t *testing.T) {
	srv := startWithRepo(t)
	srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(1)}, fakeecr.Image{Digest: digestN(2)})
	srv.FailNext(fakeecr.OpBatchDeleteImage, -1, fakeecr.AccessDenied(fakeecr.OpBatchDeleteImage))

	res, err := newClient(t, srv).DeleteImages(context.Background(), testRepo, []string{digestN(1), digestN(2)})
	wantError(t, err, ecr.ErrAccessDenied, `ECR denied ecr:BatchDeleteImage for repository "team/app": grant ecr:BatchDeleteImage to arn:aws:sts::123456789012:assumed-role/ci/run (for OIDC, the role assumed by aws-actions/configure-aws-credentials)`)
	if !slices.Equal(res.NotAttempted, []string{digestN(1), digestN(2)}) || len(res.Deleted) != 0 {
		t.Errorf("result = %+v", res)
	}
	if n := srv.Count(fakeecr.OpBatchDeleteImage); n != 1 {
		t.Errorf("BatchDeleteImage calls = %d, want 1 (access denied is not retried)", n)
	}
}

const policy = `{"rules":[{"rulePriority":1,"description":"expire untagged images older than 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`

func TestLifecyclePolicy(t *testing.T) {
	srv := startWithRepo(t)
	c := newClient(t, srv)
	ctx := context.Background()

	if text, found, err := c.LifecyclePolicy(ctx, testRepo); err != nil || found || text != "" {
		t.Fatalf("no policy yet: got %q, %v, %v", text, found, err)
	}
	if err := c.PutLifecyclePolicy(ctx, testRepo, policy); err != nil {
		t.Fatal(err)
	}
	if stored, ok := srv.LifecyclePolicy(testRepo); !ok || stored != policy {
		t.Errorf("server holds %q", stored)
	}
	text, found, err := c.LifecyclePolicy(ctx, testRepo)
	if err != nil || !found || text != policy {
		t.Errorf("got %q, %v, %v", text, found, err)
	}

	err = c.PutLifecyclePolicy(ctx, testRepo, `{"rules":[]}`)
	wantError(t, err, ecr.ErrInvalidParameter, `ECR rejected PutLifecyclePolicy for repository "team/app": Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Member must have length between 100 and 30720'`)

	_, _, err = c.LifecyclePolicy(ctx, "nope")
	wantError(t, err, ecr.ErrRepositoryNotFound, `ECR repository "nope" does not exist in us-east-1: check the repository name and the region`)
}

var fastPreview = ecr.PreviewOptions{PollInterval: time.Millisecond, Timeout: 5 * time.Second}

func previewResults(n int) []fakeecr.PreviewResult {
	var out []fakeecr.PreviewResult
	for i := range n {
		out = append(out, fakeecr.PreviewResult{Digest: digestN(i), Tags: []string{fmt.Sprintf("b%d", i)}, PushedAt: time.Unix(1700000000+int64(i), 0), RulePriority: 1 + i%2})
	}
	return out
}

func TestPreviewPollsUntilComplete(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{
		Statuses: []string{"IN_PROGRESS", "IN_PROGRESS", "COMPLETE"},
		Results:  previewResults(150),
	})
	results, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, policy, fastPreview)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 150 {
		t.Fatalf("got %d results, want 150", len(results))
	}
	r := results[149]
	if r.Digest != digestN(149) || !slices.Equal(r.Tags, []string{"b149"}) || !r.PushedAt.Equal(time.Unix(1700000149, 0)) ||
		r.RulePriority != 2 || r.Action != "EXPIRE" || r.StorageClass != "STANDARD" {
		t.Errorf("result 149 = %+v", r)
	}
	if n := srv.Calls(fakeecr.OpStartLifecyclePolicyPreview); n != 1 {
		t.Errorf("starts = %d, want 1", n)
	}
	// Three polls, then the second page of results.
	if n := srv.Calls(fakeecr.OpGetLifecyclePolicyPreview); n != 4 {
		t.Errorf("GetLifecyclePolicyPreview calls = %d, want 4", n)
	}
	if starts := srv.PreviewStarts(testRepo); len(starts) != 1 || starts[0] != policy {
		t.Errorf("preview started with %q", starts)
	}
}

func TestPreviewRestartsOnceWhenExpired(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{
		Statuses: []string{"IN_PROGRESS", "EXPIRED", "IN_PROGRESS", "COMPLETE"},
		Results:  previewResults(3),
	})
	results, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, policy, fastPreview)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Errorf("got %d results, want 3", len(results))
	}
	if n := srv.Calls(fakeecr.OpStartLifecyclePolicyPreview); n != 2 {
		t.Errorf("starts = %d, want 2", n)
	}
}

func TestPreviewExpiredTwice(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{Statuses: []string{"IN_PROGRESS", "EXPIRED"}})
	_, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, policy, fastPreview)
	wantError(t, err, ecr.ErrPreviewExpired, `ECR lifecycle policy preview for repository "team/app" expired twice before its results could be read: run again`)
	if n := srv.Calls(fakeecr.OpStartLifecyclePolicyPreview); n != 2 {
		t.Errorf("starts = %d, want 2", n)
	}
}

func TestPreviewFailed(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{Statuses: []string{"IN_PROGRESS", "FAILED"}})
	_, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, policy, fastPreview)
	wantError(t, err, ecr.ErrPreviewFailed, `ECR could not compute the lifecycle policy preview for repository "team/app" (status FAILED): check the policy, or rely on the locally computed plan`)
	if n := srv.Calls(fakeecr.OpStartLifecyclePolicyPreview); n != 1 {
		t.Errorf("starts = %d, want 1 (FAILED is not retried)", n)
	}
}

func TestPreviewTimeout(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{Statuses: []string{"IN_PROGRESS"}})
	_, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, policy, ecr.PreviewOptions{PollInterval: time.Millisecond, Timeout: 20 * time.Millisecond})
	wantError(t, err, ecr.ErrTimeout, `ECR lifecycle policy preview for repository "team/app" still IN_PROGRESS after 20ms: retry later or allow a longer wait`)
}

func TestPreviewWaitsForAnotherRunningPreview(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{Statuses: []string{"IN_PROGRESS", "COMPLETE"}, Results: previewResults(1)})
	// Someone else's preview is running: the fake needs one started to answer polls.
	srv.SetLifecyclePolicy(testRepo, policy)
	other := newClient(t, srv)
	if _, err := other.PreviewLifecyclePolicy(context.Background(), testRepo, policy, fastPreview); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(fakeecr.OpStartLifecyclePolicyPreview, 1, fakeecr.Fault{Code: "LifecyclePolicyPreviewInProgressException", Message: "The previous lifecycle policy preview request has not completed."})

	results, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, policy, fastPreview)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Errorf("got %d results", len(results))
	}
	if n := srv.Count(fakeecr.OpStartLifecyclePolicyPreview); n != 3 {
		t.Errorf("starts = %d, want 3 (other, refused, ours)", n)
	}
}

func TestPreviewHonoursContext(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{Statuses: []string{"IN_PROGRESS"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := newClient(t, srv).PreviewLifecyclePolicy(ctx, testRepo, policy, ecr.PreviewOptions{PollInterval: 5 * time.Millisecond, Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestScanFindingsWaitsAndReadsAllPages(t *testing.T) {
	srv := startWithRepo(t)
	img := srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(1), Tags: []string{"v1"}})[0]
	completed := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	scan := fakeecr.Scan{
		Statuses:    []string{"PENDING", "IN_PROGRESS", "COMPLETE"},
		CompletedAt: completed,
	}
	for i := range 1100 {
		scan.Findings = append(scan.Findings, fakeecr.BasicFinding{
			Name: fmt.Sprintf("CVE-2024-%04d", i), Severity: "HIGH", URI: "https://security-tracker.debian.org/tracker/CVE", Description: "line one\nline two",
			Attributes: []fakeecr.Attribute{
				{Key: "package_name", Value: "openssl"}, {Key: "package_version", Value: "3.0.11-1"},
				{Key: "CVSS3_SCORE", Value: "7.5"}, {Key: "CVSS3_VECTOR", Value: "CVSS:3.1/AV:N"},
			},
		})
	}
	scan.Enhanced = []fakeecr.EnhancedFinding{{
		VulnerabilityID: "CVE-2025-0001", Severity: "CRITICAL", Title: "CVE-2025-0001 - glibc", Description: "overflow", Score: 9.8,
		CVSSVector: "CVSS:3.1/AV:N/AC:L", SourceURL: "https://nvd.nist.gov/vuln/detail/CVE-2025-0001", FixAvailable: "YES",
		Packages: []fakeecr.VulnerablePackage{
			{Name: "glibc", Version: "2.28", Release: "10.el9", Epoch: 1, FixedInVersion: "2.28-11.el9", PackageManager: "OS"},
			{Name: "glibc-common", Version: "2.28", Release: "10.el9", FixedInVersion: "NotAvailable", PackageManager: "OS"},
		},
	}}
	srv.ScriptScan(testRepo, img.Digest, scan)

	res, err := newClient(t, srv).ScanFindings(context.Background(), testRepo, img.Digest, ecr.WaitOptions{PollInterval: time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Three polls; the COMPLETE one is page 1 of 2.
	if n := srv.Calls(fakeecr.OpDescribeImageScanFindings); n != 4 {
		t.Errorf("DescribeImageScanFindings calls = %d, want 4", n)
	}
	if res.Status != "COMPLETE" || !res.CompletedAt.Equal(completed) || res.SeverityCounts["HIGH"] != 1100 || res.SeverityCounts["CRITICAL"] != 1 {
		t.Errorf("summary = %s %s %v", res.Status, res.CompletedAt, res.SeverityCounts)
	}
	if len(res.Findings) != 1102 {
		t.Fatalf("got %d findings, want 1102", len(res.Findings))
	}
	basic := res.Findings[0]
	wantBasic := ecr.Finding{ID: "CVE-2024-0000", Severity: "HIGH", Description: "line one line two", URI: "https://security-tracker.debian.org/tracker/CVE",
		PackageName: "openssl", PackageVersion: "3.0.11-1", Score: 7.5, CVSSVector: "CVSS:3.1/AV:N"}
	if fmt.Sprint(basic) != fmt.Sprint(wantBasic) {
		t.Errorf("basic finding\n got: %+v\nwant: %+v", basic, wantBasic)
	}
	enh := res.Findings[1100:]
	if enh[0].ID != "CVE-2025-0001" || enh[0].PackageName != "glibc" || enh[0].PackageVersion != "1:2.28-10.el9" || enh[0].FixedInVersion != "2.28-11.el9" ||
		enh[0].Severity != "CRITICAL" || enh[0].Score != 9.8 || enh[0].CVSSVector != "CVSS:3.1/AV:N/AC:L" || enh[0].URI != "https://nvd.nist.gov/vuln/detail/CVE-2025-0001" ||
		enh[0].Status != "ACTIVE" || !enh[0].Enhanced || enh[0].PackageManager != "OS" || enh[0].Title != "CVE-2025-0001 - glibc" {
		t.Errorf("enhanced finding = %+v", enh[0])
	}
	if enh[1].PackageName != "glibc-common" || enh[1].PackageVersion != "2.28-10.el9" || enh[1].FixedInVersion != "" {
		t.Errorf("second package of the enhanced finding = %+v", enh[1])
	}
}

func TestScanNotFound(t *testing.T) {
	srv := startWithRepo(t)
	srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(1)})
	_, err := newClient(t, srv).ScanFindings(context.Background(), testRepo, digestN(1), ecr.WaitOptions{PollInterval: time.Millisecond})
	wantError(t, err, ecr.ErrScanNotFound, "ECR has no scan of team/app@"+digestN(1)+": enable scan on push for the repository (ecr-scan-on-push: true) or start one with aws ecr start-image-scan")
	if n := srv.Calls(fakeecr.OpDescribeImageScanFindings); n != 1 {
		t.Errorf("calls = %d, want 1 (no grace period asked)", n)
	}
}

func TestScanNotFoundWithinGraceIsWaitedFor(t *testing.T) {
	srv := startWithRepo(t)
	srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(1)})
	srv.ScriptScan(testRepo, digestN(1), fakeecr.Scan{Statuses: []string{"SCAN_NOT_FOUND", "IN_PROGRESS", "COMPLETE"}})
	res, err := newClient(t, srv).ScanFindings(context.Background(), testRepo, digestN(1), ecr.WaitOptions{PollInterval: time.Millisecond, StartGrace: 5 * time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "COMPLETE" || len(res.Findings) != 0 {
		t.Errorf("result = %+v", res)
	}
}

func TestScanFailedStates(t *testing.T) {
	srv := startWithRepo(t)
	srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(1)})
	srv.ScriptScan(testRepo, digestN(1), fakeecr.Scan{Statuses: []string{"IN_PROGRESS", "UNSUPPORTED_IMAGE"}, Description: "The operating system and/or package manager are not supported."})
	_, err := newClient(t, srv).ScanFindings(context.Background(), testRepo, digestN(1), ecr.WaitOptions{PollInterval: time.Millisecond})
	wantError(t, err, ecr.ErrScanFailed, "ECR scan of team/app@"+digestN(1)+" ended with status UNSUPPORTED_IMAGE: The operating system and/or package manager are not supported.")
}

func TestScanTimeout(t *testing.T) {
	srv := startWithRepo(t)
	srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(1)})
	srv.ScriptScan(testRepo, digestN(1), fakeecr.Scan{Statuses: []string{"IN_PROGRESS"}})
	_, err := newClient(t, srv).ScanFindings(context.Background(), testRepo, digestN(1), ecr.WaitOptions{PollInterval: time.Millisecond, Timeout: 15 * time.Millisecond})
	wantError(t, err, ecr.ErrTimeout, "ECR scan of team/app@"+digestN(1)+" did not finish within 15ms (waiting to finish (IN_PROGRESS)): retry later or allow a longer wait")
}

func TestScanImageNotFound(t *testing.T) {
	srv := startWithRepo(t)
	_, err := newClient(t, srv).ScanFindings(context.Background(), testRepo, digestN(1), ecr.WaitOptions{})
	wantError(t, err, ecr.ErrImageNotFound, "ECR image team/app@"+digestN(1)+" not found: check the repository and digest")
}

func TestThrottlingIsRetried(t *testing.T) {
	srv := startWithRepo(t)
	srv.AddImages(testRepo, fakeecr.Image{Digest: digestN(1)})
	srv.FailNext(fakeecr.OpDescribeImages, 3, fakeecr.Throttling())
	srv.FailNext(fakeecr.OpDescribeImages, 1, fakeecr.ServerError())
	images, err := newClient(t, srv).ListImages(context.Background(), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 {
		t.Errorf("got %d images", len(images))
	}
	if n := srv.Count(fakeecr.OpDescribeImages); n != 5 {
		t.Errorf("DescribeImages attempts = %d, want 5", n)
	}
	if n := srv.Calls(fakeecr.OpDescribeImages); n != 1 {
		t.Errorf("DescribeImages calls = %d, want one call retried four times", n)
	}
}

func TestThrottlingBeyondRetries(t *testing.T) {
	srv := startWithRepo(t)
	srv.FailNext(fakeecr.OpDescribeImages, -1, fakeecr.Throttling())
	c := newClient(t, srv, func(o *ecr.Options) { o.MaxAttempts = 3 })
	_, err := c.ListImages(context.Background(), testRepo)
	wantError(t, err, ecr.ErrThrottled, `ECR kept throttling DescribeImages for repository "team/app" after 3 attempts: retry later or lower the concurrency`)
	if n := srv.Count(fakeecr.OpDescribeImages); n != 3 {
		t.Errorf("DescribeImages calls = %d, want 3", n)
	}
}

func TestServerErrorBeyondRetries(t *testing.T) {
	srv := startWithRepo(t)
	srv.FailNext(fakeecr.OpGetLifecyclePolicy, -1, fakeecr.ServerError())
	c := newClient(t, srv, func(o *ecr.Options) { o.MaxAttempts = 2 })
	_, _, err := c.LifecyclePolicy(context.Background(), testRepo)
	wantError(t, err, nil, `ECR GetLifecyclePolicy for repository "team/app" failed with a server error after 2 attempts (ServerException: We encountered an internal error. Please try again.): retry later`)
}

func TestMissingCredentials(t *testing.T) {
	srv := startWithRepo(t)
	c, err := ecr.New(context.Background(), ecr.Options{Region: "us-east-1", Endpoint: srv.URL(), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListImages(context.Background(), testRepo)
	if !errors.Is(err, ecr.ErrCredentials) {
		t.Fatalf("err = %v, want ErrCredentials", err)
	}
	msg := err.Error()
	if msg != "no usable AWS credentials for ECR DescribeImages (none found in the environment, shared config or instance metadata): run aws-actions/configure-aws-credentials before this step (with permissions id-token: write for OIDC), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" {
		t.Errorf("message = %q", msg)
	}
	if n := srv.Calls(fakeecr.OpDescribeImages); n != 0 {
		t.Errorf("%d unsigned requests reached the server", n)
	}
}

func TestRejectedCredentials(t *testing.T) {
	srv := startWithRepo(t)
	srv.RequireAccessKey("AKIDOTHER")
	_, err := newClient(t, srv).Repository(context.Background(), testRepo)
	wantError(t, err, ecr.ErrCredentials, "AWS rejected the credentials for ECR DescribeRepositories (UnrecognizedClientException): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the role of aws-actions/configure-aws-credentials; session credentials may have expired")
}

func TestRequestsAreSignedForTheRegion(t *testing.T) {
	srv := startWithRepo(t)
	srv.SetRegion("eu-west-1")
	_, err := newClient(t, srv).Repository(context.Background(), testRepo)
	if !errors.Is(err, ecr.ErrCredentials) || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Fatalf("err = %v, want a signature scoped to the wrong region to be rejected", err)
	}
	c := newClient(t, srv, func(o *ecr.Options) { o.Region = "eu-west-1" })
	if _, err := c.Repository(context.Background(), testRepo); err != nil {
		t.Fatalf("correctly signed request: %v", err)
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	srv := startWithRepo(t)
	t.Setenv("AWS_ENDPOINT_URL_ECR", srv.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-east-1")
	srv.RequireAccessKey("AKIDENV")
	c, err := ecr.New(context.Background(), ecr.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Region() != "us-east-1" {
		t.Errorf("region = %q", c.Region())
	}
	if _, err := c.Repository(context.Background(), testRepo); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(fakeecr.OpDescribeRepositories); n != 1 {
		t.Errorf("DescribeRepositories calls = %d, want 1", n)
	}
}

func TestNoRegion(t *testing.T) {
	_, err := ecr.New(context.Background(), ecr.Options{})
	wantError(t, err, nil, "no AWS region: set AWS_REGION (aws-actions/configure-aws-credentials sets it from its aws-region input)")
}

func TestRegistryIDIsSentWithEveryCall(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.SetRegistryID("999988887777")
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	other := newClient(t, srv, func(o *ecr.Options) { o.RegistryID = "111122223333" })
	_, err := other.ListImages(context.Background(), "app")
	wantError(t, err, ecr.ErrRepositoryNotFound, `ECR repository "app" does not exist in registry 111122223333 (us-east-1): check the repository name and the region`)

	own := newClient(t, srv, func(o *ecr.Options) { o.RegistryID = "999988887777" })
	repo, err := own.Repository(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if repo.RegistryID != "999988887777" || repo.URI != "999988887777.dkr.ecr.us-east-1.amazonaws.com/app" {
		t.Errorf("repository = %+v", repo)
	}
}
