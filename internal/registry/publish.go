package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	Source  *Source
	Root    Artifact // Source.Root or a subset of it
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
	Repository    string        `json:"repository"`
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
}

// Graph is the content of an image or index: every manifest (children
// before parents) and every blob, deduplicated.
type Graph struct {
	Manifests []Manifest
	Blobs     []Blob
	// Platforms of the image manifests, in index order (attestation
	// manifests excluded).
	Platforms []string
	// ConfigDigest is the config of the first platform image (build-push-
	// action's imageid).
	ConfigDigest string
	// Size is manifests plus unique blobs, in bytes.
	Size int64
}

// Manifest is one manifest with its exact bytes.
type Manifest struct {
	Digest    v1.Hash
	MediaType types.MediaType
	Raw       []byte
}

// putManifest PUTs a manifest's exact bytes with its media type.
type putManifest struct{ m Manifest }

func (p putManifest) RawManifest() ([]byte, error)        { return p.m.Raw, nil }
func (p putManifest) MediaType() (types.MediaType, error) { return p.m.MediaType, nil }

// Blob is one config or layer blob.
type Blob struct {
	Digest    v1.Hash
	Size      int64
	MediaType types.MediaType
	Layer     v1.Layer
}

// Walk collects an artifact's manifests and blobs, checking that each child
// manifest's bytes match the digest its parent records.
func Walk(root Artifact) (*Graph, error) {
	g := &Graph{}
	seenBlob := map[v1.Hash]bool{}
	seenManifest := map[v1.Hash]bool{}
	var walk func(a Artifact, expect *v1.Descriptor) error
	walk = func(a Artifact, expect *v1.Descriptor) error {
		raw, err := a.RawManifest()
		if err != nil {
			return err
		}
		mt, err := a.MediaType()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		if expect != nil && expect.Digest != d {
			return fmt.Errorf("manifest %s does not match its digest (content hashes to %s): the source is corrupt", expect.Digest, d)
		}
		if seenManifest[d] {
			return nil
		}
		seenManifest[d] = true
		switch x := a.(type) {
		case v1.ImageIndex:
			im, err := x.IndexManifest()
			if err != nil {
				return err
			}
			for _, desc := range im.Manifests {
				child, err := childOf(x, desc)
				if err != nil {
					return fmt.Errorf("manifest %s: %w", desc.Digest, err)
				}
				if err := walk(child, &desc); err != nil {
					return err
				}
				if desc.MediaType.IsImage() && desc.Platform != nil && desc.Platform.OS != "unknown" {
					g.Platforms = append(g.Platforms, desc.Platform.String())
				}
			}
		case v1.Image:
			mf, err := x.Manifest()
			if err != nil {
				return err
			}
			if g.ConfigDigest == "" && !isAttestation(mf) {
				g.ConfigDigest = mf.Config.Digest.String()
			}
			if expect == nil {
				if cfg, err := x.ConfigFile(); err == nil && cfg.OS != "" {
					g.Platforms = append(g.Platforms, (&v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}).String())
				}
			}
			cl, err := partial.ConfigLayer(x)
			if err != nil {
				return err
			}
			blobs := []v1.Descriptor{mf.Config}
			blobs = append(blobs, mf.Layers...)
			for i, bd := range blobs {
				if seenBlob[bd.Digest] || !bd.MediaType.IsDistributable() {
					continue
				}
				seenBlob[bd.Digest] = true
				var l v1.Layer = cl
				if i > 0 {
					if l, err = x.LayerByDigest(bd.Digest); err != nil {
						return err
					}
				}
				g.Blobs = append(g.Blobs, Blob{Digest: bd.Digest, Size: bd.Size, MediaType: bd.MediaType, Layer: l})
				g.Size += bd.Size
			}
		default:
			return fmt.Errorf("unsupported artifact %T", a)
		}
		g.Manifests = append(g.Manifests, Manifest{Digest: d, MediaType: mt, Raw: raw})
		g.Size += int64(len(raw))
		return nil
	}
	if err := walk(root, nil); err != nil {
		return nil, err
	}
	return g, nil
}

