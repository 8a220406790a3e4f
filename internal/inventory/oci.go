package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/registry"
)

// ErrRepositoryNotFound: the registry does not know the repository.
var ErrRepositoryNotFound = errors.New("repository not found")

// ErrDeleteNotAllowed: the registry refuses manifest deletion (405).
var ErrDeleteNotAllowed = errors.New("the registry does not allow deletes")

// NoteNoPushTime says where ages come from on plain registries.
const NoteNoPushTime = "Plain OCI registries record no push time: ages are the images' own creation times, so an image rebuilt reproducibly with an old timestamp counts as old."

// NoteUntaggedInvisible says what the distribution API cannot show.
const NoteUntaggedInvisible = "The distribution API lists tags only: untagged manifests are found through the tagged ones (index children, subjects and referrers); an untagged manifest nothing tagged references is invisible here and never judged."

// OCI is a repository in any registry speaking the OCI distribution API.
// The tags list is its only listing and it records no push times, so ages
// come from the images themselves (the org.opencontainers.image.created
// annotation, else the config's created field), and deletion uses the
// registry's DELETE, which many registries must be configured to allow.
type OCI struct {
	Repo name.Repository
	// Remote configures registry access (auth, transport, context).
	Remote []remote.Option
	// Concurrency bounds registry reads in flight (default 8).
	Concurrency int

	fetcher *manifestFetcher
	proofs  prover
}

func (o *OCI) Kind() lifecycle.RegistryKind { return lifecycle.RegistryOCI }

func (o *OCI) Repository() string { return o.Repo.Name() }

// Inventory lists the tags, resolves each to a digest (HEAD), reads each
// manifest once, follows index children, subjects and (where the registry
// has the referrers API) referrers, and dates every top-level artifact from
// its creation time.
func (o *OCI) Inventory(ctx context.Context) (*Inventory, error) {
	inv := &Inventory{Repository: o.Repository(), Kind: lifecycle.RegistryOCI, Clocks: map[Clock]int{}, Notes: []string{NoteNoPushTime, NoteUntaggedInvisible}}
	if o.fetcher == nil {
		var err error
		if o.fetcher, err = newManifestFetcher(o.Repo, o.Remote, o.Concurrency); err != nil {
			return nil, err
		}
	}
	fetcher := o.fetcher
	fetcher.retryMissing()
	tags, err := o.listTags(ctx, fetcher.puller)
	if err != nil {
		return nil, err
	}
	tagsOf, err := o.resolveTags(ctx, fetcher, tags)
	if err != nil {
		return nil, err
	}

	// Visit manifests until nothing new is referenced: children of indexes,
	// subjects of referrers (a cosign tag names one too), referrers. Every
	// visit asks for referrers afresh; manifests read by an earlier listing
	// are not read again.
	var next []string
	for d := range tagsOf {
		next = append(next, d)
	}
	slices.Sort(next)
	referrersAPI := false
	probed := false
	visited := map[string]bool{}
	var order []string
	for len(next) > 0 {
		if _, err := fetcher.fetch(ctx, next); err != nil {
			return nil, err
		}
		for _, d := range next {
			visited[d] = true
		}
		order = append(order, next...)
		if !probed {
			probed = true
			referrersAPI, err = o.hasReferrersAPI(ctx, fetcher.puller, next[0])
			if err != nil {
				return nil, err
			}
		}
		var found []string
		var present []string
		for _, d := range next {
			fm := fetcher.lookup(d)
			if fm == nil || fm.missing {
				continue
			}
			present = append(present, d)
			found = append(found, fm.info.childDigests()...)
			if fm.info.Subject != "" {
				found = append(found, fm.info.Subject)
			}
			for _, t := range tagsOf[d] {
				if s, _, ok := lifecycle.SubjectFromCosignTag(t); ok {
					found = append(found, s)
				}
			}
		}
		if referrersAPI {
			refs, err := o.referrers(ctx, fetcher, present)
			if err != nil {
				return nil, err
			}
			found = append(found, refs...)
		}
		next = nil
		for _, d := range found {
			if !visited[d] && !slices.Contains(next, d) {
				next = append(next, d)
			}
		}
		slices.Sort(next)
	}

	for _, d := range order {
		fm := fetcher.lookup(d)
		if fm == nil || fm.missing {
			if len(tagsOf[d]) > 0 {
				o.unreadable(ctx, fetcher, inv, d, tagsOf[d], problemOf(fm))
			}
			continue // a subject or child that is not in the repository
		}
		inv.Artifacts = append(inv.Artifacts, lifecycle.Artifact{
			Digest:    d,
			Tags:      tagsOf[d],
			MediaType: fm.info.MediaType,
			Size:      fm.info.Size,
			Children:  presentOnly(fetcher, fm.info.childDigests()),
			Subject:   fm.info.Subject,
		})
	}
	if err := o.proofs.attach(ctx, inv, fetcher.info, fetcher.blob, fetcher.concurrency); err != nil {
		return nil, err
	}
	describe(inv, fetcher.info)
	if err := o.date(ctx, fetcher, inv); err != nil {
		return nil, err
	}
	if err := platforms(ctx, fetcher, inv); err != nil {
		return nil, err
	}
	if !referrersAPI {
		inv.Notes = append(inv.Notes, "The registry has no referrers API: OCI 1.1 referrers are found through the sha256-<hex> fallback tags.")
	}
	return inv, nil
}

