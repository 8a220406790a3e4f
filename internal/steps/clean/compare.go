package clean

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/report"
)

// Comparison sets AWS's own preview of the policy (ECR's
// GetLifecyclePolicyPreview) beside our plan.
type Comparison struct {
	// Error says why AWS's preview is unavailable; the rest is then empty.
	Error string `json:"error,omitempty"`
	// AWSExpire is how many images AWS would expire (and transition).
	AWSExpire     int `json:"awsExpire"`
	AWSTransition int `json:"awsTransition,omitempty"`
	// Agree counts digests both plans act on the same way, by the same rule.
	Agree       int          `json:"agree"`
	Differences []Difference `json:"differences,omitempty"`
}

// Difference is one digest the two plans treat differently.
type Difference struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags,omitempty"`
	AWS    string   `json:"aws"`
	Ours   string   `json:"ours"`
	Why    string   `json:"why"`
}

// compareWithAWS runs ECR's preview of the same policy text and lists the
// images where the plans differ, each with the difference of evaluation
// that explains it (the README's table of differences names them).
func compareWithAWS(ctx context.Context, opts Options, policy *lifecycle.Policy, t target, plan *lifecycle.Plan, inv *inventory.Inventory) *Comparison {
	results, err := t.ecr.PreviewLifecyclePolicy(ctx, t.ecrName, policy.Text(), opts.AWSPreview)
	if err != nil {
		return &Comparison{Error: "AWS's lifecycle policy preview is unavailable: " + report.OneLine(err.Error())}
	}
	return compare(results, plan, inv, opts.Protected)
}

type ourAction struct {
	action string // "expire", "transition", "delete with …", "orphan"
	rule   int
	// why is the difference of evaluation that explains a deletion AWS
	// does not make.
	why string
}

// Differences between our evaluation and ECR's, as the README's table
// names them.
const (
	WhyChildren    = "index children: deleted with their index here; ECR leaves them as untagged images when the index expires, for an untagged rule to expire later (or never)"
	WhyAttachment  = "cosign attachment: a sha256-…-tagged signature or attestation of this repository's image is deleted with it here; ECR judges it as a tagged image of its own"
	WhyReferrer    = "referrer: deleted with its subject here; ECR removes the referrers of a deleted subject itself, after it"
	WhyListedBy    = "index children: listed by an index that stays, so never judged alone here; ECR does not delete a manifest an index lists"
	WhyAttachedTo  = "cosign attachment: attached to an image that stays, so never judged alone here; ECR judges a sha256-…-tagged signature or attestation as a tagged image of its own"
	WhyCounts      = "counts: here imageCountMoreThan counts images only, not their signatures, attestations or platform manifests, so the two plans keep different images"
	WhyGrace       = "untagged grace: untagged manifests pushed within untagged-grace are never deleted here; ECR has no grace period"
	WhyRestoring   = "restoring: an image being restored from archive (ACTIVATING) is never selected here"
	WhyProtected   = "protected: pushed earlier in this run, or referenced by something that was"
	WhyOrphan      = "orphan: its subject is gone, and delete-orphans deletes it here"
	WhyLeftover    = "leftover: an interrupted run deleted what referenced it; it is finished here"
	WhyListingSkew = "the repository changed between the two evaluations, or the push times differ"
)

