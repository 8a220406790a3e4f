package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/registry-actions/registry/internal/lifecycle"
)

// Report is a repository's inventory as people read it, like
// `aws ecr describe-images … sort_by(imageDetails,&imagePushedAt)` but for
// every registry kind: every image, newest push first, with what belongs to
// it and, when a policy was evaluated, what the policy does to it.
type Report struct {
	Repository string `json:"repository"`
	Kind       string `json:"kind"`
	// Manifests counts every manifest listed; Images the rows below (the
	// top-level images, and referrers whose subject is gone).
	Manifests int           `json:"manifests"`
	Images    []ReportImage `json:"images"`
}

// ReportImage is one image of the repository with everything that goes with it.
type ReportImage struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	// Kind is what the image is (index, image, artifact; for a referrer
	// whose subject is gone: signature, attestation, sbom, referrer).
	Kind string `json:"kind"`
	// PushedAt is the push time, or the creation time the age is counted
	// from where the registry records none; TimeFrom says which.
	PushedAt time.Time `json:"pushedAt,omitzero"`
	TimeFrom Clock     `json:"timeFrom,omitempty"`
	// Size is the image with its platform images and attached artifacts,
	// as the registry reports them (ECR: an index counts as its largest
	// image); 0 when unknown.
	Size      int64    `json:"size"`
	Platforms []string `json:"platforms,omitempty"`
	// Children counts the platform and attestation manifests an index lists.
	Children int `json:"children,omitempty"`
	// Attached are the signatures, attestations, SBOMs and other referrers
	// of the image and of its platform images.
	Attached []Attached `json:"attached,omitempty"`
	// Decision is what the policy does: expire, transition, keep or
	// delete (an orphan, or a leftover of an interrupted run); empty when
	// no policy was evaluated. Rule is the rule that expires or keeps it.
	Decision string `json:"decision,omitempty"`
	Rule     int    `json:"rule,omitempty"`
	Why      string `json:"why,omitempty"`
}

// Attached is an artifact about an image.
type Attached struct {
	Digest string   `json:"digest"`
	Kind   string   `json:"kind"`
	Tags   []string `json:"tags,omitempty"`
	// Of is the platform image it is about, when not the image itself.
	Of string `json:"of,omitempty"`
}

// Decisions.
const (
	DecisionExpire     = "expire"
	DecisionTransition = "transition"
	DecisionKeep       = "keep"
	DecisionDelete     = "delete"
)

// BuildReport lays out an inventory, with the decisions of plan when it is
// not nil.
func BuildReport(inv *Inventory, plan *lifecycle.Plan) *Report {
	r := &Report{Repository: inv.Repository, Kind: string(inv.Kind), Manifests: len(inv.Artifacts), Images: []ReportImage{}}
	byDigest := make(map[string]*lifecycle.Artifact, len(inv.Artifacts))
	for i := range inv.Artifacts {
		byDigest[inv.Artifacts[i].Digest] = &inv.Artifacts[i]
	}
	parents := Parents(inv.Artifacts)
	// Out-edges: what each manifest brings with it.
	out := map[string][]string{}
	for d, ps := range parents {
		for _, p := range ps {
			out[p] = append(out[p], d)
		}
	}
	for p := range out {
		slices.Sort(out[p])
	}
	decisions := decisionsOf(plan)
	for i := range inv.Artifacts {
		a := &inv.Artifacts[i]
		if len(parents[a.Digest]) > 0 {
			continue
		}
		d := inv.Details[a.Digest]
		if d == nil {
			d = &Detail{}
		}
		row := ReportImage{Digest: a.Digest, Tags: a.OwnTags(), Kind: d.Kind, PushedAt: a.PushedAt, TimeFrom: d.Clock, Platforms: slices.Clone(d.Platforms)}
		if row.Tags == nil {
			row.Tags = []string{}
		}
		if len(a.Subjects()) > 0 {
			row.Kind = "orphan " + d.Kind
		}
		// Walk what goes with the image: its children and referrers, and
		// theirs, each once.
		seen := map[string]bool{a.Digest: true}
		covered := map[string]bool{}
		queue := []string{a.Digest}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			ca := byDigest[cur]
			if !covered[cur] {
				row.Size += ca.Size
			}
			for _, c := range ca.Children {
				if ca.SizeIncludesChildren {
					covered[c] = true
				}
			}
			for _, next := range out[cur] {
				if seen[next] {
					continue
				}
				seen[next] = true
				queue = append(queue, next)
				nd := inv.Details[next]
				kind := KindArtifact
				if nd != nil {
					kind = nd.Kind
				}
				switch kind {
				case KindPlatform, KindAttestation, KindIndex, KindImage:
					if slices.Contains(ca.Children, next) {
						row.Children++
						continue
					}
				}
				at := Attached{Digest: next, Kind: kind, Tags: byDigest[next].Tags}
				if cur != a.Digest {
					at.Of = cur
				}
				row.Attached = append(row.Attached, at)
			}
		}
		if dec, ok := decisions[a.Digest]; ok {
			row.Decision, row.Rule, row.Why = dec.decision, dec.rule, dec.why
		}
		r.Images = append(r.Images, row)
	}
	slices.SortStableFunc(r.Images, func(x, y ReportImage) int {
		return cmp.Or(y.PushedAt.Compare(x.PushedAt), strings.Compare(x.Digest, y.Digest))
	})
	return r
}

type decision struct {
	decision string
	rule     int
	why      string
}

func decisionsOf(plan *lifecycle.Plan) map[string]decision {
	out := map[string]decision{}
	if plan == nil {
		return out
	}
	for _, k := range plan.Kept {
		why := "no rule selects it"
		if k.RulePriority > 0 {
			why = fmt.Sprintf("rule %d selects it and keeps it", k.RulePriority)
		}
		out[k.Digest] = decision{DecisionKeep, k.RulePriority, why}
	}
	for _, p := range plan.Protected {
		out[p.Digest] = decision{DecisionKeep, p.RulePriority, p.Reason}
	}
	for _, d := range plan.Expired {
		why := fmt.Sprintf("rule %d", d.RulePriority)
		if d.RuleDescription != "" {
			why += ": " + d.RuleDescription
		}
		out[d.Digest] = decision{DecisionExpire, d.RulePriority, why}
	}
	for _, d := range plan.Transitioned {
		out[d.Digest] = decision{DecisionTransition, d.RulePriority, fmt.Sprintf("rule %d moves it to archive storage", d.RulePriority)}
	}
	for _, o := range plan.Orphans {
		if _, ok := out[o.Digest]; ok {
			continue
		}
		if o.Deleted {
			out[o.Digest] = decision{DecisionDelete, 0, "its subject is gone (delete-orphans)"}
		} else {
			out[o.Digest] = decision{DecisionKeep, 0, "its subject is gone; kept without delete-orphans"}
		}
	}
	for _, f := range plan.Finished {
		out[f.Digest] = decision{DecisionDelete, 0, "left behind by an interrupted run, which deleted what referenced it"}
	}
	return out
}