// unreadable handles a tagged manifest the registry would not return. If its
// tags still point at it, the registry keeps a dangling tag: the manifest
// has been gone for good and the tag is skipped with a warning. If a tag
// moved or vanished meanwhile, the repository changed while it was listed,
// and the listing is inconsistent.
func (o *OCI) unreadable(ctx context.Context, fetcher *manifestFetcher, inv *Inventory, digest string, tags []string, problem string) {
	for _, t := range tags {
		desc, err := fetcher.puller.Head(ctx, o.Repo.Tag(t))
		if err != nil || desc.Digest.String() != digest {
			inv.Unreadable = append(inv.Unreadable, Unreadable{Digest: digest, Tags: tags, Reason: problem + "; its tag " + t + " changed while the repository was listed"})
			return
		}
	}
	inv.Warnings = append(inv.Warnings, fmt.Sprintf("tag %s points to %s, which the registry cannot return (%s): skipped", strings.Join(tags, ", "), Short(digest), problem))
}

// listTags reads every page of the tags list.
func (o *OCI) listTags(ctx context.Context, puller *remote.Puller) ([]string, error) {
	lister, err := puller.Lister(ctx, o.Repo)
	if err == nil {
		var tags []string
		for lister.HasNext() {
			page, perr := lister.Next(ctx)
			if perr != nil {
				err = perr
				break
			}
			tags = append(tags, page.Tags...)
		}
		if err == nil {
			return tags, nil
		}
	}
	if isNotFound(err) {
		return nil, fmt.Errorf("list tags of %s: %w: check the repository name in images", o.Repo.Name(), ErrRepositoryNotFound)
	}
	return nil, registry.Explain(err, "list tags of", o.Repo.Name(), registry.Read)
}

