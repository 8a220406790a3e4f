// Package inventory reads what a repository holds — every manifest, with its
// tags, its age, its size, the children an index lists and the subject a
// referrer names — from ECR, from GHCR or from any OCI registry, in the shape
// the lifecycle engine judges ([lifecycle.Artifact]); and deletes manifests
// in the order a plan gives, never a child or referrer whose parent could not
// be deleted.
//
// Each registry kind has its own sources of truth: ECR's DescribeImages and
// BatchGetImage; GitHub's Packages API (versions, created_at, deletion by
// version id) with manifests read from ghcr.io; and for other registries the
// distribution API alone, where the tags list is the only listing, push
// times are unknown (ages come from the image's own creation time) and
// untagged manifests can be found only through what references them.
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/report"
)

// Clock names where artifact ages come from.
type Clock string

// Clocks.
const (
	ClockECRPush    Clock = "ECR push time (imagePushedAt)"
	ClockGitHub     Clock = "GitHub package version created_at"
	ClockAnnotation Clock = "the image's org.opencontainers.image.created annotation"
	ClockConfig     Clock = "the image config's created time"
)

// AnnotationCreated is the OCI annotation holding an image's creation time.
const AnnotationCreated = "org.opencontainers.image.created"

// Inventory is one repository's manifests as the lifecycle engine sees them.
type Inventory struct {
	// Repository is the full repository name, e.g. ghcr.io/acme/app.
	Repository string                 `json:"repository"`
	Kind       lifecycle.RegistryKind `json:"kind"`
	Artifacts  []lifecycle.Artifact   `json:"-"`
	// Clocks counts, per clock, the top-level artifacts whose age it gave.
	Clocks map[Clock]int `json:"clocks"`
	// Notes are facts about the listing a reader should know (what the
	// registry cannot show); Warnings are things that went wrong but did not
	// stop the listing.
	Notes    []string `json:"notes,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Unreadable are manifests the registry lists but would not return (a
	// 404 for a listed version, a manifest that is not JSON). A plan made
	// from such a listing could judge an index without its children, so
	// Consistent refuses it.
	Unreadable []Unreadable `json:"unreadable,omitempty"`
	// Details says, per digest, what a reader of an inventory report wants
	// to know beyond the lifecycle fields.
	Details map[string]*Detail `json:"-"`

	// versionIDs maps digests to GitHub package version ids (GHCR).
	versionIDs map[string]int64
}

// Unreadable is a listed manifest that could not be read.
type Unreadable struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags,omitempty"`
	Reason string   `json:"reason"`
}

// Detail is what an inventory report shows about a manifest besides its
// lifecycle fields.
type Detail struct {
	// Kind is what the manifest is: one of the Kind* constants.
	Kind string `json:"kind"`
	// Platforms: an index's platform images, or an image's own platform
	// when its config was read.
	Platforms []string `json:"platforms,omitempty"`
	// Clock says where PushedAt came from.
	Clock Clock `json:"clock,omitempty"`
}

// Kinds of manifests in a report.
const (
	KindIndex       = "index"
	KindImage       = "image"
	KindPlatform    = "platform image"
	KindAttestation = "attestation manifest"
	KindSignature   = "signature"
	KindInToto      = "attestation"
	KindSBOM        = "sbom"
	KindReferrers   = "referrers index"
	KindReferrer    = "referrer"
	KindArtifact    = "artifact"
)

// ErrInconsistent: the registry listed a manifest it would not return.
var ErrInconsistent = errors.New("the repository listing is inconsistent")

// Consistent returns an error naming the unreadable manifests, if any: a
// plan must not be made, nor deletions sent, from such a listing.
func (inv *Inventory) Consistent() error {
	if len(inv.Unreadable) == 0 {
		return nil
	}
	var names []string
	for i, u := range inv.Unreadable {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(inv.Unreadable)-3))
			break
		}
		names = append(names, Short(u.Digest)+lifecycle.DescribeTags(u.Tags)+": "+u.Reason)
	}
	return fmt.Errorf("%w: %s lists %s it cannot return (%s), so what references what is unknown and nothing was deleted: run again; if it persists, the registry holds a broken manifest",
		ErrInconsistent, inv.Repository, plural(len(inv.Unreadable), "manifest"), strings.Join(names, "; "))
}

func (inv *Inventory) detail(digest string) *Detail {
	if inv.Details == nil {
		inv.Details = map[string]*Detail{}
	}
	d := inv.Details[digest]
	if d == nil {
		d = &Detail{}
		inv.Details[digest] = d
	}
	return d
}

