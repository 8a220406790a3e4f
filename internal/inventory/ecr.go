package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/report"
)

// ECRAPI is the part of the ECR API an ECR repository's inventory needs.
type ECRAPI interface {
	ListImagesByStatus(ctx context.Context, repo, status string) ([]ecr.Image, error)
	GetManifests(ctx context.Context, repo string, digests []string) (map[string]ecr.Manifest, []ecr.Failure, error)
	DeleteImages(ctx context.Context, repo string, digests []string) (ecr.DeleteResult, error)
	// Blob reads a small blob (a signature's payload) through the API.
	Blob(ctx context.Context, repo, digest string) ([]byte, error)
}

// ECR is a repository in Amazon ECR. Ages are ECR's push times.
type ECR struct {
	API ECRAPI
	// Registry is the registry host, for the repository's full name.
	Registry string
	// Name is the repository name inside the registry, e.g. team/app.
	Name string
	// Archived also lists archived images, which only policies with
	// archive rules judge.
	Archived bool

	// Manifests read so far, by digest: a later listing reads only new ones.
	manifests map[string]manifestInfo
	proofs    prover
}

// ecrDeleteBatch is BatchDeleteImage's limit.
const ecrDeleteBatch = 100

func (e *ECR) Kind() lifecycle.RegistryKind { return lifecycle.RegistryECR }

func (e *ECR) Repository() string { return e.Registry + "/" + e.Name }

// Inventory lists the repository's images (DescribeImages, 1,000 per page)
// and reads every manifest not read before (BatchGetImage, 100 per call, a
// few calls at a time) to find index children and OCI subjects.
func (e *ECR) Inventory(ctx context.Context) (*Inventory, error) {
	status := ecr.StatusActive
	if e.Archived {
		status = ecr.StatusAny
	}
	images, err := e.API.ListImagesByStatus(ctx, e.Name, status)
	if err != nil {
		return nil, err
	}
	if e.manifests == nil {
		e.manifests = map[string]manifestInfo{}
	}
	inv := &Inventory{Repository: e.Repository(), Kind: lifecycle.RegistryECR, Clocks: map[Clock]int{}}
	var unread []string
	for _, img := range images {
		if _, ok := e.manifests[img.Digest]; !ok {
			unread = append(unread, img.Digest)
		}
	}
	problems := map[string]string{}
	if len(unread) > 0 {
		manifests, failed, err := e.API.GetManifests(ctx, e.Name, unread)
		if err != nil {
			return nil, err
		}
		for _, f := range failed {
			problems[f.Digest] = fmt.Sprintf("BatchGetImage: %s: %s", f.Code, f.Reason)
		}
		for d, m := range manifests {
			info, err := parseManifest(m.Body, m.MediaType)
			if err != nil {
				problems[d] = err.Error()
				continue
			}
			e.manifests[d] = info
		}
	}
	for _, img := range images {
		a := lifecycle.Artifact{
			Digest:          img.Digest,
			Tags:            slices.Clone(img.Tags),
			PushedAt:        img.PushedAt,
			Size:            img.SizeBytes,
			MediaType:       img.ManifestMediaType,
			Subject:         img.SubjectDigest,
			LastPulledAt:    img.LastPulledAt,
			LastActivatedAt: img.LastActivatedAt,
			ArchivedAt:      img.LastArchivedAt,
			StorageClass:    lifecycle.StorageClassStandard,
		}
		switch img.Status {
		case ecr.StatusArchived:
			a.StorageClass = lifecycle.StorageClassArchive
		case ecr.StatusActivating:
			// Being restored: still archived until ECR says otherwise, and
			// never selected by a rule meanwhile.
			a.StorageClass = lifecycle.StorageClassArchive
			a.Restoring = true
		}
		info, ok := e.manifests[img.Digest]
		if !ok {
			problem := problems[img.Digest]
			if problem == "" {
				problem = "BatchGetImage did not return it"
			}
			inv.Unreadable = append(inv.Unreadable, Unreadable{Digest: img.Digest, Tags: img.Tags, Reason: problem})
		} else {
			a.Children = info.childDigests()
			if a.Subject == "" {
				a.Subject = info.Subject
			}
			if a.MediaType == "" {
				a.MediaType = info.MediaType
			}
			// ECR reports an index's size as that of its largest image.
			a.SizeIncludesChildren = info.IsIndex
		}
		inv.Artifacts = append(inv.Artifacts, a)
		inv.detail(a.Digest).Clock = ClockECRPush
	}
	info := func(d string) (manifestInfo, bool) { m, ok := e.manifests[d]; return m, ok }
	read := func(ctx context.Context, digest string) ([]byte, error) {
		data, err := e.API.Blob(ctx, e.Name, digest)
		if errors.Is(err, ecr.ErrLayerNotFound) {
			return nil, errBlobMissing
		}
		return data, err
	}
	if err := e.proofs.attach(ctx, inv, info, read, DefaultConcurrency); err != nil {
		return nil, err
	}
	describe(inv, info)
	inv.Clocks[ClockECRPush] = len(topLevel(inv.Artifacts))
	return inv, nil
}