func isAttestation(mf *v1.Manifest) bool {
	for _, l := range mf.Layers {
		if l.MediaType == "application/vnd.in-toto+json" {
			return true
		}
	}
	return false
}

// Publish writes root to every target: blobs first (skipping what exists,
// mounting what another repository of the same registry holds), then
// manifests by digest children first, and only when every target holds the
// complete image, the tags. A tag therefore never points at an incomplete
// image anywhere, and a failure leaves no tag moved.
func (c *Client) Publish(ctx context.Context, opts PublishOptions) ([]TargetStats, error) {
	graph, err := Walk(opts.Root)
	if err != nil {
		return nil, err
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
	obs := &observer{inner: c.transport, present: map[string]bool{}, mounted: map[string]bool{}}
	ropts := c.Remote(ctx, remote.WithTransport(obs), remote.WithJobs(opts.Concurrency))
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}

	spoolDir := ""
	if opts.Source != nil && opts.Source.Kind == SourceRegistry && len(registriesOf(opts.Targets)) > 1 {
		if spoolDir, err = os.MkdirTemp("", "registry-spool-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(spoolDir)
	}
	blobs := make([]Blob, len(graph.Blobs))
	for i, b := range graph.Blobs {
		blobs[i] = b
		if spoolDir != "" {
			blobs[i].Layer = &spooledLayer{Layer: b.Layer, digest: b.Digest, size: b.Size, dir: spoolDir}
		}
	}

	stats := make([]*TargetStats, len(opts.Targets))
	started := time.Now()
	progress := make([]*progressCounter, len(opts.Targets))
	for i, t := range opts.Targets {
		stats[i] = &TargetStats{Repository: t.Repo.String()}
		progress[i] = &progressCounter{name: t.Repo.String()}
	}
	stopProgress := startProgress(opts.Logf, opts.ProgressEvery, progress)
	defer stopProgress()

	// Within one registry the first target uploads; the others wait for
	// each blob and mount it from there instead of sending it again.
	primary := map[string]int{}
	done := make([]map[v1.Hash]chan struct{}, len(opts.Targets))
	for i, t := range opts.Targets {
		done[i] = map[v1.Hash]chan struct{}{}
		for _, b := range blobs {
			done[i][b.Digest] = make(chan struct{})
		}
		if _, ok := primary[t.Repo.RegistryStr()]; !ok {
			primary[t.Repo.RegistryStr()] = i
		}
	}

	// A target that already holds the root manifest holds everything it
	// references: registries refuse a manifest whose blobs or children are
	// missing. An identical re-push therefore costs one HEAD per target.
	root := graph.Manifests[len(graph.Manifests)-1]
	complete := make([]bool, len(opts.Targets))
	heads, _ := errgroup.WithContext(ctx)
	for ti, t := range opts.Targets {
		heads.Go(func() error {
			desc, err := puller.Head(ctx, t.Repo.Digest(root.Digest.String()))
			complete[ti] = err == nil && desc.Digest == root.Digest
			return nil
		})
	}
	heads.Wait()

	sems := map[string]chan struct{}{}
	for _, t := range opts.Targets {
		if _, ok := sems[t.Repo.RegistryStr()]; !ok {
			sems[t.Repo.RegistryStr()] = make(chan struct{}, opts.Concurrency)
		}
	}
	eg, egctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	// Blob-major order: the registries' first uploads start together.
	for _, b := range blobs {
		for ti, t := range opts.Targets {
			p := primary[t.Repo.RegistryStr()]
			sem := sems[t.Repo.RegistryStr()]
			eg.Go(func() error {
				defer close(done[ti][b.Digest])
				if complete[ti] {
					mu.Lock()
					stats[ti].BlobsPresent++
					stats[ti].BytesPresent += b.Size
					mu.Unlock()
					return nil
				}
				var layer v1.Layer = b.Layer
				switch {
				case opts.Source != nil && opts.Source.Ref != nil && opts.Source.Ref.Context().RegistryStr() == t.Repo.RegistryStr() && opts.Source.Ref.Context() != t.Repo:
					layer = &remote.MountableLayer{Layer: layer, Reference: opts.Source.Ref.Context().Digest(b.Digest.String())}
				case p != ti:
					select {
					case <-done[p][b.Digest]:
					case <-egctx.Done():
						return egctx.Err()
					}
					layer = &remote.MountableLayer{Layer: layer, Reference: opts.Targets[p].Repo.Digest(b.Digest.String())}
				}
				select {
				case sem <- struct{}{}:
				case <-egctx.Done():
					return egctx.Err()
				}
				defer func() { <-sem }()
				tracked := &trackedLayer{Layer: layer, size: b.Size, progress: progress[ti]}
				var up v1.Layer = tracked
				if ml, ok := layer.(*remote.MountableLayer); ok {
					tracked.Layer = ml.Layer
					up = &remote.MountableLayer{Layer: tracked, Reference: ml.Reference}
				}
				if err := pusher.Upload(egctx, t.Repo, up); err != nil {
					return Explain(unwrapVerify(err), "push to", t.Repo.String(), Write)
				}
				if tracked.opened.Load() {
					progress[ti].add(b.Size)
				}
				key := blobKey(t.Repo, b.Digest)
				mu.Lock()
				defer mu.Unlock()
				s := stats[ti]
				switch {
				case tracked.opened.Load():
					s.BlobsUploaded++
					s.BytesUploaded += b.Size
				case obs.wasMounted(key):
					s.BlobsMounted++
					s.BytesMounted += b.Size
				default:
					s.BlobsPresent++
					s.BytesPresent += b.Size
				}
				return nil
			})
		}
	}
	if err := eg.Wait(); err != nil {
		return snapshot(stats), fmt.Errorf("%w (no tag was written)", err)
	}
	stopProgress()

	// Manifests by digest, children before parents; the root last.
	for ti, t := range opts.Targets {
		stats[ti].Digest = root.Digest.String()
		if complete[ti] {
			continue
		}
		n, err := putManifests(ctx, pusher, puller, t.Repo, graph.Manifests, opts.Concurrency)
		stats[ti].Manifests = n
		if err != nil {
			return snapshot(stats), fmt.Errorf("%w (no tag was written)", Explain(err, "push to", t.Repo.String(), Write))
		}
	}

	// Tags last, only now that every target holds the whole image.
	for ti, t := range opts.Targets {
		for _, tag := range t.Tags {
			ref := t.Repo.Tag(tag)
			if desc, err := puller.Head(ctx, ref); err == nil && desc.Digest == root.Digest {
				stats[ti].TagsUnchanged = append(stats[ti].TagsUnchanged, ref.String())
				stats[ti].Tags = append(stats[ti].Tags, ref.String())
				continue
			}
			if err := pusher.Put(ctx, ref, putManifest{root}); err != nil {
				return snapshot(stats), Explain(err, "tag", ref.String(), Write)
			}
			stats[ti].Tags = append(stats[ti].Tags, ref.String())
		}
		stats[ti].Duration = time.Since(started)
	}
	return snapshot(stats), nil
}

// putManifests writes manifests not yet present, in dependency order: all
// children (in parallel), then their parents.
func putManifests(ctx context.Context, pusher *remote.Pusher, puller *remote.Puller, repo name.Repository, ms []Manifest, jobs int) (int, error) {
	var written atomic.Int64
	put := func(m Manifest) error {
		ref := repo.Digest(m.Digest.String())
		if desc, err := puller.Head(ctx, ref); err == nil && desc.Digest == m.Digest {
			return nil
		}
		if err := pusher.Put(ctx, ref, putManifest{m}); err != nil {
			return err
		}
		written.Add(1)
		return nil
	}
	// Everything but the root is a child of some index; an index inside an
	// index is rare and its children come before it in ms, so writing
	// manifests in order, images in parallel and indexes one at a time,
	// keeps every parent after its children.
	eg, _ := errgroup.WithContext(ctx)
	eg.SetLimit(jobs)
	for _, m := range ms {
		if m.MediaType.IsIndex() {
			if err := eg.Wait(); err != nil {
				return int(written.Load()), err
			}
			if err := put(m); err != nil {
				return int(written.Load()), err
			}
			eg, _ = errgroup.WithContext(ctx)
			eg.SetLimit(jobs)
			continue
		}
		eg.Go(func() error { return put(m) })
	}
	err := eg.Wait()
	return int(written.Load()), err
}

func snapshot(stats []*TargetStats) []TargetStats {
	out := make([]TargetStats, len(stats))
	for i, s := range stats {
		out[i] = *s
	}
	return out
}

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
	present map[string]bool
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
// opposed to the blob being present or mounted) and feeds progress. It hands
// go-containerregistry the source's own reader: a layout's blob is an
// *os.File, which the kernel copies to the socket without passing through
// this process. Content is verified by the registry, which refuses a blob
// whose bytes do not hash to the digest it is committed under.
type trackedLayer struct {
	v1.Layer
	size     int64
	opened   atomic.Bool
	progress *progressCounter
}

func (l *trackedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		d, _ := l.Layer.Digest()
		return nil, fmt.Errorf("read blob %s from the source: %w", d, err)
	}
	if !l.opened.Swap(true) {
		l.progress.start(l.size)
	}
	return rc, nil
}

