package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/ghcr"
	"github.com/registry-actions/registry/internal/lifecycle"
)

// GitHubAPI is the part of the GitHub Packages API a GHCR inventory needs.
type GitHubAPI interface {
	ListVersions(ctx context.Context, owner, pkg string) (*ghcr.Listing, error)
	DeleteVersion(ctx context.Context, owner, pkg string, id int64) error
}

// GHCR is a container package on ghcr.io. Every manifest is a package
// version: the Packages API lists them all (untagged platform manifests
// included) with their creation times, and deletes them by version id,
// because ghcr.io refuses the registry's DELETE. The manifests themselves
// are read from the registry to learn which index lists which children and
// which referrer names which subject.
type GHCR struct {
	API GitHubAPI
	// Owner and Package locate the package: ghcr.io/<owner>/<package>,
	// where the package name may contain '/'.
	Owner, Package string
	// Repo is where the manifests are read (ghcr.io/owner/package).
	Repo name.Repository
	// Remote configures registry access (auth, transport, context).
	Remote []remote.Option
	// Concurrency bounds manifest reads in flight (default 8).
	Concurrency int

	fetcher *manifestFetcher
	proofs  prover
}

// SplitGHCR splits a ghcr.io repository path ("owner/some/package") into the
// package owner and name.
func SplitGHCR(path string) (owner, pkg string, err error) {
	owner, pkg, ok := strings.Cut(path, "/")
	if !ok || owner == "" || pkg == "" {
		return "", "", fmt.Errorf("ghcr.io repository %q has no package name: use ghcr.io/<owner>/<package>", path)
	}
	return owner, pkg, nil
}

func (g *GHCR) Kind() lifecycle.RegistryKind { return lifecycle.RegistryGHCR }

func (g *GHCR) Repository() string { return g.Repo.Name() }

// Inventory lists the package's versions (100 per request, following Link,
// checked against the package's version_count) and reads each version's
// manifest once, several at a time, and the config of each top-level image
// for its platform.
func (g *GHCR) Inventory(ctx context.Context) (*Inventory, error) {
	listing, err := g.API.ListVersions(ctx, g.Owner, g.Package)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{Repository: g.Repository(), Kind: lifecycle.RegistryGHCR, Clocks: map[Clock]int{}, versionIDs: map[string]int64{}, Warnings: slices.Clone(listing.Warnings)}
	byDigest := map[string]int{}
	var digests []string
	for _, v := range listing.Versions {
		if !strings.HasPrefix(v.Digest, "sha256:") && !strings.HasPrefix(v.Digest, "sha512:") {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("version %d is named %q, not a digest: skipped", v.ID, v.Digest))
			continue
		}
		if i, dup := byDigest[v.Digest]; dup {
			// One manifest, two versions: judge it once, with every tag
			// and the earlier creation time.
			a := &inv.Artifacts[i]
			for _, t := range v.Tags {
				if !slices.Contains(a.Tags, t) {
					a.Tags = append(a.Tags, t)
				}
			}
			if v.CreatedAt.Before(a.PushedAt) {
				a.PushedAt = v.CreatedAt
			}
			continue
		}
		byDigest[v.Digest] = len(inv.Artifacts)
		inv.versionIDs[v.Digest] = v.ID
		digests = append(digests, v.Digest)
		inv.Artifacts = append(inv.Artifacts, lifecycle.Artifact{
			Digest:   v.Digest,
			Tags:     slices.Clone(v.Tags),
			PushedAt: v.CreatedAt,
		})
	}
	if g.fetcher == nil {
		if g.fetcher, err = newManifestFetcher(g.Repo, g.Remote, g.Concurrency); err != nil {
			return nil, err
		}
	}
	g.fetcher.retryMissing()
	if _, err := g.fetcher.fetch(ctx, digests); err != nil {
		return nil, err
	}
	for i := range inv.Artifacts {
		a := &inv.Artifacts[i]
		inv.detail(a.Digest).Clock = ClockGitHub
		fm := g.fetcher.lookup(a.Digest)
		if fm == nil || fm.missing {
			inv.Unreadable = append(inv.Unreadable, Unreadable{Digest: a.Digest, Tags: a.Tags,
				Reason: fmt.Sprintf("version %d: %s", inv.versionIDs[a.Digest], problemOf(fm))})
			continue
		}
		a.MediaType = fm.info.MediaType
		a.Size = fm.info.Size
		a.Children = fm.info.childDigests()
		a.Subject = fm.info.Subject
	}
	if err := g.proofs.attach(ctx, inv, g.fetcher.info, g.fetcher.blob, g.fetcher.concurrency); err != nil {
		return nil, err
	}
	describe(inv, g.fetcher.info)
	if err := platforms(ctx, g.fetcher, inv); err != nil {
		return nil, err
	}
	inv.Clocks[ClockGitHub] = len(topLevel(inv.Artifacts))
	return inv, nil
}

func problemOf(fm *fetchedManifest) string {
	if fm == nil {
		return "not read"
	}
	return fm.problem
}

// Delete deletes package versions one by one, in plan order. A missing
// permission (including GitHub's 404 to a token without the Admin role,
// recognised at the first refusal) or a rate limit that outlasts its wait
// ends the run; a version GitHub will not delete (too many downloads, the
// package's last tagged version) is reported and the rest go on.
func (g *GHCR) Delete(ctx context.Context, inv *Inventory, order []string, progress func(*Deletion)) *Deletion {
	return deleteOneByOne(ctx, inv, order, progress, func(ctx context.Context, d string) error {
		id, ok := inv.versionIDs[d]
		if !ok {
			return fmt.Errorf("%s is not a version of container package %q", d, g.Owner+"/"+g.Package)
		}
		return g.API.DeleteVersion(ctx, g.Owner, g.Package, id)
	}, func(err error) bool {
		return errors.Is(err, ghcr.ErrForbidden) || errors.Is(err, ghcr.ErrNoAdmin) || errors.Is(err, ghcr.ErrUnauthorized) || errors.Is(err, ghcr.ErrRateLimited) ||
			errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	})
}
