package ecr_test

import (
	"context"
	"strings"
	"testing"

	"github.com/registry-actions/registry/test/fakeecr"
)

func TestPreviewOfAnotherPolicyTextIsNotOurs(t *testing.T) {
	srv := startWithRepo(t)
	srv.ScriptPreview(testRepo, fakeecr.Preview{Statuses: []string{"IN_PROGRESS", "COMPLETE"}, Results: previewResults(3)})
	other := strings.Replace(policy, "14 days", "30 days", 1)
	// Another job starts its own preview while ours runs: ECR keeps one
	// preview per repository, and its results are for the other text.
	srv.Before(fakeecr.OpGetLifecyclePolicyPreview, 1, func() {
		if _, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, other, fastPreview); err != nil {
			t.Error(err)
		}
	})
	results, err := newClient(t, srv).PreviewLifecyclePolicy(context.Background(), testRepo, policy, fastPreview)
	if err != nil {
		t.Fatal(err)
	}
	starts := srv.PreviewStarts(testRepo)
	if len(starts) != 3 || starts[0] != policy || starts[1] != other || starts[2] != policy || len(results) != 3 {
		t.Errorf("preview starts %d (want ours, theirs, ours again), results %d", len(starts), len(results))
	}
}

func TestBlobIsReadThroughTheAPIAndChecked(t *testing.T) {
	srv := startWithRepo(t)
	payload := []byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:aa"}}}`)
	d := fakeecr.BlobDigest(payload)
	srv.AddImages(testRepo, fakeecr.Image{Manifest: manifestN(1), Blobs: map[string][]byte{d: payload, "sha256:" + strings.Repeat("0", 64): []byte("tampered")}})
	c := newClient(t, srv)
	got, err := c.Blob(context.Background(), testRepo, d)
	if err != nil || string(got) != string(payload) {
		t.Fatalf("Blob = %q, %v", got, err)
	}
	if _, err := c.Blob(context.Background(), testRepo, "sha256:"+strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "the download has digest") {
		t.Errorf("a blob whose bytes do not match: %v", err)
	}
	if _, err := c.Blob(context.Background(), testRepo, "sha256:"+strings.Repeat("1", 64)); err == nil {
		t.Error("a missing blob was read")
	}
}