// Descriptor keeps the source's descriptor (annotations, URLs) intact.
func (l *trackedLayer) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(l.Layer) }

// ErrCorruptBlob means a source blob's bytes do not hash to its digest.
var ErrCorruptBlob = errors.New("blob does not match its digest")

type verifyingReader struct {
	rc     io.ReadCloser
	h      hash.Hash
	digest v1.Hash
	size   int64
	n      int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		got := hex.EncodeToString(v.h.Sum(nil))
		if v.n != v.size || (v.digest.Algorithm == "sha256" && got != v.digest.Hex) {
			return n, fmt.Errorf("source blob %s: %w (read %d of %d bytes, content hashes to sha256:%s): the source is corrupt", v.digest, ErrCorruptBlob, v.n, v.size, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

// unwrapVerify surfaces a corrupt-source error from inside the HTTP
// client's wrapping, so the user reads about the source, not the network.
func unwrapVerify(err error) error {
	if errors.Is(err, ErrCorruptBlob) {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return uerr.Err
		}
	}
	return err
}

// spooledLayer downloads a remote blob once, verified, to a local file that
// every target then reads: each source blob crosses the network once however
// many registries it goes to.
type spooledLayer struct {
	v1.Layer
	digest v1.Hash
	size   int64
	dir    string
	once   sync.Once
	path   string
	err    error
}

func (s *spooledLayer) Compressed() (io.ReadCloser, error) {
	s.once.Do(func() {
		rc, err := s.Layer.Compressed()
		if err != nil {
			s.err = err
			return
		}
		defer rc.Close()
		path := filepath.Join(s.dir, s.digest.Hex)
		f, err := os.Create(path)
		if err != nil {
			s.err = err
			return
		}
		vr := &verifyingReader{rc: rc, h: sha256.New(), digest: s.digest, size: s.size}
		if _, err := io.Copy(f, vr); err != nil {
			f.Close()
			s.err = err
			return
		}
		s.err = f.Close()
		s.path = path
	})
	if s.err != nil {
		return nil, s.err
	}
	return os.Open(s.path)
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
