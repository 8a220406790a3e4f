package inventory

import (
	"context"
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
}

// ecrDeleteBatch is BatchDeleteImage's limit.
const ecrDeleteBatch = 100

func (e *ECR) Kind() lifecycle.RegistryKind { return lifecycle.RegistryECR }

func (e *ECR) Repository() string { return e.Registry + "/" + e.Name }

// Inventory lists the repository's images (DescribeImages, 1,000 per page)
// and reads every manifest once (BatchGetImage, 100 per call, a few calls at
// a time) to find index children and OCI subjects.
func (e *ECR) Inventory(ctx context.Context) (*Inventory, error) {
	status := ecr.StatusActive
	if e.Archived {
		status = ecr.StatusAny
	}
	images, err := e.API.ListImagesByStatus(ctx, e.Name, status)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{Repository: e.Repository(), Kind: lifecycle.RegistryECR, Clocks: map[Clock]int{}}
	digests := make([]string, 0, len(images))
	for _, img := range images {
		digests = append(digests, img.Digest)
	}
	manifests := map[string]ecr.Manifest{}
	if len(digests) > 0 {
		var failed []ecr.Failure
		manifests, failed, err = e.API.GetManifests(ctx, e.Name, digests)
		if err != nil {
			return nil, err
		}
		for _, f := range failed {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("could not read the manifest of %s (%s: %s): its children and subject are unknown", Short(f.Digest), f.Code, f.Reason))
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
		if img.Status == ecr.StatusArchived || img.Status == ecr.StatusActivating {
			// An image being restored is still archived until ECR says
			// otherwise; standard-class rules must not see it yet.
			a.StorageClass = lifecycle.StorageClassArchive
		}
		if m, ok := manifests[img.Digest]; ok {
			info, err := parseManifest(m.Body, m.MediaType)
			if err != nil {
				inv.Warnings = append(inv.Warnings, fmt.Sprintf("manifest of %s: %v", Short(img.Digest), err))
			} else {
				a.Children = info.childDigests()
				if a.Subject == "" {
					a.Subject = info.Subject
				}
				if a.MediaType == "" {
					a.MediaType = info.MediaType
				}
			}
		}
		inv.Artifacts = append(inv.Artifacts, a)
	}
	inv.Clocks[ClockECRPush] = len(topLevel(inv.Artifacts))
	return inv, nil
}

// Delete deletes with BatchDeleteImage, 100 digests per call, in plan
// order. A platform manifest may share a call with its index: ECR refuses
// to delete it while the index stays. A signature or other referrer has no
// such protection, so it waits for a later call, after ECR confirmed its
// subject's deletion; calls are filled with whatever is ready, so a plan of
// D manifests costs ⌈D/100⌉ calls unless referrers must wait for a call of
// their own.
func (e *ECR) Delete(ctx context.Context, inv *Inventory, order []string) *Deletion {
	res := &Deletion{}
	g := newGuard(inv, order)
	pending := order
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