// Store is one repository in a registry.
type Store interface {
	// Kind is the registry kind, for validating a policy against what the
	// registry can honour.
	Kind() lifecycle.RegistryKind
	// Repository is the full repository name.
	Repository() string
	// Inventory lists every manifest the registry shows. Called again on
	// the same Store, it lists afresh but reads only manifests it has not
	// read before (a digest names its content for good).
	Inventory(ctx context.Context) (*Inventory, error)
	// Delete deletes digests in the given order (a plan's Delete list:
	// parents before children). A digest whose parent in the list was not
	// deleted is not attempted: when an index or an image stays, so do its
	// platform manifests and signatures. Per-digest failures are reported,
	// not returned as errors; Deletion.Err says why deleting stopped early.
	// progress, when not nil, is called with the outcome so far after each
	// request, so that a caller can record the state of a partial run.
	Delete(ctx context.Context, inv *Inventory, order []string, progress func(*Deletion)) *Deletion
}

// Deletion is the outcome of Store.Delete.
type Deletion struct {
	Deleted []string  `json:"deleted"`
	Failed  []Failure `json:"failed,omitempty"`
	// NotAttempted were never sent: deleting stopped (Err), or a parent
	// was not deleted.
	NotAttempted []NotAttempted `json:"notAttempted,omitempty"`
	// Err is why deleting stopped before the end of the list, nil if every
	// digest was tried.
	Err error `json:"-"`
}

// Failure is a digest the registry refused to delete.
type Failure struct {
	Digest string `json:"digest"`
	Reason string `json:"reason"`
}

// NotAttempted is a digest left alone, and why.
type NotAttempted struct {
	Digest string `json:"digest"`
	Reason string `json:"reason"`
}

// Parents maps each digest to the digests that reference it in the
// inventory: the indexes listing it and, for a referrer, the subjects it
// names (its OCI subject, or what its proven cosign tag names).
func Parents(artifacts []lifecycle.Artifact) map[string][]string {
	indexes, subjects := parentEdges(artifacts)
	for d, ps := range subjects {
		for _, p := range ps {
			if !slices.Contains(indexes[d], p) {
				indexes[d] = append(indexes[d], p)
			}
		}
	}
	return indexes
}

// parentEdges returns, per digest, the indexes listing it and the subjects
// it names, counting only artifacts present in the inventory.
func parentEdges(artifacts []lifecycle.Artifact) (indexes, subjects map[string][]string) {
	present := make(map[string]bool, len(artifacts))
	for i := range artifacts {
		present[artifacts[i].Digest] = true
	}
	indexes, subjects = map[string][]string{}, map[string][]string{}
	add := func(m map[string][]string, child, parent string) {
		if child == parent || !present[child] || !present[parent] || slices.Contains(m[child], parent) {
			return
		}
		m[child] = append(m[child], parent)
	}
	for i := range artifacts {
		a := &artifacts[i]
		for _, c := range a.Children {
			add(indexes, c, a.Digest)
		}
		for _, s := range a.Subjects() {
			add(subjects, a.Digest, s)
		}
	}
	return indexes, subjects
}

// guard decides, while deleting in plan order, whether a digest may go: not
// once a parent that was to be deleted before it has stayed.
type guard struct {
	parents  map[string][]string
	subjects map[string][]string // the subject parents only
	planned  map[string]bool
	done     map[string]bool // sent (or given up), whatever the outcome
	deleted  map[string]bool
}

func newGuard(inv *Inventory, order []string) *guard {
	_, subjects := parentEdges(inv.Artifacts)
	g := &guard{parents: Parents(inv.Artifacts), subjects: subjects, planned: map[string]bool{}, done: map[string]bool{}, deleted: map[string]bool{}}
	for _, d := range order {
		g.planned[d] = true
	}
	return g
}

// blockedBy returns a planned parent of d that was tried and stayed.
func (g *guard) blockedBy(d string) (string, bool) {
	for _, p := range g.parents[d] {
		if g.planned[p] && g.done[p] && !g.deleted[p] {
			return p, true
		}
	}
	return "", false
}

// waitingForSubject reports whether d is a referrer whose planned subject
// has not been tried yet.
func (g *guard) waitingForSubject(d string) bool {
	for _, p := range g.subjects[d] {
		if g.planned[p] && !g.done[p] {
			return true
		}
	}
	return false
}

func (g *guard) finish(d string, deleted bool) {
	g.done[d] = true
	if deleted {
		g.deleted[d] = true
	}
}

func (g *guard) notAttempted(d, parent string) NotAttempted {
	return NotAttempted{Digest: d, Reason: fmt.Sprintf("kept because %s, which references it, was not deleted", Short(parent))}
}

