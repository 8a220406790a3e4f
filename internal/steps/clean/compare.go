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
// digests where the plans differ, each with the reason when it is known.
// AWS judges every manifest alone: it expires untagged platform manifests an
// index still needs (ECR then refuses to delete them) and leaves signatures
// of expired images for later.
func compareWithAWS(ctx context.Context, opts Options, policy *lifecycle.Policy, t target, plan *lifecycle.Plan, parents map[string][]string) *Comparison {
	results, err := t.ecr.PreviewLifecyclePolicy(ctx, t.ecrName, string(policy.JSON()), opts.AWSPreview)
	if err != nil {
		return &Comparison{Error: "AWS's lifecycle policy preview is unavailable: " + report.OneLine(err.Error())}
	}
	return compare(results, plan, parents, opts.Protected)
}

type ourAction struct {
	action string // "expire", "transition", "delete with …", "orphan"
	rule   int
}

func compare(results []ecr.PreviewResult, plan *lifecycle.Plan, parents map[string][]string, protected []string) *Comparison {
	c := &Comparison{}
	ours := map[string]ourAction{}
	tags := map[string][]string{}
	for _, d := range plan.Expired {
		ours[d.Digest] = ourAction{action: "expire", rule: d.RulePriority}
		tags[d.Digest] = d.Tags
		for _, k := range d.Cascade {
			ours[k.Digest] = ourAction{action: cascadeLabel(k)}
			tags[k.Digest] = k.Tags
		}
	}
	for _, d := range plan.Transitioned {
		ours[d.Digest] = ourAction{action: "transition", rule: d.RulePriority}
		tags[d.Digest] = d.Tags
	}
	for _, o := range plan.Orphans {
		if o.Deleted {
			ours[o.Digest] = ourAction{action: "delete: its subject is gone"}
			tags[o.Digest] = o.Tags
		}
	}
	isProtected := map[string]bool{}
	for _, d := range protected {
		isProtected[d] = true
	}
	for _, p := range plan.Protected {
		isProtected[p.Digest] = true
	}

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
			diff.Why = "protected: pushed earlier in this run, or referenced by something that was"
		case theyAct && !weAct && len(parents[d]) > 0:
			diff.Why = fmt.Sprintf("still referenced by %s, which stays; AWS judges every manifest alone", shortList(parents[d]))
		case weAct && !theyAct && o.rule == 0:
			diff.Why = "goes with what references it; AWS judges it alone"
		case weAct && theyAct:
			diff.Why = "the plans pick different rules"
		default:
			diff.Why = "the repository changed between the two evaluations, or the push times differ"
		}
		c.Differences = append(c.Differences, diff)
	}
	return c
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
