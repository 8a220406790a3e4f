package inventory

import (
	"context"
	"errors"
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
	// The config's creation time, read at most once.
	once    sync.Once
	created time.Time
	cerr    error
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
	fm := f.lookup(digest)
	if fm == nil || fm.missing || fm.info.IsIndex || fm.info.ConfigDigest == "" {
		return time.Time{}, nil
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
	})
	return fm.created, fm.cerr
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
