package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/registry-actions/registry/internal/report"
)

// Target is one repository to publish to, with the tags it gets.
type Target struct {
	Repo name.Repository
	Tags []string
}

// PublishOptions configure Publish.
type PublishOptions struct {
	// Graph is what to publish (see Walk); its root is what tags point at.
	Graph *Graph
	// From is the reference of a registry source (nil for local sources):
	// a target on the same registry mounts blobs from it, and with targets
	// on several registries each blob is downloaded once for all of them.
	From    name.Reference
	Targets []Target
	// Concurrency bounds blob uploads in flight per target registry, so a
	// fan-out keeps every registry's link busy at once.
	Concurrency int
	// Logf receives progress lines for large uploads, every ProgressEvery.
	Logf          func(format string, args ...any)
	ProgressEvery time.Duration
}

// TargetStats is what happened at one target.
type TargetStats struct {
	Repository string `json:"repository"`
	// Digest is set once the target holds the whole image.
	Digest        string        `json:"digest"`
	Tags          []string      `json:"tags"`          // full references now pointing at Digest
	TagsUnchanged []string      `json:"tagsUnchanged"` // already pointed at Digest
	BlobsUploaded int           `json:"blobsUploaded"` //
	BytesUploaded int64         `json:"bytesUploaded"` //
	BlobsPresent  int           `json:"blobsPresent"`  // already in the repository
	BytesPresent  int64         `json:"bytesPresent"`  //
	BlobsMounted  int           `json:"blobsMounted"`  // mounted from another repository of the registry
	BytesMounted  int64         `json:"bytesMounted"`  //
	Manifests     int           `json:"manifestsWritten"`
	Duration      time.Duration `json:"duration"`
	// Complete means the target holds the image and every one of its tags.
	Complete bool `json:"complete"`
}

// Publish writes a graph to every target: blobs first (skipping what
// exists, mounting what another repository of the same registry holds),
// then manifests by digest children first, and only when every target
// holds the complete image, the tags. A tag therefore never points at an
// incomplete image anywhere, and a failure before tagging leaves no tag
// moved. The stats returned describe every target, also on failure.
func (c *Client) Publish(ctx context.Context, opts PublishOptions) ([]TargetStats, error) {
	p, err := c.newPublication(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer p.close()
	p.plan(ctx)
	// The manifest checks end with the publication, whatever its outcome.
	hctx, stopChecks := context.WithCancel(ctx)
	p.checkManifests(hctx)
	p.cleanup = append(p.cleanup, func() {
		stopChecks()
		for _, t := range p.targets {
			<-t.presentKnown
		}
	})
	if err := p.transferBlobs(ctx); err != nil {
		return p.snapshot(), fmt.Errorf("%w (no tag was written)", p.cause(ctx, err))
	}
	p.stopProgress()
	if err := p.writeManifests(ctx); err != nil {
		return p.snapshot(), fmt.Errorf("%w (no tag was written)", p.cause(ctx, err))
	}
	err = p.tagAll(ctx)
	return p.snapshot(), err
}

// cause prefers the run's own end (a cancelled job) over whatever error a
// concurrent request met first because of it.
func (p *publication) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ctx.Err() != nil {
		return Explain(ctx.Err(), "push to", p.targets[0].Repo.String(), Write)
	}
	return err
}

// publication is one Publish call's state.
type publication struct {
	opts         PublishOptions
	root         Manifest
	blobs        []Blob
	targets      []*targetState
	pusher       *remote.Pusher
	puller       *remote.Puller
	obs          *observer
	started      time.Time
	stopProgress func()
	cleanup      []func()

	mu sync.Mutex // guards every targetState's stats
}

