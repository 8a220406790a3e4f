package clean

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/registry-actions/registry/internal/inventory"
)

// The journal is the state of each planned deletion, kept in the plan file
// as the run goes. The registry stays the source of truth: the journal only
// says which manifests an earlier run meant to delete with an image it did
// delete, and the next run deletes those only if the fresh listing agrees
// (present, same tags, referenced by nothing that stays, not protected).

// Journal states.
const (
	StatePlanned      = "planned"
	StateDeleted      = "deleted"
	StateGone         = "gone"    // deleted by someone else before this run got to it
	StateDropped      = "dropped" // the re-check took it out of the plan
	StateRefused      = "refused"
	StateNotAttempted = "not-attempted"
)

// JournalEntry is one planned deletion and what became of it.
type JournalEntry struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags,omitempty"`
	// Parents are the planned manifests referencing it (an index listing
	// it, the subject it is about): it is deleted after them.
	Parents []string `json:"parents,omitempty"`
	State   string   `json:"state"`
	Reason  string   `json:"reason,omitempty"`
	// Leftover: an earlier run left it behind; this run finishes it.
	Leftover bool `json:"leftover,omitempty"`
}

// newJournal lists the deletions of an order, each with its planned parents.
func newJournal(inv *inventory.Inventory, order []string, leftovers map[string]bool) []JournalEntry {
	planned := map[string]bool{}
	for _, d := range order {
		planned[d] = true
	}
	parents := inventory.Parents(inv.Artifacts)
	tags := map[string][]string{}
	for _, a := range inv.Artifacts {
		tags[a.Digest] = a.Tags
	}
	out := make([]JournalEntry, 0, len(order))
	for _, d := range order {
		e := JournalEntry{Digest: d, Tags: tags[d], State: StatePlanned, Leftover: leftovers[d]}
		for _, p := range parents[d] {
			if planned[p] {
				e.Parents = append(e.Parents, p)
			}
		}
		out = append(out, e)
	}
	return out
}

// record brings the journal up to date with a deletion's outcome so far.
func record(journal []JournalEntry, del *inventory.Deletion) {
	state := map[string][2]string{}
	for _, d := range del.Deleted {
		state[d] = [2]string{StateDeleted, ""}
	}
	for _, f := range del.Failed {
		state[f.Digest] = [2]string{StateRefused, f.Reason}
	}
	for _, n := range del.NotAttempted {
		state[n.Digest] = [2]string{StateNotAttempted, n.Reason}
	}
	for i := range journal {
		if s, ok := state[journal[i].Digest]; ok && journal[i].State != StateDropped && journal[i].State != StateGone {
			journal[i].State, journal[i].Reason = s[0], s[1]
		}
	}
}

// leftovers returns what a journal says an earlier run left behind: planned
// deletions that did not happen although what references them was deleted,
// and leftovers it carried itself without finishing them. Each comes with
// the tags it had, which the fresh listing must still show.
func leftovers(journal []JournalEntry) map[string][]string {
	state := map[string]string{}
	for _, e := range journal {
		state[e.Digest] = e.State
	}
	out := map[string][]string{}
	for _, e := range journal {
		if e.State == StateDeleted || e.State == StateGone || e.State == StateDropped {
			continue
		}
		orphaned := e.Leftover
		for _, p := range e.Parents {
			if state[p] == StateDeleted || state[p] == StateGone {
				orphaned = true
			}
		}
		if orphaned {
			out[e.Digest] = e.Tags
		}
	}
	return out
}

// previousJournals reads the journals of the plan file an earlier run left in
// the output directory, by repository. No file is no journal; a file this
// program cannot read is reported, not trusted.
func previousJournals(path string) (map[string][]JournalEntry, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the previous plan %s: %w", path, err)
	}
	var doc struct {
		Version      int `json:"version"`
		Repositories []struct {
			Repository string         `json:"repository"`
			Journal    []JournalEntry `json:"journal"`
		} `json:"repositories"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != planVersion {
		return nil, fmt.Errorf("the previous plan %s is not a plan this version writes: what an interrupted run left is finished by the policy alone", path)
	}
	out := map[string][]JournalEntry{}
	for _, r := range doc.Repositories {
		out[r.Repository] = r.Journal
	}
	return out, nil
}

// sameTags compares tag sets.
func sameTags(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
