package clean

import (
	"fmt"
	"slices"
	"strings"

	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/report"
)

// Recheck is what the listing made just before deleting changed in a plan.
type Recheck struct {
	// Dropped were planned but are not deleted: their tags changed, a new
	// index or referrer references them, the policy no longer expires them
	// on the fresh listing, or something referencing them stays.
	Dropped []Dropped `json:"dropped,omitempty"`
	// Gone were planned but someone else deleted them first.
	Gone []string `json:"gone,omitempty"`
	// Appeared counts manifests listed now and not before: never deleted by
	// this run.
	Appeared int `json:"appeared"`
}

// Dropped is a planned deletion taken out of the plan, and why.
type Dropped struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags,omitempty"`
	Reason string   `json:"reason"`
}

// recheck compares a plan made from the first listing with a fresh one and
// returns what may still be deleted, in plan order: only what both listings
// plan, untouched since, and referenced by nothing that stays.
func recheck(plan *lifecycle.Plan, first, fresh *inventory.Inventory, freshPlan *lifecycle.Plan) ([]string, *Recheck) {
	rc := &Recheck{}
	before := map[string]*lifecycle.Artifact{}
	for i := range first.Artifacts {
		before[first.Artifacts[i].Digest] = &first.Artifacts[i]
	}
	now := map[string]*lifecycle.Artifact{}
	for i := range fresh.Artifacts {
		a := &fresh.Artifacts[i]
		now[a.Digest] = a
		if before[a.Digest] == nil {
			rc.Appeared++
		}
	}
	stillPlanned := map[string]bool{}
	for _, d := range freshPlan.Delete {
		stillPlanned[d] = true
	}
	// What references each manifest now, and which of those are new.
	parents := inventory.Parents(fresh.Artifacts)
	newReferrers := map[string][]string{}
	for i := range fresh.Artifacts {
		a := &fresh.Artifacts[i]
		if before[a.Digest] != nil {
			continue
		}
		for _, c := range a.Children {
			newReferrers[c] = append(newReferrers[c], "the new index "+inventory.Short(a.Digest)+lifecycle.DescribeTags(a.OwnTags()))
		}
		for _, s := range a.Subjects() {
			newReferrers[s] = append(newReferrers[s], "the new referrer "+inventory.Short(a.Digest))
		}
	}

	keep := map[string]bool{}
	drop := func(d, reason string) {
		rc.Dropped = append(rc.Dropped, Dropped{Digest: d, Tags: before[d].Tags, Reason: reason})
	}
	for _, d := range plan.Delete {
		cur := now[d]
		switch {
		case cur == nil:
			rc.Gone = append(rc.Gone, d)
		case !sameTags(before[d].Tags, cur.Tags):
			drop(d, fmt.Sprintf("its tags changed since it was listed (%s, now %s)", tagList(before[d].Tags), tagList(cur.Tags)))
		case len(newReferrers[d]) > 0:
			drop(d, strings.Join(newReferrers[d], ", ")+" references it now")
		case !stillPlanned[d]:
			drop(d, "the fresh listing no longer deletes it")
		default:
			keep[d] = true
		}
	}
	// What stays keeps what it references: a child whose index stays, a
	// signature whose image stays.
	for changed := true; changed; {
		changed = false
		for _, d := range plan.Delete {
			if !keep[d] {
				continue
			}
			for _, p := range parents[d] {
				if !keep[p] && now[p] != nil {
					keep[d] = false
					changed = true
					drop(d, "it goes with "+inventory.Short(p)+", which stays")
					break
				}
			}
		}
	}
	var order []string
	for _, d := range plan.Delete {
		if keep[d] {
			order = append(order, d)
		}
	}
	return order, rc
}

func tagList(tags []string) string {
	if len(tags) == 0 {
		return "untagged"
	}
	return strings.Join(tags, ", ")
}

// summaryLines says what the re-check changed, one line per reason.
func (rc *Recheck) summaryLines() []string {
	if rc == nil {
		return nil
	}
	var out []string
	for _, d := range rc.Dropped {
		out = append(out, fmt.Sprintf("%s%s not deleted: %s", report.Code(inventory.Short(d.Digest)), tagSuffix(d.Tags), report.Escape(d.Reason)))
	}
	switch n := len(rc.Gone); {
	case n == 1:
		out = append(out, "1 planned manifest was deleted by someone else since the listing")
	case n > 1:
		out = append(out, fmt.Sprintf("%d planned manifests were deleted by someone else since the listing", n))
	}
	if rc.Appeared > 0 {
		out = append(out, fmt.Sprintf("%s pushed since the listing, left for the next run", plural(rc.Appeared, "manifest")))
	}
	slices.Sort(out)
	return out
}