// resolveTags finds each tag's digest with a HEAD request, several at a time.
func (o *OCI) resolveTags(ctx context.Context, fetcher *manifestFetcher, tags []string) (map[string][]string, error) {
	var mu sync.Mutex
	out := map[string][]string{}
	var g errgroup.Group
	g.SetLimit(fetcher.concurrency)
	for _, t := range tags {
		g.Go(func() error {
			ref := o.Repo.Tag(t)
			desc, err := fetcher.puller.Head(ctx, ref)
			if isNotFound(err) {
				return nil // untagged since the listing
			}
			if err != nil {
				return registry.Explain(err, "resolve", ref.String(), registry.Read)
			}
			mu.Lock()
			out[desc.Digest.String()] = append(out[desc.Digest.String()], t)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for d := range out {
		slices.Sort(out[d])
	}
	return out, nil
}

// hasReferrersAPI asks the registry's referrers endpoint once; without it,
// referrers are tagged sha256-<hex> and already in the tags list.
func (o *OCI) hasReferrersAPI(ctx context.Context, puller *remote.Puller, digest string) (bool, error) {
	_, err := remote.Referrers(o.Repo.Digest(digest), remote.WithContext(ctx), remote.Reuse(puller))
	switch {
	case err == nil:
		return true, nil
	case statusOf(err) == 0 && strings.Contains(err.Error(), "does not support the Referrers API"):
		return false, nil
	case statusOf(err) == http.StatusNotFound || statusOf(err) == http.StatusMethodNotAllowed:
		return false, nil
	}
	return false, registry.Explain(err, "list referrers in", o.Repo.Name(), registry.Read)
}

// referrers lists the referrers of each digest through the referrers API.
func (o *OCI) referrers(ctx context.Context, fetcher *manifestFetcher, digests []string) ([]string, error) {
	var mu sync.Mutex
	var out []string
	var g errgroup.Group
	g.SetLimit(fetcher.concurrency)
	for _, d := range digests {
		g.Go(func() error {
			idx, err := remote.Referrers(o.Repo.Digest(d), remote.WithContext(ctx), remote.Reuse(fetcher.puller))
			if err != nil {
				return registry.Explain(err, "list referrers of", o.Repo.Digest(d).String(), registry.Read)
			}
			m, err := idx.IndexManifest()
			if err != nil {
				return fmt.Errorf("referrers of %s: %w", o.Repo.Digest(d), err)
			}
			mu.Lock()
			for _, desc := range m.Manifests {
				out = append(out, desc.Digest.String())
			}
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

// date gives every top-level artifact its age: the creation annotation, else
// the image config's created time (for an index, its newest platform
// image's). Children and referrers live and die with their parents and need
// none.
func (o *OCI) date(ctx context.Context, fetcher *manifestFetcher, inv *Inventory) error {
	top := topLevel(inv.Artifacts)
	var mu sync.Mutex
	var undated []string
	var g errgroup.Group
	g.SetLimit(fetcher.concurrency)
	for i := range inv.Artifacts {
		a := &inv.Artifacts[i]
		if !top[a.Digest] {
			continue
		}
		g.Go(func() error {
			created, clock, err := o.created(ctx, fetcher, a.Digest)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if created.IsZero() {
				undated = append(undated, Short(a.Digest)+lifecycle.DescribeTags(a.Tags))
				return nil
			}
			a.PushedAt = created
			inv.Clocks[clock]++
			inv.Details[a.Digest].Clock = clock
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(undated) > 0 {
		slices.Sort(undated)
		return fmt.Errorf("cannot tell the age of %s in %s: %s has no %s annotation and no created time in its image config, and this registry records no push time; add the annotation when building (e.g. docker/metadata-action's labels and annotations), or leave the repository to a registry-side retention policy",
			plural(len(undated), "image"), o.Repo.Name(), strings.Join(undated, ", "), AnnotationCreated)
	}
	return nil
}

func (o *OCI) created(ctx context.Context, fetcher *manifestFetcher, digest string) (time.Time, Clock, error) {
	fm := fetcher.lookup(digest)
	if !fm.info.Created.IsZero() {
		return fm.info.Created, ClockAnnotation, nil
	}
	if !fm.info.IsIndex {
		t, err := fetcher.configCreated(ctx, digest)
		return t, ClockConfig, err
	}
	var newest time.Time
	for _, c := range fm.info.Children {
		if c.isAttestation() {
			continue
		}
		child := fetcher.lookup(c.Digest)
		if child == nil || child.missing {
			continue
		}
		t := child.info.Created
		if t.IsZero() {
			var err error
			if t, err = fetcher.configCreated(ctx, c.Digest); err != nil {
				return time.Time{}, "", err
			}
		}
		if t.After(newest) {
			newest = t
		}
	}
	return newest, ClockConfig, nil
}

// Delete deletes manifests one by one with the registry's DELETE, in plan
// order. A registry that refuses deletes (405) or the credentials (401, 403)
// ends the run at the first digest.
func (o *OCI) Delete(ctx context.Context, inv *Inventory, order []string, progress func(*Deletion)) *Deletion {
	pusher, err := remote.NewPusher(o.Remote...)
	if err != nil {
		return &Deletion{Err: err, NotAttempted: rest(order, "deleting could not start: "+err.Error())}
	}
	return deleteOneByOne(ctx, inv, order, progress, func(ctx context.Context, d string) error {
		ref := o.Repo.Digest(d)
		err := pusher.Delete(ctx, ref)
		switch {
		case err == nil, isNotFound(err):
			return nil // gone already counts: re-runs converge
		case statusOf(err) == http.StatusMethodNotAllowed:
			return fatal{fmt.Errorf("%w: %s answered 405 Method Not Allowed to DELETE %s: enable deletion in the registry (distribution: REGISTRY_STORAGE_DELETE_ENABLED=true) or use its own retention policies",
				ErrDeleteNotAllowed, o.Repo.RegistryStr(), ref.String())}
		case statusOf(err) == http.StatusUnauthorized || statusOf(err) == http.StatusForbidden:
			return fatal{registry.Explain(err, "delete", ref.String(), registry.Delete)}
		}
		return registry.Explain(err, "delete", ref.String(), registry.Delete)
	}, func(err error) bool {
		var f fatal
		return errors.As(err, &f) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	})
}

// fatal marks a deletion error that every later deletion would meet too.
type fatal struct{ error }

func (f fatal) Unwrap() error { return f.error }

func presentOnly(fetcher *manifestFetcher, digests []string) []string {
	out := digests[:0:0]
	for _, d := range digests {
		if fm := fetcher.lookup(d); fm != nil && !fm.missing {
			out = append(out, d)
		}
	}
	return out
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