func compare(results []ecr.PreviewResult, plan *lifecycle.Plan, inv *inventory.Inventory, protected []string) *Comparison {
	c := &Comparison{}
	ours := map[string]ourAction{}
	tags := map[string][]string{}
	arts := map[string]*lifecycle.Artifact{}
	for i := range inv.Artifacts {
		arts[inv.Artifacts[i].Digest] = &inv.Artifacts[i]
	}
	for _, d := range plan.Expired {
		ours[d.Digest] = ourAction{action: "expire", rule: d.RulePriority}
		tags[d.Digest] = d.Tags
		for _, k := range d.Cascade {
			ours[k.Digest] = ourAction{action: cascadeLabel(k), why: cascadeWhy(k, arts[k.Digest])}
			tags[k.Digest] = k.Tags
		}
	}
	for _, d := range plan.Transitioned {
		ours[d.Digest] = ourAction{action: "transition", rule: d.RulePriority}
		tags[d.Digest] = d.Tags
	}
	for _, o := range plan.Orphans {
		if o.Deleted {
			ours[o.Digest] = ourAction{action: "delete: its subject is gone", why: WhyOrphan}
			tags[o.Digest] = o.Tags
		}
	}
	for _, f := range plan.Finished {
		ours[f.Digest] = ourAction{action: "delete: left by an interrupted run", why: WhyLeftover}
		tags[f.Digest] = f.Tags
		for _, k := range f.Cascade {
			ours[k.Digest] = ourAction{action: cascadeLabel(k), why: cascadeWhy(k, arts[k.Digest])}
		}
	}
	isProtected := map[string]bool{}
	for _, d := range protected {
		isProtected[d] = true
	}
	held := map[string]string{}
	for _, p := range plan.Protected {
		switch {
		case strings.Contains(p.Reason, "untagged grace"):
			held[p.Digest] = WhyGrace
		case p.Reason == lifecycle.ReasonRestoring:
			held[p.Digest] = WhyRestoring
		default:
			isProtected[p.Digest] = true
		}
	}
	parents := inventory.Parents(inv.Artifacts)

	theirs := map[string]ecr.PreviewResult{}
	for _, r := range results {
		theirs[r.Digest] = r
		if strings.EqualFold(r.Action, "TRANSITION") {
			c.AWSTransition++
		} else {
			c.AWSExpire++
		}
		if _, ok := tags[r.Digest]; !ok {
			tags[r.Digest] = r.Tags
		}
	}

	var digests []string
	for d := range ours {
		digests = append(digests, d)
	}
	for d := range theirs {
		if _, ok := ours[d]; !ok {
			digests = append(digests, d)
		}
	}
	slices.Sort(digests)
	for _, d := range digests {
		o, weAct := ours[d]
		r, theyAct := theirs[d]
		awsAction := ""
		if theyAct {
			awsAction = strings.ToLower(r.Action)
			if awsAction == "" {
				awsAction = "expire"
			}
		}
		if weAct && theyAct && (o.rule == r.RulePriority && o.action == awsAction || o.rule == 0 && awsAction == "expire") {
			// Same rule, or both delete it (we with what references it).
			c.Agree++
			continue
		}
		diff := Difference{Digest: d, Tags: tags[d], AWS: "keep", Ours: "keep"}
		if theyAct {
			diff.AWS = fmt.Sprintf("%s (rule %d)", awsAction, r.RulePriority)
		}
		if weAct {
			diff.Ours = o.action
			if o.rule > 0 {
				diff.Ours = fmt.Sprintf("%s (rule %d)", o.action, o.rule)
			}
		}
		switch {
		case theyAct && !weAct && isProtected[d]:
			diff.Why = WhyProtected
		case theyAct && !weAct && held[d] != "":
			diff.Why = held[d]
		case theyAct && !weAct && len(parents[d]) > 0 && arts[d] != nil && len(arts[d].Subjects()) > 0:
			diff.Why = WhyAttachedTo + " (" + shortList(parents[d]) + ")"
		case theyAct && !weAct && len(parents[d]) > 0:
			diff.Why = WhyListedBy + " (" + shortList(parents[d]) + ")"
		case weAct && !theyAct && o.why != "":
			diff.Why = o.why
		case weAct && theyAct, theyAct && !weAct && arts[d] != nil:
			diff.Why = WhyCounts
		default:
			diff.Why = WhyListingSkew
		}
		c.Differences = append(c.Differences, diff)
	}
	return c
}

func cascadeWhy(k lifecycle.Cascaded, a *lifecycle.Artifact) string {
	switch {
	case k.Kind == lifecycle.CascadeChild:
		return WhyChildren
	case a != nil && a.AttachedTo == k.Parent:
		return WhyAttachment
	}
	return WhyReferrer
}

func cascadeLabel(k lifecycle.Cascaded) string {
	if k.Kind == lifecycle.CascadeChild {
		return "delete with index " + inventory.Short(k.Parent)
	}
	return "delete with subject " + inventory.Short(k.Parent)
}

func shortList(digests []string) string {
	out := make([]string, len(digests))
	for i, d := range digests {
		out[i] = inventory.Short(d)
	}
	return strings.Join(out, ", ")
}
