package scanner

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aquasecurity/trivy/pkg/cache"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/types"
)

type recordingBackend struct{ called chan []string }

func (b recordingBackend) Scan(_ context.Context, _, _ string, blobKeys []string, _ types.ScanOptions) (types.ScanResponse, error) {
	b.called <- blobKeys
	return types.ScanResponse{}, nil
}

func TestLayerClaimsShareOneAnalysisPerLayer(t *testing.T) {
	ctx := context.Background()
	inner := cache.NewMemoryCache()
	claims := newLayerClaims()
	a := &claimingCache{ArtifactCache: inner, claims: claims}
	b := &claimingCache{ArtifactCache: inner, claims: claims}

	_, missA, err := a.MissingBlobs(ctx, "artifact-a", []string{"shared", "only-a"})
	if err != nil || !slices.Equal(missA, []string{"shared", "only-a"}) {
		t.Fatalf("a: %v %v", missA, err)
	}
	// b sees the shared layer as taken: only its own layer is left to analyse.
	_, missB, err := b.MissingBlobs(ctx, "artifact-b", []string{"shared", "only-b"})
	if err != nil || !slices.Equal(missB, []string{"only-b"}) {
		t.Fatalf("b: %v %v", missB, err)
	}

	// b's scan waits until a has stored the shared layer (b has stored its own).
	if err := b.PutBlob(ctx, "only-b", ftypes.BlobInfo{SchemaVersion: ftypes.BlobJSONSchemaVersion}); err != nil {
		t.Fatal(err)
	}
	backend := recordingBackend{called: make(chan []string, 1)}
	done := make(chan error, 1)
	go func() {
		_, err := waitingBackend{Backend: backend, claims: claims}.Scan(ctx, "b", "artifact-b", []string{"shared", "only-b"}, types.ScanOptions{})
		done <- err
	}()
	select {
	case <-backend.called:
		t.Fatal("b scanned before the shared layer was stored")
	case <-time.After(50 * time.Millisecond):
	}
	if err := a.PutBlob(ctx, "shared", ftypes.BlobInfo{SchemaVersion: ftypes.BlobJSONSchemaVersion}); err != nil {
		t.Fatal(err)
	}
	if keys := <-backend.called; !slices.Equal(keys, []string{"shared", "only-b"}) || <-done != nil {
		t.Fatalf("b scanned %v", keys)
	}

	// A layer stored is found in the cache by later lookups, never claimed again.
	c := &claimingCache{ArtifactCache: inner, claims: claims}
	if _, miss, _ := c.MissingBlobs(ctx, "artifact-c", []string{"shared"}); len(miss) != 0 {
		t.Errorf("stored layer reported missing: %v", miss)
	}

	// A platform that fails releases what it claimed: nobody waits forever.
	a.releaseAll()
	if _, err := (waitingBackend{Backend: recordingBackend{called: make(chan []string, 1)}, claims: claims}).Scan(ctx, "x", "x", []string{"only-a"}, types.ScanOptions{}); err != nil {
		t.Errorf("wait after release: %v", err)
	}
	// And a wait ends with the scan's context.
	_, _, _ = b.MissingBlobs(ctx, "artifact-d", []string{"pending"})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = (waitingBackend{Backend: backend, claims: claims}).Scan(cctx, "d", "d", []string{"pending"}, types.ScanOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait on an abandoned claim: %v", err)
	}
}
