// Package push publishes one image — from an OCI layout, an OCI archive, a
// docker-save tarball, another registry or a fresh build — to every target
// repository and tag at once, byte for byte, with ECR repositories created
// and immutable tags respected.
package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

// Options is everything push needs, as plain values.
type Options struct {
	// Source names what to push (see registry.Sources); ignored when Build
	// is set. Relative paths are relative to Dir.
	Source string
	Dir    string
	Build  *BuildOptions
	// Images are target repositories; Tags are tag names or full references.
	Images    []string
	Tags      []string
	Platforms []string
	// Concurrency bounds blob uploads in flight.
	Concurrency int
	ECR         ECROptions

	Registry *registry.Client
	// ECRRepositories returns an ECR API client for a registry; nil skips
	// repository checks and creation.
	ECRRepositories func(ctx context.Context, host registry.ECRHost) (ECRRepositories, error)
	Log             report.Logger
	// ProgressEvery is how often upload progress is logged (default 5s).
	ProgressEvery time.Duration
	// KeepSource leaves a local source (not a build's) open in the result,
	// so a later stage of the chain reads what was pushed instead of
	// pulling it back; the caller closes Result.Opened.
	KeepSource bool
	// Ready, when set, is called for a local source (not a build's) once
	// it is open and its manifests and configs are verified, just before
	// anything is written: with a view of the image as it will be pushed
	// (valid until Run returns; the view is not the caller's to close), its
	// digest and the repository@digest references the push will produce.
	// A chain's scan reads the image from there while the upload runs.
	Ready func(view *registry.Source, digest string, pushed []string)
}

// ECROptions are the ecr-* inputs.
type ECROptions struct {
	CreateRepository bool
	TagMutability    string
	ScanOnPush       bool
	KMSKey           string
}

// ECRRepositories is the part of the ECR API push uses.
type ECRRepositories interface {
	Repository(ctx context.Context, name string) (ecr.Repository, error)
	CreateRepository(ctx context.Context, name string, opts ecr.CreateOptions) (ecr.Repository, bool, error)
}

// Run pushes and reports what it did. On failure, no tag was written or
// moved at any target.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = report.Discard{}
	}
	started := time.Now()
	res := &Result{}
	targets, notes, err := resolveTargets(opts.Registry, opts.Images, opts.Tags)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, notes...)

	src, release, err := openSource(ctx, opts, res)
	if err != nil {
		return nil, err
	}
	kept := false
	defer func() {
		if !kept {
			release()
		}
	}()
	if src.Note != "" {
		res.Notes = append(res.Notes, src.Note)
	}

	root := src.Root
	if len(opts.Platforms) > 0 {
		subset, note, err := selectPlatforms(root, opts.Platforms)
		if err != nil {
			return nil, err
		}
		root = subset
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
	}
	// Walking reads every manifest and config, each checked against what
	// refers to it: a corrupt source stops here, before any request.
	graph, err := registry.Walk(root)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	digest := graph.Root().Digest
	res.Digest, res.MediaType = digest.String(), string(graph.Root().MediaType)
	res.ImageID, res.Platforms, res.Size = graph.ConfigDigest, graph.Platforms, graph.Size

	created, err := prepareECR(ctx, opts, targets, digest)
	if err != nil {
		return nil, err
	}
	for _, c := range created {
		res.Notes = append(res.Notes, "created ECR repository "+c)
	}

	if opts.Ready != nil && src.Local() && opts.Build == nil {
		pushed := make([]string, len(targets))
		for i, t := range targets {
			pushed[i] = t.Repo.String() + "@" + digest.String()
		}
		opts.Ready(src.WithRoot(root).Borrow(), digest.String(), pushed)
	}
	if len(targets) == 1 {
		opts.Log.Infof("pushing %s (%s, %s) to %s", digest, strings.Join(graph.Platforms, ", "), report.HumanBytes(graph.Size), targets[0].Repo)
	} else {
		opts.Log.Infof("pushing %s (%s, %s) to %d repositories", digest, strings.Join(graph.Platforms, ", "), report.HumanBytes(graph.Size), len(targets))
	}
	stats, err := opts.Registry.Publish(ctx, registry.PublishOptions{
		Graph: graph, From: src.Ref, Targets: targets, Concurrency: opts.Concurrency,
		Logf: opts.Log.Infof, ProgressEvery: opts.ProgressEvery,
	})
	for i, s := range stats {
		res.Targets = append(res.Targets, targetFrom(targets[i], s, graph))
	}
	res.Duration = time.Since(started)
	res.Seconds = res.Duration.Seconds()
	for _, t := range res.Targets {
		end := opts.Log.Group("push " + t.Repository)
		opts.Log.Infof("blobs: %d uploaded (%s), %d already present (%s), %d mounted (%s); %d manifests written",
			t.BlobsUploaded, report.HumanBytes(t.BytesUploaded), t.BlobsPresent, report.HumanBytes(t.BytesPresent),
			t.BlobsMounted, report.HumanBytes(t.BytesMounted), t.ManifestsWritten)
		for _, tag := range t.Tags {
			opts.Log.Infof("tagged %s", tag)
		}
		end()
	}
	if err != nil {
		return res, fmt.Errorf("push: %w", err)
	}
	if opts.KeepSource && src.Local() && opts.Build == nil {
		res.Opened, kept = src.WithRoot(root), true
	}
	if len(opts.Tags) == 0 {
		opts.Log.Warnf("no tags given: the image was pushed by digest only (%s)", digest)
	}
	return res, nil
}

