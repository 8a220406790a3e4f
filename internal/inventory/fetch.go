package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/registry-actions/registry/internal/registry"
)

// DefaultConcurrency bounds registry reads in flight.
const DefaultConcurrency = 8

// manifestFetcher reads manifests by digest through the distribution API,
// each digest once, several at a time, with one Puller so that the registry
// token is fetched once.
type manifestFetcher struct {
	repo        name.Repository
	puller      *remote.Puller
	concurrency int

	mu      sync.Mutex
	fetched map[string]*fetchedManifest
}

type fetchedManifest struct {
	info manifestInfo
	desc *remote.Descriptor
	// missing: the registry answered 404 (listed, but the manifest is
	// gone), or the manifest could not be parsed; problem says which.
	missing bool
	problem string
	// The config's creation time and platform, read at most once.
	once     sync.Once
	created  time.Time
	platform string
	cerr     error
}

func newManifestFetcher(repo name.Repository, opts []remote.Option, concurrency int) (*manifestFetcher, error) {
	// Referrers are listed only through the referrers API: the fallback
	// sha256-<hex> tags are in the tags list already.
	puller, err := remote.NewPuller(append(slices.Clone(opts), remote.WithReferrersTagFallback(false))...)
	if err != nil {
		return nil, err
	}
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	return &manifestFetcher{repo: repo, puller: puller, concurrency: concurrency, fetched: map[string]*fetchedManifest{}}, nil
}

// fetch reads every digest not read yet and returns those it read now.
func (f *manifestFetcher) fetch(ctx context.Context, digests []string) ([]string, error) {
	var todo []string
	f.mu.Lock()
	for _, d := range digests {
		if _, ok := f.fetched[d]; !ok {
			f.fetched[d] = nil // claimed
			todo = append(todo, d)
		}
	}
	f.mu.Unlock()
	// Not errgroup's context: a Descriptor keeps the context it was read
	// with for later reads (the config blob), and errgroup's ends with Wait.
	var g errgroup.Group
	g.SetLimit(f.concurrency)
	for _, d := range todo {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			fm, err := f.get(ctx, d)
			if err != nil {
				return err
			}
			f.mu.Lock()
			f.fetched[d] = fm
			f.mu.Unlock()
			return nil
		})
	}
	return todo, g.Wait()
}

func (f *manifestFetcher) get(ctx context.Context, digest string) (*fetchedManifest, error) {
	ref := f.repo.Digest(digest)
	desc, err := f.puller.Get(ctx, ref)
	if isNotFound(err) {
		return &fetchedManifest{missing: true, problem: "the registry has no manifest " + digest}, nil
	}
	if err != nil {
		return nil, registry.Explain(err, "read manifest", ref.String(), registry.Read)
	}
	info, err := parseManifest(desc.Manifest, string(desc.MediaType))
	if err != nil {
		return &fetchedManifest{missing: true, problem: "manifest " + digest + ": " + err.Error()}, nil
	}
	return &fetchedManifest{info: info, desc: desc}, nil
}

func (f *manifestFetcher) lookup(digest string) *fetchedManifest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetched[digest]
}

// configCreated reads an image's config blob, once, for its created time;
// zero for an index or an artifact without an image config.
func (f *manifestFetcher) configCreated(ctx context.Context, digest string) (time.Time, error) {
	created, _, err := f.config(ctx, digest)
	return created, err
}

// config reads an image's config blob, once, for its created time and its
// platform (os/architecture[/variant]).
func (f *manifestFetcher) config(ctx context.Context, digest string) (time.Time, string, error) {
	fm := f.lookup(digest)
	if fm == nil || fm.missing || fm.info.IsIndex || fm.info.ConfigDigest == "" {
		return time.Time{}, "", nil
	}
	fm.once.Do(func() {
		img, err := fm.desc.Image()
		if err != nil {
			return // an artifact, not an image: no creation time
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			fm.cerr = registry.Explain(err, "read the config of", f.repo.Digest(digest).String(), registry.Read)
			return
		}
		fm.created = cfg.Created.Time
		if cfg.OS != "" {
			fm.platform = cfg.OS + "/" + cfg.Architecture
			if cfg.Variant != "" {
				fm.platform += "/" + cfg.Variant
			}
		}
	})
	return fm.created, fm.platform, fm.cerr
}

// retryMissing forgets the manifests that could not be read, so that the
// next fetch asks again (a listing made afresh must not reuse a 404).
func (f *manifestFetcher) retryMissing() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for d, fm := range f.fetched {
		if fm == nil || fm.missing {
			delete(f.fetched, d)
		}
	}
}

// info is the manifest of a digest read so far.
func (f *manifestFetcher) info(digest string) (manifestInfo, bool) {
	fm := f.lookup(digest)
	if fm == nil || fm.missing {
		return manifestInfo{}, false
	}
	return fm.info, true
}

// blob reads a small blob of the repository, checking its digest.
func (f *manifestFetcher) blob(ctx context.Context, digest string) ([]byte, error) {
	layer, err := f.puller.Layer(ctx, f.repo.Digest(digest))
	if err == nil {
		var rc io.ReadCloser
		if rc, err = layer.Compressed(); err == nil {
			defer rc.Close()
			data, rerr := io.ReadAll(io.LimitReader(rc, maxProofBlob+1))
			switch {
			case rerr != nil:
				err = rerr
			case len(data) > maxProofBlob:
				return nil, fmt.Errorf("blob %s of %s is larger than %d bytes", digest, f.repo.Name(), maxProofBlob)
			default:
				// The verifying reader checks the digest at EOF.
				return data, nil
			}
		}
	}
	if isNotFound(err) {
		return nil, errBlobMissing
	}
	return nil, registry.Explain(err, "read blob "+Short(digest)+" of", f.repo.Name(), registry.Read)
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

func statusOf(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

// platforms reads the config of each top-level image that is not an index
// (one small blob each, read once) for its platform, shown in the inventory
// report.
func platforms(ctx context.Context, f *manifestFetcher, inv *Inventory) error {
	top := topLevel(inv.Artifacts)
	var g errgroup.Group
	g.SetLimit(f.concurrency)
	var mu sync.Mutex
	for i := range inv.Artifacts {
		a := &inv.Artifacts[i]
		d := inv.detail(a.Digest)
		if !top[a.Digest] || len(d.Platforms) > 0 || d.Kind != KindImage {
			continue
		}
		g.Go(func() error {
			_, platform, err := f.config(ctx, a.Digest)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				// The platform is for the report only: say so and go on.
				inv.Warnings = append(inv.Warnings, fmt.Sprintf("the config of %s cannot be read for its platform: %s", Short(a.Digest), err))
			case platform != "":
				d.Platforms = []string{platform}
			}
			return nil
		})
	}
	return g.Wait()
}