// targetState is one target's part of a publication.
type targetState struct {
	Target
	stats    TargetStats
	progress *progressCounter
	// complete: the target already holds the root manifest, hence
	// everything it references (registries refuse a manifest whose blobs
	// or children are missing).
	complete bool
	// primary uploads blobs for its registry; the other targets of that
	// registry wait for each blob there and mount it instead of sending
	// it again.
	primary *targetState
	held    map[v1.Hash]chan struct{} // closed once this target holds the blob
	slots   chan struct{}             // upload slots of its registry
	// present holds the manifests below the root the target already has,
	// asked while the blobs transfer; presentKnown is closed once known.
	present      map[v1.Hash]bool
	presentKnown chan struct{}
}

func (c *Client) newPublication(ctx context.Context, opts PublishOptions) (*publication, error) {
	if opts.Graph == nil || len(opts.Graph.Manifests) == 0 {
		return nil, fmt.Errorf("nothing to publish")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 5 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	p := &publication{opts: opts, root: opts.Graph.Root(), started: time.Now(),
		obs: &observer{inner: c.transport, mounted: map[string]bool{}}}
	ropts := c.Remote(ctx, remote.WithTransport(p.obs), remote.WithJobs(opts.Concurrency))
	var err error
	if p.pusher, err = remote.NewPusher(ropts...); err != nil {
		return nil, err
	}
	if p.puller, err = remote.NewPuller(ropts...); err != nil {
		return nil, err
	}
	if p.blobs, err = p.sourceBlobs(); err != nil {
		return nil, err
	}
	primaries := map[string]*targetState{}
	var counters []*progressCounter
	for _, t := range opts.Targets {
		ts := &targetState{Target: t, stats: TargetStats{Repository: t.Repo.String()},
			progress: &progressCounter{name: t.Repo.String()}, held: map[v1.Hash]chan struct{}{},
			present: map[v1.Hash]bool{}, presentKnown: make(chan struct{})}
		for _, b := range p.blobs {
			ts.held[b.Digest] = make(chan struct{})
		}
		reg := t.Repo.RegistryStr()
		if primaries[reg] == nil {
			ts.slots = make(chan struct{}, opts.Concurrency)
			primaries[reg] = ts
		}
		ts.primary, ts.slots = primaries[reg], primaries[reg].slots
		p.targets = append(p.targets, ts)
		counters = append(counters, ts.progress)
	}
	p.stopProgress = startProgress(opts.Logf, opts.ProgressEvery, counters)
	p.cleanup = append(p.cleanup, p.stopProgress)
	return p, nil
}

func (p *publication) close() {
	for _, f := range p.cleanup {
		f()
	}
}

// sourceBlobs are the graph's blobs as they will be read. A registry
// source going to several registries is downloaded once, to a spool file
// every target reads.
func (p *publication) sourceBlobs() ([]Blob, error) {
	blobs := append([]Blob(nil), p.opts.Graph.Blobs...)
	if p.opts.From == nil || len(registriesOf(p.opts.Targets)) < 2 {
		return blobs, nil
	}
	dir, err := os.MkdirTemp("", "registry-spool-")
	if err != nil {
		return nil, err
	}
	p.cleanup = append(p.cleanup, func() { os.RemoveAll(dir) })
	for i, b := range blobs {
		blobs[i].Layer = &spooledLayer{Layer: b.Layer, digest: b.Digest, dir: dir}
	}
	return blobs, nil
}

// plan asks each target, with one HEAD, whether it already holds the root:
// an identical re-push then costs nothing more.
func (p *publication) plan(ctx context.Context) {
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range p.targets {
		g.Go(func() error {
			desc, err := p.puller.Head(gctx, t.Repo.Digest(p.root.Digest.String()))
			t.complete = err == nil && desc.Digest == p.root.Digest
			return nil
		})
	}
	g.Wait()
}

// checkManifests asks each incomplete target, in the background while the
// blobs transfer, which manifests below the root it already holds (one
// round trip, all at once), so that writing them later costs only the
// PUTs of those it lacks.
func (p *publication) checkManifests(ctx context.Context) {
	for _, t := range p.targets {
		if t.complete {
			close(t.presentKnown)
			continue
		}
		go func() {
			defer close(t.presentKnown)
			var mu sync.Mutex
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(p.opts.Concurrency)
			for _, m := range p.opts.Graph.Manifests {
				if m.Digest == p.root.Digest {
					continue
				}
				g.Go(func() error {
					if desc, err := p.puller.Head(gctx, t.Repo.Digest(m.Digest.String())); err == nil && desc.Digest == m.Digest {
						mu.Lock()
						t.present[m.Digest] = true
						mu.Unlock()
					}
					return nil
				})
			}
			g.Wait()
		}()
	}
}

// transferBlobs gets every blob into every target. Blob-major order: the
// registries' first uploads start together.
func (p *publication) transferBlobs(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range p.blobs {
		for _, t := range p.targets {
			g.Go(func() error { return p.transfer(gctx, t, b) })
		}
	}
	return g.Wait()
}

// transfer gets one blob into one target: nothing if the target is
// complete, a mount if a repository of its registry holds the blob, an
// upload otherwise (go-containerregistry skips blobs already present).
func (p *publication) transfer(ctx context.Context, t *targetState, b Blob) error {
	defer close(t.held[b.Digest])
	if t.complete {
		p.count(t, b, countPresent)
		return nil
	}
	layer, err := p.mountable(ctx, t, b)
	if err != nil {
		return err
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.slots }()
	tracked := &trackedLayer{Layer: b.Layer, size: b.Size, progress: t.progress}
	var up v1.Layer = tracked
	if layer != nil {
		up = &remote.MountableLayer{Layer: tracked, Reference: layer}
	}
	if err := p.pusher.Upload(ctx, t.Repo, up); err != nil {
		return Explain(err, "push blob "+b.Digest.String()+" to", t.Repo.String(), Write)
	}
	switch {
	case tracked.opened.Load():
		t.progress.add(b.Size)
		p.count(t, b, countUploaded)
	case p.obs.wasMounted(blobKey(t.Repo, b.Digest)):
		p.count(t, b, countMounted)
	default:
		p.count(t, b, countPresent)
	}
	return nil
}

// mountable names a repository of t's registry to mount b from: the
// source's own repository, or — once it holds the blob — the target that
// uploads for this registry. nil means upload.
func (p *publication) mountable(ctx context.Context, t *targetState, b Blob) (name.Reference, error) {
	from := p.opts.From
	switch {
	case from != nil && from.Context().RegistryStr() == t.Repo.RegistryStr() && from.Context() != t.Repo:
		return from.Context().Digest(b.Digest.String()), nil
	case t.primary != t:
		select {
		case <-t.primary.held[b.Digest]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return t.primary.Repo.Digest(b.Digest.String()), nil
	}
	return nil, nil
}

type blobOutcome int

const (
	countUploaded blobOutcome = iota
	countMounted
	countPresent
)

func (p *publication) count(t *targetState, b Blob, o blobOutcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &t.stats
	switch o {
	case countUploaded:
		s.BlobsUploaded++
		s.BytesUploaded += b.Size
	case countMounted:
		s.BlobsMounted++
		s.BytesMounted += b.Size
	default:
		s.BlobsPresent++
		s.BytesPresent += b.Size
	}
}

// writeManifests puts the manifests by digest at every target that lacks
// them, children before parents, the root last; targets at once.
func (p *publication) writeManifests(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range p.targets {
		g.Go(func() error {
			if !t.complete {
				n, err := p.putManifests(gctx, t)
				p.mu.Lock()
				t.stats.Manifests = n
				p.mu.Unlock()
				if err != nil {
					return Explain(err, "push to", t.Repo.String(), Write)
				}
			}
			p.mu.Lock()
			t.stats.Digest = p.root.Digest.String()
			p.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// putManifests writes the manifests a target lacks, in dependency order:
// every image manifest before the index that follows it in the graph's
// order (children always precede their parents there), images in
// parallel, indexes one at a time. The root is missing (else the target
// is complete); what lies below it was asked by checkManifests.
func (p *publication) putManifests(ctx context.Context, t *targetState) (int, error) {
	select {
	case <-t.presentKnown:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var written atomic.Int64
	put := func(ctx context.Context, m Manifest) error {
		if t.present[m.Digest] {
			return nil
		}
		if err := p.pusher.Put(ctx, t.Repo.Digest(m.Digest.String()), putManifest{m}); err != nil {
			return err
		}
		written.Add(1)
		return nil
	}
	pending := []Manifest{}
	flush := func() error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(p.opts.Concurrency)
		for _, m := range pending {
			g.Go(func() error { return put(gctx, m) })
		}
		pending = pending[:0]
		return g.Wait()
	}
	for _, m := range p.opts.Graph.Manifests {
		if !m.MediaType.IsIndex() {
			pending = append(pending, m)
			continue
		}
		if err := flush(); err != nil {
			return int(written.Load()), err
		}
		if err := put(ctx, m); err != nil {
			return int(written.Load()), err
		}
	}
	err := flush()
	return int(written.Load()), err
}

// tagAll points every target's tags at the root, now that every target
// holds the whole image: every tag at once. A tag that fails stops no other
// (each target completes on its own), and a target is complete once all
// its tags are.
func (p *publication) tagAll(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([][]error, len(p.targets))
	slots := make(chan struct{}, p.opts.Concurrency)
	for i, t := range p.targets {
		errs[i] = make([]error, len(t.Tags))
		for j, tag := range t.Tags {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots <- struct{}{}
				defer func() { <-slots }()
				errs[i][j] = p.tag(ctx, t, tag)
			}()
		}
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for i, t := range p.targets {
		// Tags in the order they were given, whatever order they landed in.
		slices.SortFunc(t.stats.Tags, func(a, b string) int { return t.tagIndex(a) - t.tagIndex(b) })
		slices.SortFunc(t.stats.TagsUnchanged, func(a, b string) int { return t.tagIndex(a) - t.tagIndex(b) })
		err := errors.Join(errs[i]...)
		if err == nil {
			t.stats.Complete = true
			t.stats.Duration = time.Since(p.started)
		} else if first == nil {
			first = firstError(errs[i])
		}
	}
	return first
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// tag points one tag at the root. At a target that held the root before,
// the tag may already point there (one HEAD tells); at one that did not,
// it cannot, and the tag is written straight away.
func (p *publication) tag(ctx context.Context, t *targetState, tag string) error {
	ref := t.Repo.Tag(tag)
	unchanged := false
	if t.complete {
		if desc, err := p.puller.Head(ctx, ref); err == nil && desc.Digest == p.root.Digest {
			unchanged = true
		}
	}
	if !unchanged {
		if err := p.pusher.Put(ctx, ref, putManifest{p.root}); err != nil {
			return Explain(err, "tag", ref.String(), Write)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if unchanged {
		t.stats.TagsUnchanged = append(t.stats.TagsUnchanged, ref.String())
	}
	t.stats.Tags = append(t.stats.Tags, ref.String())
	return nil
}

// tagIndex is the position of a full tag reference among the target's tags.
func (t *targetState) tagIndex(ref string) int {
	for i, tag := range t.Tags {
		if t.Repo.Tag(tag).String() == ref {
			return i
		}
	}
	return len(t.Tags)
}

func (p *publication) snapshot() []TargetStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TargetStats, len(p.targets))
	for i, t := range p.targets {
		out[i] = t.stats
		if out[i].Duration == 0 {
			out[i].Duration = time.Since(p.started)
		}
	}
	return out
}

// putManifest PUTs a manifest's exact bytes with its media type.
type putManifest struct{ m Manifest }

func (p putManifest) RawManifest() ([]byte, error)        { return p.m.Raw, nil }
func (p putManifest) MediaType() (types.MediaType, error) { return p.m.MediaType, nil }

func registriesOf(ts []Target) map[string]bool {
	m := map[string]bool{}
	for _, t := range ts {
		m[t.Repo.RegistryStr()] = true
	}
	return m
}

func blobKey(repo name.Repository, d v1.Hash) string {
	return repo.RegistryStr() + "/" + repo.RepositoryStr() + "@" + d.String()
}

// observer watches go-containerregistry's requests to learn what it could
// not tell us: which blob uploads were satisfied by a cross-repository mount.
type observer struct {
	inner   http.RoundTripper
	mu      sync.Mutex
	mounted map[string]bool
}

func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.inner.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || resp.StatusCode != http.StatusCreated {
		return resp, err
	}
	mount := req.URL.Query().Get("mount")
	if mount == "" {
		return resp, err
	}
	repo := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/v2/"), "/blobs/uploads/")
	o.mu.Lock()
	o.mounted[req.URL.Host+"/"+repo+"@"+mount] = true
	o.mu.Unlock()
	return resp, err
}

func (o *observer) wasMounted(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mounted[key]
}

// trackedLayer records whether the source was read for an upload (as
// opposed to the blob being present or mounted) and feeds progress. The
// reader it hands go-containerregistry is the source's own, which checks
// the blob's digest and size as the upload streams it: a mismatch fails
// the read that completes the blob, so the upload is never committed.
type trackedLayer struct {
	v1.Layer
	size     int64
	opened   atomic.Bool
	progress *progressCounter
}

func (l *trackedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	if !l.opened.Swap(true) {
		l.progress.start(l.size)
	}
	return rc, nil
}

// Descriptor keeps the source's descriptor (annotations, URLs) intact.
func (l *trackedLayer) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(l.Layer) }

// spooledLayer downloads a remote blob once (checked as it streams) to a
// local file that every target then reads: each source blob crosses the
// network once however many registries it goes to.
type spooledLayer struct {
	v1.Layer
	digest v1.Hash
	dir    string
	once   sync.Once
	path   string
	err    error
}

func (s *spooledLayer) Compressed() (io.ReadCloser, error) {
	s.once.Do(func() { s.path, s.err = s.spool() })
	if s.err != nil {
		return nil, s.err
	}
	return os.Open(s.path)
}

func (s *spooledLayer) spool() (string, error) {
	rc, err := s.Layer.Compressed()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	path := filepath.Join(s.dir, s.digest.Hex)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

func (s *spooledLayer) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(s.Layer) }

// progressCounter aggregates upload progress for one target.
type progressCounter struct {
	name  string
	total atomic.Int64
	done  atomic.Int64
}

func (p *progressCounter) start(size int64) { p.total.Add(size) }
func (p *progressCounter) add(n int64)      { p.done.Add(n) }

// startProgress logs, every interval, how far each target's uploads are:
// one line per target with bytes moving, never one per chunk.
func startProgress(logf func(string, ...any), every time.Duration, counters []*progressCounter) func() {
	stop := make(chan struct{})
	var once sync.Once
	go func() {
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		last := make([]int64, len(counters))
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				var lines []string
				for i, c := range counters {
					done, total := c.done.Load(), c.total.Load()
					if done == last[i] || total == 0 {
						continue
					}
					rate := float64(done-last[i]) / every.Seconds()
					last[i] = done
					lines = append(lines, fmt.Sprintf("%s: %s of %s uploaded (%s/s)", c.name, report.HumanBytes(done), report.HumanBytes(total), report.HumanBytes(int64(rate))))
				}
				sort.Strings(lines)
				for _, l := range lines {
					logf("%s", l)
				}
			}
		}
	}()
	return func() { once.Do(func() { close(stop) }) }
}