// openSource opens what to push — the build's OCI archive, or the source
// input — through the one source resolver. release closes it and removes
// the build's files.
func openSource(ctx context.Context, opts Options, res *Result) (*registry.Source, func(), error) {
	sources := registry.Sources{Dir: opts.Dir, Client: opts.Registry}
	spec, cleanup := registry.SourceSpec{}, func() {}
	if opts.Build != nil {
		archive, done, err := Build(ctx, *opts.Build, opts.Registry, opts.Log)
		if err != nil {
			return nil, nil, err
		}
		spec = registry.SourceSpec{Spec: "build of " + opts.Build.Context, Kind: registry.SourceOCIArchive, Path: archive}
		cleanup, res.Built = done, true
	} else {
		var err error
		if spec, err = sources.Parse(opts.Source); err != nil {
			return nil, nil, fmt.Errorf("push: %w", err)
		}
	}
	src, err := sources.OpenSpec(ctx, spec)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("push: %w", err)
	}
	res.Source, res.SourceKind = src.Spec, string(src.Kind)
	return src, func() { src.Close(); cleanup() }, nil
}

// resolveTargets turns images × tags into repositories with their tags.
// Full references among the tags (docker/metadata-action's output) name
// their own repositories.
func resolveTargets(c *registry.Client, images, tags []string) ([]registry.Target, []string, error) {
	var targets []registry.Target
	var notes []string
	index := map[string]int{}
	add := func(repoSpec string) (int, error) {
		lowered, changed := registry.LowercaseGHCR(repoSpec)
		repo, err := c.Repository(lowered)
		if err != nil {
			return 0, failure.Invalid(fmt.Errorf("push: %w", err))
		}
		if changed {
			notes = append(notes, fmt.Sprintf("%s was lower-cased to %s: ghcr.io repository names are lower-case", repoSpec, repo))
		}
		key := repo.String()
		if i, ok := index[key]; ok {
			return i, nil
		}
		index[key] = len(targets)
		targets = append(targets, registry.Target{Repo: repo})
		return len(targets) - 1, nil
	}
	var plain []string
	for _, t := range tags {
		if !strings.Contains(t, "/") {
			if err := registry.ValidTag(t); err != nil {
				return nil, nil, failure.Invalid(fmt.Errorf("push: %w", err))
			}
			plain = append(plain, t)
			continue
		}
		lowered, _ := registry.LowercaseGHCR(t)
		ref, err := c.Reference(lowered)
		if err != nil {
			return nil, nil, failure.Invalid(fmt.Errorf("push: tag %w", err))
		}
		tag, ok := ref.(name.Tag)
		if !ok {
			return nil, nil, failure.Invalidf("push: tag %q names a digest: tags must be tag names or repository:tag references", t)
		}
		if !strings.Contains(t, ":") || strings.LastIndex(t, ":") < strings.LastIndex(t, "/") {
			return nil, nil, failure.Invalidf("push: tag %q is a repository without a tag: add :tag, or list the repository in images", t)
		}
		i, err := add(ref.Context().String())
		if err != nil {
			return nil, nil, err
		}
		if !slices.Contains(targets[i].Tags, tag.TagStr()) {
			targets[i].Tags = append(targets[i].Tags, tag.TagStr())
		}
	}
	for _, img := range images {
		i, err := add(img)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range plain {
			if !slices.Contains(targets[i].Tags, t) {
				targets[i].Tags = append(targets[i].Tags, t)
			}
		}
	}
	if len(targets) == 0 {
		return nil, nil, failure.Invalidf("push: input \"images\" is required: name the target repositories, e.g. ghcr.io/acme/app (or give full references in tags)")
	}
	if len(images) == 0 && len(plain) > 0 {
		return nil, nil, failure.Invalidf("push: tags %s have no repository: list repositories in images", strings.Join(plain, ", "))
	}
	return targets, notes, nil
}

