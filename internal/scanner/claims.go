package scanner

import (
	"context"
	"sync"

	"github.com/aquasecurity/trivy/pkg/cache"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/types"
)

// Platforms of an image are scanned at once, and most images share layers
// between platforms. layerClaims makes sure each layer is still analysed
// only once: the first platform to find it missing from the cache claims
// it; the others skip it and, before their scan reads the cache, wait until
// the claimant has stored it.
type layerClaims struct {
	mu       sync.Mutex
	inflight map[string]chan struct{} // blob key → closed once stored or abandoned
}

func newLayerClaims() *layerClaims {
	return &layerClaims{inflight: map[string]chan struct{}{}}
}

func (l *layerClaims) release(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.inflight[id]; ok {
		close(ch)
		delete(l.inflight, id)
	}
}

// wait blocks until none of ids is being analysed by another platform.
func (l *layerClaims) wait(ctx context.Context, ids []string) error {
	for _, id := range ids {
		l.mu.Lock()
		ch := l.inflight[id]
		l.mu.Unlock()
		if ch == nil {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// claimingCache is the cache one platform's artifact sees: layers claimed
// by another platform are reported present.
type claimingCache struct {
	cache.ArtifactCache
	claims *layerClaims

	mu   sync.Mutex
	mine map[string]bool
}

func (c *claimingCache) MissingBlobs(ctx context.Context, artifactID string, blobIDs []string) (bool, []string, error) {
	// Under the lock, so a layer stored between the lookup and the claim
	// cannot be claimed, and analysed, a second time.
	c.claims.mu.Lock()
	defer c.claims.mu.Unlock()
	missingArtifact, missing, err := c.ArtifactCache.MissingBlobs(ctx, artifactID, blobIDs)
	if err != nil {
		return missingArtifact, missing, err
	}
	var mine []string
	for _, id := range missing {
		if _, taken := c.claims.inflight[id]; taken {
			continue
		}
		c.claims.inflight[id] = make(chan struct{})
		mine = append(mine, id)
	}
	c.mu.Lock()
	if c.mine == nil {
		c.mine = map[string]bool{}
	}
	for _, id := range mine {
		c.mine[id] = true
	}
	c.mu.Unlock()
	return missingArtifact, mine, nil
}

func (c *claimingCache) PutBlob(ctx context.Context, blobID string, info ftypes.BlobInfo) error {
	err := c.ArtifactCache.PutBlob(ctx, blobID, info)
	c.mu.Lock()
	delete(c.mine, blobID)
	c.mu.Unlock()
	c.claims.release(blobID)
	return err
}

// releaseAll gives up the layers this platform claimed but did not store
// (its analysis failed), so no other platform waits for them.
func (c *claimingCache) releaseAll() {
	c.mu.Lock()
	ids := make([]string, 0, len(c.mine))
	for id := range c.mine {
		ids = append(ids, id)
	}
	c.mine = nil
	c.mu.Unlock()
	for _, id := range ids {
		c.claims.release(id)
	}
}

// waitingBackend waits for layers other platforms are still analysing
// before the scan reads them from the cache (locally, or on the server).
// Scans then run one at a time: applying layers modifies what the memory
// cache holds, which platforms share. Analysing layers, the bulk of the
// work, stays concurrent.
type waitingBackend struct {
	scan.Backend
	claims *layerClaims
	one    *sync.Mutex
}

func (w waitingBackend) Scan(ctx context.Context, target, artifactKey string, blobKeys []string, options types.ScanOptions) (types.ScanResponse, error) {
	if err := w.claims.wait(ctx, blobKeys); err != nil {
		return types.ScanResponse{}, err
	}
	if w.one != nil {
		w.one.Lock()
		defer w.one.Unlock()
	}
	return w.Backend.Scan(ctx, target, artifactKey, blobKeys, options)
}