// deleteOneByOne deletes in order with one call per digest. stop reports
// whether an error ends all deletions (a permission missing) rather than
// this digest's alone.
func deleteOneByOne(ctx context.Context, inv *Inventory, order []string, progress func(*Deletion), del func(ctx context.Context, digest string) error, stop func(error) bool) *Deletion {
	res := &Deletion{}
	g := newGuard(inv, order)
	if progress == nil {
		progress = func(*Deletion) {}
	}
	defer progress(res)
	for i, d := range order {
		if i > 0 {
			progress(res)
		}
		if ctx.Err() != nil {
			res.Err = ctx.Err()
			res.NotAttempted = append(res.NotAttempted, rest(order[i:], "deleting stopped: "+ctx.Err().Error())...)
			return res
		}
		if p, blocked := g.blockedBy(d); blocked {
			g.finish(d, false)
			res.NotAttempted = append(res.NotAttempted, g.notAttempted(d, p))
			continue
		}
		// Plan order puts parents first; a parent still ahead is a
		// referrer cycle, which has no safe order.
		err := del(ctx, d)
		g.finish(d, err == nil)
		if err == nil {
			res.Deleted = append(res.Deleted, d)
			continue
		}
		if stop(err) {
			res.Err = err
			res.Failed = append(res.Failed, Failure{Digest: d, Reason: report.OneLine(err.Error())})
			res.NotAttempted = append(res.NotAttempted, rest(order[i+1:], "deleting stopped at the first refusal: "+report.OneLine(err.Error()))...)
			return res
		}
		res.Failed = append(res.Failed, Failure{Digest: d, Reason: report.OneLine(err.Error())})
	}
	return res
}

func rest(digests []string, reason string) []NotAttempted {
	out := make([]NotAttempted, 0, len(digests))
	for _, d := range digests {
		out = append(out, NotAttempted{Digest: d, Reason: reason})
	}
	return out
}

// manifestInfo is what a manifest says about its place in the graph.
type manifestInfo struct {
	MediaType    string
	ArtifactType string
	Children     []childRef
	Subject      string
	ConfigDigest string
	ConfigType   string
	Layers       []layerRef
	// Size is the manifest plus, for an image, its config and layers.
	Size int64
	// Created is the org.opencontainers.image.created annotation.
	Created time.Time
	IsIndex bool
}

type childRef struct {
	Digest   string
	Platform string // os/arch, "" when not given
}

type layerRef struct {
	Digest    string
	MediaType string
	Size      int64
}

// isAttestation reports whether an index entry is a buildx attestation
// manifest rather than a platform image.
func (c childRef) isAttestation() bool { return strings.HasPrefix(c.Platform, "unknown/unknown") }

// Media types of indexes.
const (
	mediaOCIIndex    = "application/vnd.oci.image.index.v1+json"
	mediaDockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIManifest = "application/vnd.oci.image.manifest.v1+json"
)

func parseManifest(body []byte, mediaType string) (manifestInfo, error) {
	var m struct {
		MediaType    string `json:"mediaType"`
		ArtifactType string `json:"artifactType"`
		Config       *struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"config"`
		Layers []struct {
			Digest    string `json:"digest"`
			MediaType string `json:"mediaType"`
			Size      int64  `json:"size"`
		} `json:"layers"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
				Variant      string `json:"variant"`
			} `json:"platform"`
		} `json:"manifests"`
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return manifestInfo{}, fmt.Errorf("manifest is not JSON: %v", err)
	}
	info := manifestInfo{MediaType: mediaType, ArtifactType: m.ArtifactType, Size: int64(len(body))}
	if info.MediaType == "" {
		info.MediaType = m.MediaType
	}
	info.IsIndex = info.MediaType == mediaOCIIndex || info.MediaType == mediaDockerList || (info.MediaType == "" && m.Manifests != nil)
	if info.MediaType == "" {
		info.MediaType = mediaOCIManifest
		if info.IsIndex {
			info.MediaType = mediaOCIIndex
		}
	}
	for _, c := range m.Manifests {
		if c.Digest == "" {
			continue
		}
		ref := childRef{Digest: c.Digest}
		if c.Platform != nil {
			ref.Platform = c.Platform.OS + "/" + c.Platform.Architecture
			if c.Platform.Variant != "" {
				ref.Platform += "/" + c.Platform.Variant
			}
		}
		info.Children = append(info.Children, ref)
	}
	if m.Subject != nil {
		info.Subject = m.Subject.Digest
	}
	if !info.IsIndex && m.Config != nil {
		info.ConfigDigest = m.Config.Digest
		info.ConfigType = m.Config.MediaType
		info.Size += m.Config.Size
		for _, l := range m.Layers {
			info.Size += l.Size
			info.Layers = append(info.Layers, layerRef{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size})
		}
	}
	if s := m.Annotations[AnnotationCreated]; s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			info.Created = t
		}
	}
	return info, nil
}

func (m manifestInfo) childDigests() []string {
	if len(m.Children) == 0 {
		return nil
	}
	out := make([]string, 0, len(m.Children))
	for _, c := range m.Children {
		if !slices.Contains(out, c.Digest) {
			out = append(out, c.Digest)
		}
	}
	return out
}

// topLevel reports which artifacts the rules judge: those no index lists and
// no present subject claims. Only they need an age.
func topLevel(artifacts []lifecycle.Artifact) map[string]bool {
	parents := Parents(artifacts)
	out := map[string]bool{}
	for i := range artifacts {
		a := &artifacts[i]
		if len(parents[a.Digest]) == 0 && len(a.Subjects()) == 0 {
			out[a.Digest] = true
		}
	}
	return out
}

// Short abbreviates a digest for messages: sha256:0123456789ab.
func Short(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}