// Delete deletes with BatchDeleteImage, 100 digests per call, level by
// level: the images first, then their platform manifests and referrers (a
// call deletes its 100 digests together, so ordering image by image would
// save nothing and cost calls). A platform manifest may share a call with its index: ECR refuses
// to delete it while the index stays. A signature or other referrer has no
// such protection, so it waits for a later call, after ECR confirmed its
// subject's deletion; calls are filled with whatever is ready, so a plan of
// D manifests costs ⌈D/100⌉ calls unless referrers must wait for a call of
// their own.
func (e *ECR) Delete(ctx context.Context, inv *Inventory, order []string, progress func(*Deletion)) *Deletion {
	res := &Deletion{}
	if progress == nil {
		progress = func(*Deletion) {}
	}
	defer progress(res)
	g := newGuard(inv, order)
	pending := byDepth(order, g)
	for len(pending) > 0 {
		var batch, later []string
		for _, d := range pending {
			if p, blocked := g.blockedBy(d); blocked {
				g.finish(d, false)
				res.NotAttempted = append(res.NotAttempted, g.notAttempted(d, p))
				continue
			}
			if len(batch) == ecrDeleteBatch || g.waitingForSubject(d) {
				later = append(later, d)
				continue
			}
			batch = append(batch, d)
		}
		if len(batch) == 0 && len(later) > 0 {
			// Referrers naming each other: no order is safe, send them.
			batch, later = later[:min(ecrDeleteBatch, len(later))], later[min(ecrDeleteBatch, len(later)):]
		}
		if len(batch) == 0 {
			break
		}
		out, err := e.API.DeleteImages(ctx, e.Name, batch)
		gone := map[string]bool{}
		for _, d := range out.Deleted {
			gone[d] = true
			res.Deleted = append(res.Deleted, d)
		}
		for _, f := range out.Failed {
			if f.Code == "ImageNotFound" {
				// Gone already (another run, or ECR's own lifecycle): the
				// goal is reached.
				gone[f.Digest] = true
				res.Deleted = append(res.Deleted, f.Digest)
				continue
			}
			res.Failed = append(res.Failed, Failure{Digest: f.Digest, Reason: f.Code + ": " + f.Reason})
		}
		for _, d := range batch {
			g.finish(d, gone[d])
		}
		progress(res)
		if err != nil {
			res.Err = err
			for _, d := range out.NotAttempted {
				res.NotAttempted = append(res.NotAttempted, NotAttempted{Digest: d, Reason: "deleting stopped: " + report.OneLine(err.Error())})
			}
			res.NotAttempted = append(res.NotAttempted, rest(later, "deleting stopped: "+report.OneLine(err.Error()))...)
			return res
		}
		pending = later
	}
	return res
}

// byDepth orders digests by their distance from the planned artifacts that
// nothing planned references, keeping the given order within a level.
func byDepth(order []string, g *guard) []string {
	depth := map[string]int{}
	var depthOf func(d string, seen map[string]bool) int
	depthOf = func(d string, seen map[string]bool) int {
		if v, ok := depth[d]; ok {
			return v
		}
		if seen[d] {
			return 0 // a referrer cycle
		}
		seen[d] = true
		v := 0
		for _, p := range g.parents[d] {
			if g.planned[p] {
				v = max(v, depthOf(p, seen)+1)
			}
		}
		depth[d] = v
		return v
	}
	out := slices.Clone(order)
	for _, d := range out {
		depthOf(d, map[string]bool{})
	}
	slices.SortStableFunc(out, func(a, b string) int { return depth[a] - depth[b] })
	return out
}