// selectPlatforms keeps only the wanted platforms of an index, with the
// attestation manifests that describe them.
func selectPlatforms(root registry.Artifact, want []string) (registry.Artifact, string, error) {
	var wanted []v1.Platform
	for _, w := range want {
		p, err := v1.ParsePlatform(w)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, "", failure.Invalidf("push: invalid platform %q: use os/arch[/variant], e.g. linux/arm64", w)
		}
		wanted = append(wanted, *p)
	}
	idx, ok := root.(v1.ImageIndex)
	if !ok {
		img := root.(v1.Image)
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, "", fmt.Errorf("push: %w", err)
		}
		have := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		for _, p := range wanted {
			if have.Satisfies(p) {
				return root, "", nil
			}
		}
		return nil, "", failure.Invalidf("push: the source is a single %s image: platforms %s are not in it", have.String(), strings.Join(want, ", "))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("push: %w", err)
	}
	keep := map[v1.Hash]bool{}
	var present []string
	for _, p := range wanted {
		found := false
		for _, d := range im.Manifests {
			if d.Platform != nil && d.Platform.OS != "unknown" && d.Platform.Satisfies(p) {
				keep[d.Digest] = true
				found = true
			}
		}
		if !found {
			for _, d := range im.Manifests {
				if d.Platform != nil && d.Platform.OS != "unknown" {
					present = append(present, d.Platform.String())
				}
			}
			return nil, "", failure.Invalidf("push: platform %s is not in the image: it has %s", p.String(), strings.Join(present, ", "))
		}
	}
	for _, d := range im.Manifests {
		// buildx attestations name the manifest they describe.
		if ref := d.Annotations["vnd.docker.reference.digest"]; ref != "" {
			if h, err := v1.NewHash(ref); err == nil && keep[h] {
				keep[d.Digest] = true
			}
		}
	}
	if len(keep) == len(im.Manifests) {
		return root, "", nil
	}
	subset := mutate.RemoveManifests(idx, func(d v1.Descriptor) bool { return !keep[d.Digest] })
	before, err := idx.Digest()
	if err != nil {
		return nil, "", fmt.Errorf("push: %w", err)
	}
	after, err := subset.Digest()
	if err != nil {
		return nil, "", fmt.Errorf("push: %w", err)
	}
	return subset, fmt.Sprintf("platforms %s selected from the source index %s: the pushed index is new, so its digest is %s", strings.Join(want, ", "), before, after), nil
}

// prepareECR creates missing ECR repositories (when allowed) and refuses,
// before anything is uploaded, to move an immutable tag.
func prepareECR(ctx context.Context, opts Options, targets []registry.Target, digest v1.Hash) ([]string, error) {
	if opts.ECRRepositories == nil {
		return nil, nil
	}
	var created []string
	for _, t := range targets {
		host, ok := registry.ParseECRHost(t.Repo.RegistryStr())
		if !ok {
			continue
		}
		api, err := opts.ECRRepositories(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("push to %s: %w", t.Repo, err)
		}
		repo, err := api.Repository(ctx, t.Repo.RepositoryStr())
		switch {
		case errors.Is(err, ecr.ErrRepositoryNotFound) && opts.ECR.CreateRepository:
			repo, _, err = api.CreateRepository(ctx, t.Repo.RepositoryStr(), ecr.CreateOptions{
				TagMutability: opts.ECR.TagMutability, ScanOnPush: opts.ECR.ScanOnPush, KMSKey: opts.ECR.KMSKey,
			})
			if err != nil {
				return nil, fmt.Errorf("push: %w", err)
			}
			created = append(created, t.Repo.String())
		case errors.Is(err, ecr.ErrRepositoryNotFound):
			return nil, failure.Invalidf("push: ECR repository %s does not exist: set ecr-create-repository: true, or create it", t.Repo)
		case errors.Is(err, ecr.ErrAccessDenied):
			// Many push roles lack ecr:DescribeRepositories; the registry
			// itself still refuses to move an immutable tag.
			opts.Log.Warnf("cannot describe ECR repository %s (ecr:DescribeRepositories not allowed): pushing without the immutable-tag pre-check", t.Repo)
			continue
		case err != nil:
			return nil, fmt.Errorf("push: %w", err)
		}
		for _, tag := range t.Tags {
			if !repo.TagImmutable(tag) {
				continue
			}
			desc, err := remote.Head(t.Repo.Tag(tag), opts.Registry.Remote(ctx)...)
			if err != nil {
				continue // not there yet: the first push of an immutable tag is fine
			}
			if desc.Digest != digest {
				return nil, failure.Invalidf("push: tag %s is immutable in %s and already points at %s; this image is %s: push a new tag", tag, t.Repo, desc.Digest, digest)
			}
		}
	}
	return created, nil
}
