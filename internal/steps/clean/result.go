package clean

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/report"
)

// Result is what clean did. Its JSON form is the plan file.
type Result struct {
	Mode string `json:"mode"`
	// Policy is the effective policy, canonical ECR JSON.
	Policy        json.RawMessage `json:"policy"`
	PolicySource  string          `json:"policySource"`
	FromShorthand bool            `json:"fromShorthand,omitempty"`
	EvaluatedAt   time.Time       `json:"evaluatedAt"`
	MaxDeletions  int             `json:"maxDeletions"`
	DeleteOrphans bool            `json:"deleteOrphans"`
	UntaggedGrace string          `json:"untaggedGrace"`
	Protected     []string        `json:"protected,omitempty"`

	Repositories []RepositoryResult `json:"repositories"`
	Totals       Totals             `json:"totals"`
	// Blocked says why enforce deleted nothing (max-deletions).
	Blocked  string   `json:"blocked,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	PlanFile string   `json:"-"`
	// PlanPath is PlanFile as the plan output shows it.
	PlanPath string `json:"-"`
	// InventoryFile is the JSON inventory report; InventoryPath as the
	// inventory output shows it.
	InventoryFile    string `json:"-"`
	InventoryPath    string `json:"-"`
	inventoryWritten bool
	planWritten      bool
}

// RepositoryResult is one repository's plan and what became of it.
type RepositoryResult struct {
	Repository string                  `json:"repository"`
	Kind       string                  `json:"kind"`
	Clocks     map[inventory.Clock]int `json:"clocks,omitempty"`
	Notes      []string                `json:"notes,omitempty"`
	Warnings   []string                `json:"warnings,omitempty"`
	Plan       *lifecycle.Plan         `json:"plan,omitempty"`
	// AWS is the comparison with ECR's own preview (ECR, preview mode).
	AWS *Comparison `json:"awsPreview,omitempty"`
	// PolicyChange is what apply did to the repository's policy.
	PolicyChange *PolicyChange `json:"policyChange,omitempty"`
	// Recheck is what the listing just before deleting changed (enforce).
	Recheck *Recheck `json:"recheck,omitempty"`
	// Deletion is what enforce deleted.
	Deletion *inventory.Deletion `json:"deletion,omitempty"`
	// Journal is the state of every planned deletion, kept as the run goes:
	// the next run finishes what a stopped run left behind.
	Journal []JournalEntry `json:"journal,omitempty"`
	// Aborted says why nothing was deleted in this repository (a listing
	// that lists a manifest it cannot return).
	Aborted    string                 `json:"aborted,omitempty"`
	Unreadable []inventory.Unreadable `json:"unreadable,omitempty"`
	// Inventory is the repository's inventory report (its own file).
	Inventory *inventory.Report `json:"-"`

	parents map[string][]string
	sizes   map[string]int64
	// coveredBy lists, for an ECR platform manifest, the indexes whose
	// reported size already counts it.
	coveredBy map[string][]string
}

// PolicyChange is the outcome of apply on one ECR repository.
type PolicyChange struct {
	Current   string `json:"current,omitempty"`
	Diff      string `json:"diff"`
	Applied   bool   `json:"applied"`
	Unchanged bool   `json:"unchanged,omitempty"`
}

// Totals add up every repository.
type Totals struct {
	Repositories int `json:"repositories"`
	Manifests    int `json:"manifests"`
	// Planned is how many manifests the plans delete.
	Planned      int `json:"planned"`
	Expired      int `json:"expired"`
	Deleted      int `json:"deleted"`
	Failed       int `json:"failed"`
	NotAttempted int `json:"notAttempted"`
	// Dropped were taken out of the plan by the re-check; Gone were
	// deleted by someone else meanwhile.
	Dropped int `json:"dropped,omitempty"`
	Gone    int `json:"gone,omitempty"`
	Kept    int `json:"kept"`
	// BytesReclaimed sums the known sizes of what was deleted (enforce) or
	// would be (preview); layers shared with kept images are counted too,
	// so it is an upper bound of the storage freed.
	BytesReclaimed int64 `json:"bytesReclaimed"`
	UnknownSizes   int   `json:"unknownSizes,omitempty"`
}

func (r *Result) tally() {
	t := Totals{Repositories: len(r.Repositories)}
	for i := range r.Repositories {
		repo := &r.Repositories[i]
		p := repo.Plan
		if p == nil {
			if repo.Inventory != nil {
				t.Manifests += repo.Inventory.Manifests
				t.Kept += repo.Inventory.Manifests
			}
			continue
		}
		t.Manifests += p.Counts.Artifacts
		t.Planned += len(p.Delete)
		t.Expired += p.Counts.Expired
		switch d := repo.Deletion; {
		case d != nil:
			t.Deleted += len(d.Deleted)
			t.Failed += len(d.Failed)
			t.NotAttempted += len(d.NotAttempted)
			if repo.Recheck != nil {
				t.Dropped += len(repo.Recheck.Dropped)
				t.Gone += len(repo.Recheck.Gone)
			}
			t.Kept += p.Counts.Artifacts - len(d.Deleted)
			gone := map[string]bool{}
			for _, dg := range d.Deleted {
				gone[dg] = true
			}
			for _, dg := range d.Deleted {
				if slices.ContainsFunc(repo.coveredBy[dg], func(p string) bool { return gone[p] }) {
					continue // counted in its index's size, as ECR reports it
				}
				if size := repo.sizes[dg]; size > 0 {
					t.BytesReclaimed += size
				} else {
					t.UnknownSizes++
				}
			}
		case r.Mode == ModePreview:
			t.Kept += p.Counts.Retained
			t.BytesReclaimed += p.BytesReclaimed
			t.UnknownSizes += p.UnknownSizes
		default:
			// Enforce deleted nothing here (nothing planned, or stopped).
			t.Kept += p.Counts.Artifacts
		}
	}
	r.Totals = t
}

func (r *Result) planJSON() ([]byte, error) {
	doc := struct {
		Version int `json:"version"`
		*Result
	}{planVersion, r}
	return json.MarshalIndent(doc, "", "  ")
}

// deleted lists repository@digest of every manifest deleted.
func (r *Result) deleted() []string {
	var out []string
	for _, repo := range r.Repositories {
		if repo.Deletion != nil {
			for _, d := range repo.Deletion.Deleted {
				out = append(out, repo.Repository+"@"+d)
			}
		}
	}
	return out
}

// failed lists repository@digest of every planned deletion that did not
// happen: refused, not attempted, or dropped by the re-check.
func (r *Result) failed() []string {
	var out []string
	for _, repo := range r.Repositories {
		if repo.Deletion == nil {
			continue
		}
		for _, e := range repo.Journal {
			switch e.State {
			case StateRefused, StateNotAttempted, StateDropped, StatePlanned:
				out = append(out, repo.Repository+"@"+e.Digest)
			}
		}
	}
	return out
}

// Outputs are the step outputs of the inputs table. Each is written only
// when the run got far enough to know it (see internal/inputs/outputs.go).
func (r *Result) Outputs() []report.Output {
	var out []report.Output
	if len(r.Policy) > 0 {
		out = append(out, report.Output{Name: inputs.OutPolicy, Value: strings.TrimSpace(string(r.Policy))})
	}
	if r.inventoryWritten {
		out = append(out, report.Output{Name: inputs.OutInventory, Value: r.InventoryPath})
	}
	if r.planWritten {
		out = append(out, report.Output{Name: inputs.OutPlan, Value: r.PlanPath})
	}
	planned := r.Mode == ModePreview || r.Mode == ModeEnforce
	evaluated := planned && len(r.Repositories) > 0
	for _, repo := range r.Repositories {
		if repo.Plan == nil || repo.Aborted != "" && repo.Deletion == nil {
			evaluated = false
		}
	}
	deleting := false
	for _, repo := range r.Repositories {
		if repo.Deletion != nil {
			deleting = true
		}
	}
	switch {
	case r.Mode == ModePreview && evaluated:
		out = append(out,
			report.Output{Name: inputs.OutDeletedCount, Value: fmt.Sprint(r.Totals.Planned)},
			report.Output{Name: inputs.OutKeptCount, Value: fmt.Sprint(r.Totals.Kept)})
	case r.Mode == ModeEnforce && (evaluated || deleting):
		// What was deleted and what was not, even when deleting stopped.
		out = append(out,
			report.Output{Name: inputs.OutDeleted, Value: report.OutputList(r.deleted())},
			report.Output{Name: inputs.OutDeletedCount, Value: fmt.Sprint(r.Totals.Deleted)},
			report.Output{Name: inputs.OutFailed, Value: report.OutputList(r.failed())})
		if evaluated {
			out = append(out, report.Output{Name: inputs.OutKeptCount, Value: fmt.Sprint(r.Totals.Kept)})
		}
	}
	return out
}

// maxSummaryRows bounds each repository's table; the plan file has all.
const maxSummaryRows = 100

// Summary writes the clean section of the job summary.
func (r *Result) Summary(md *report.Markdown) {
	md.Heading(2, "Clean")
	md.Paragraph("%s", r.headline())
	if r.Blocked != "" {
		md.Paragraph("**Stopped:** %s. Raise `max-deletions` to at least %d after reviewing the plan.", report.Escape(r.Blocked), r.Totals.Planned)
	}
	if len(r.Warnings) > 0 {
		md.Bullets(escapeAll(r.Warnings)...)
	}
	for i := range r.Repositories {
		r.Repositories[i].summary(md, r.Mode)
	}
	switch {
	case len(r.Policy) == 0:
	case r.FromShorthand:
		md.Paragraph("The shorthand inputs compile to this ECR lifecycle policy; paste it into ECR, or keep it in a file for `policy`:")
		md.CodeBlock("json", strings.TrimSpace(string(r.Policy)))
	default:
		md.Details("Effective lifecycle policy", func(b *report.Markdown) {
			b.CodeBlock("json", strings.TrimSpace(string(r.Policy)))
		})
	}
	if r.planWritten {
		md.Paragraph("Plan file: %s", report.Code(r.PlanPath))
	}
	if r.inventoryWritten {
		md.Paragraph("Inventory file: %s", report.Code(r.InventoryPath))
	}
}

func (r *Result) headline() string {
	t := r.Totals
	source := "policy " + report.Escape(r.PolicySource)
	if r.FromShorthand {
		source = "policy compiled from the shorthand inputs"
	}
	switch r.Mode {
	case ModeList:
		images := 0
		for _, repo := range r.Repositories {
			if repo.Inventory != nil {
				images += len(repo.Inventory.Images)
			}
		}
		return fmt.Sprintf("**List** — nothing was deleted · %s and %s in %s.", plural(images, "image"), plural(t.Manifests, "manifest"), plural(t.Repositories, "repository"))
	case ModeApply:
		applied := 0
		for _, repo := range r.Repositories {
			if repo.PolicyChange != nil && repo.PolicyChange.Applied {
				applied++
			}
		}
		return fmt.Sprintf("**Apply** · %s · put on %d of %d ECR repositories; ECR's lifecycle then expires images itself (within 24 hours).",
			source, applied, len(r.Repositories))
	case ModeEnforce:
		return fmt.Sprintf("**Enforce** · %s · deleted **%d** of %s in %s (%s and what goes with them)%s; %d refused, %d not attempted, %d dropped by the re-check, %d gone already; %s kept.",
			source, t.Deleted, plural(t.Planned, "planned manifest"), plural(t.Repositories, "repository"), plural(t.Expired, "expired image"), bytesNote(t), t.Failed, t.NotAttempted, t.Dropped, t.Gone, plural(t.Kept, "manifest"))
	}
	return fmt.Sprintf("**Preview** — nothing was deleted · %s · the plan deletes **%d** of %s in %s (%s and what goes with them)%s; %s kept.",
		source, t.Planned, plural(t.Manifests, "manifest"), plural(t.Repositories, "repository"), plural(t.Expired, "expired image"), bytesNote(t), plural(t.Kept, "manifest"))
}

func bytesNote(t Totals) string {
	if t.BytesReclaimed == 0 && t.UnknownSizes == 0 {
		return ""
	}
	s := ", up to " + report.HumanBytes(t.BytesReclaimed) + " reclaimed"
	if t.UnknownSizes > 0 {
		s += fmt.Sprintf(" (%d sizes unknown)", t.UnknownSizes)
	}
	return s
}

func (repo *RepositoryResult) summary(md *report.Markdown, mode string) {
	md.Heading(3, "%s (%s)", repo.Repository, kindLabel(repo.Kind))
	if c := repo.PolicyChange; c != nil {
		switch {
		case c.Unchanged:
			md.Paragraph("The lifecycle policy is already in place: nothing changed.")
		case c.Applied && c.Current == "":
			md.Paragraph("Lifecycle policy applied (the repository had none).")
		case c.Applied:
			md.Paragraph("Lifecycle policy applied. Changes from the previous policy:")
		default:
			md.Paragraph("The lifecycle policy was **not** applied. Changes it would make:")
		}
		if c.Diff != "" && !c.Unchanged {
			md.CodeBlock("diff", strings.TrimRight(c.Diff, "\n"))
		}
		return
	}
	if repo.Aborted != "" {
		md.Paragraph("**Nothing was deleted here:** %s", report.Escape(repo.Aborted))
	}
	repo.inventorySummary(md)
	p := repo.Plan
	if p == nil {
		return
	}
	if clocks := clockText(repo.Clocks); clocks != "" {
		md.Paragraph("%s: %s judged by the rules, %s (platform manifests, attestations, signatures) that live and die with them, %s. Ages from %s.",
			plural(p.Counts.Artifacts, "manifest"), plural(p.Counts.Candidates, "image"), plural(p.Counts.Descendants, "manifest"), plural(p.Counts.Orphans, "orphan"), clocks)
	}
	if len(p.Expired) == 0 && !hasDeletedOrphans(p) {
		md.Paragraph("Nothing expires.")
	} else {
		rows := make([][]string, 0, min(len(p.Expired), maxSummaryRows))
		for i, d := range p.Expired {
			if i == maxSummaryRows {
				break
			}
			rows = append(rows, []string{
				report.Code(inventory.Short(d.Digest)), tagCell(d.Tags), d.PushedAt.UTC().Format("2006-01-02"),
				fmt.Sprintf("%dd", d.AgeDays), ruleCell(d), cascadeCell(d.Cascade),
			})
		}
		for _, o := range p.Orphans {
			if o.Deleted && len(rows) < maxSummaryRows {
				rows = append(rows, []string{report.Code(inventory.Short(o.Digest)), tagCell(o.Tags), "", "", "orphan: subject " + shortList(o.Subjects) + " is gone", cascadeCell(o.Cascade)})
			}
		}
		md.Table([]string{"Digest", "Tags", "Pushed", "Age", "Rule", "Goes with it"}, rows)
		if n := len(p.Expired) + countDeletedOrphans(p); n > maxSummaryRows {
			md.Paragraph("… and %d more in the plan file.", n-maxSummaryRows)
		}
	}
	var bullets []string
	for _, n := range p.Protected {
		bullets = append(bullets, fmt.Sprintf("%s%s kept: %s", report.Code(inventory.Short(n.Digest)), tagSuffix(n.Tags), report.Escape(n.Reason)))
	}
	for _, rel := range p.Released {
		bullets = append(bullets, fmt.Sprintf("%s%s kept: it has a tag of its own, although %s referencing it is deleted", report.Code(inventory.Short(rel.Digest)), tagSuffix(rel.Tags), shortList(rel.Parents)))
	}
	kept := 0
	for _, o := range p.Orphans {
		if !o.Deleted {
			kept++
		}
	}
	if kept > 0 {
		bullets = append(bullets, fmt.Sprintf("%d signatures or attestations whose subject is gone are kept; set `delete-orphans: true` to delete them", kept))
	}
	for _, t := range p.Transitioned {
		bullets = append(bullets, fmt.Sprintf("%s%s: rule %d moves it to archive storage", report.Code(inventory.Short(t.Digest)), tagSuffix(t.Tags), t.RulePriority))
	}
	for _, f := range p.Finished {
		bullets = append(bullets, fmt.Sprintf("%s%s deleted now: an interrupted run deleted what referenced it and left it behind%s", report.Code(inventory.Short(f.Digest)), tagSuffix(f.Tags), cascadeSuffix(f.Cascade)))
	}
	bullets = append(bullets, escapeAll(repo.Warnings)...)
	bullets = append(bullets, escapeAll(repo.Notes)...)
	if len(bullets) > 0 {
		md.Bullets(bullets...)
	}
	if lines := repo.Recheck.summaryLines(); len(lines) > 0 {
		md.Paragraph("Re-checked just before deleting:")
		md.Bullets(lines...)
	}
	if d := repo.Deletion; d != nil {
		md.Paragraph("Deleted %d of %d manifests.", len(d.Deleted), len(p.Delete))
		var rows [][]string
		for _, f := range d.Failed {
			rows = append(rows, []string{report.Code(f.Digest), "refused", report.Escape(f.Reason)})
		}
		for _, n := range d.NotAttempted {
			rows = append(rows, []string{report.Code(n.Digest), "not attempted", report.Escape(n.Reason)})
		}
		if len(rows) > 0 {
			md.Table([]string{"Digest", "Outcome", "Why"}, rows[:min(len(rows), maxSummaryRows)])
			if len(rows) > maxSummaryRows {
				md.Paragraph("… and %d more in the plan file.", len(rows)-maxSummaryRows)
			}
		}
	}
	if c := repo.AWS; c != nil {
		switch {
		case c.Error != "":
			md.Paragraph("AWS's preview: %s", report.Escape(c.Error))
		case len(c.Differences) == 0:
			md.Paragraph("AWS's own preview of this policy agrees (%d images).", c.Agree)
		default:
			md.Paragraph("AWS's own preview of this policy agrees on %d images and differs on %d:", c.Agree, len(c.Differences))
			var rows [][]string
			for i, d := range c.Differences {
				if i == maxSummaryRows {
					break
				}
				rows = append(rows, []string{report.Code(inventory.Short(d.Digest)), tagCell(d.Tags), report.Escape(d.AWS), report.Escape(d.Ours), report.Escape(d.Why)})
			}
			md.Table([]string{"Digest", "Tags", "AWS", "Ours", "Why"}, rows)
			if n := len(c.Differences); n > maxSummaryRows {
				md.Paragraph("… and %d more in the plan file.", n-maxSummaryRows)
			}
		}
	}
}

func kindLabel(kind string) string {
	switch kind {
	case string(lifecycle.RegistryECR):
		return "ECR"
	case string(lifecycle.RegistryGHCR):
		return "GHCR"
	}
	return "OCI registry"
}

func hasDeletedOrphans(p *lifecycle.Plan) bool { return countDeletedOrphans(p) > 0 }

func countDeletedOrphans(p *lifecycle.Plan) int {
	n := 0
	for _, o := range p.Orphans {
		if o.Deleted {
			n++
		}
	}
	return n
}

func clockText(clocks map[inventory.Clock]int) string {
	var parts []string
	for c, n := range clocks {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s (%d)", c, n))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		for c := range clocks {
			parts = append(parts, string(c))
		}
		sort.Strings(parts)
	}
	return strings.Join(parts, ", ")
}

func ruleCell(d lifecycle.Decision) string {
	if d.RuleDescription != "" {
		return fmt.Sprintf("%d: %s", d.RulePriority, report.Escape(d.RuleDescription))
	}
	return fmt.Sprintf("%d", d.RulePriority)
}

func tagCell(tags []string) string {
	if len(tags) == 0 {
		return "_untagged_"
	}
	out := make([]string, 0, len(tags))
	for i, t := range tags {
		if i == 5 {
			out = append(out, fmt.Sprintf("+%d", len(tags)-5))
			break
		}
		out = append(out, report.Code(t))
	}
	return strings.Join(out, " ")
}

func tagSuffix(tags []string) string {
	if len(tags) == 0 {
		return ""
	}
	return " (" + report.Escape(strings.Join(tags, ", ")) + ")"
}

// cascadeCell summarises what goes with an expired image: "2 platform
// manifests, 1 signature: sha256:…, …".
func cascadeCell(cascade []lifecycle.Cascaded) string {
	if len(cascade) == 0 {
		return ""
	}
	children, referrers := 0, 0
	var digests []string
	for _, c := range cascade {
		if c.Kind == lifecycle.CascadeChild {
			children++
		} else {
			referrers++
		}
		digests = append(digests, report.Code(inventory.Short(c.Digest)))
	}
	var parts []string
	if children > 0 {
		parts = append(parts, plural(children, "child"))
	}
	if referrers > 0 {
		parts = append(parts, plural(referrers, "referrer"))
	}
	if len(digests) > 6 {
		digests = append(digests[:6], "…")
	}
	return strings.Join(parts, ", ") + ": " + strings.Join(digests, " ")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	switch unit {
	case "child":
		return fmt.Sprintf("%d children", n)
	case "repository":
		return fmt.Sprintf("%d repositories", n)
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func escapeAll(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = report.Escape(s)
	}
	return out
}

// Text is the CLI rendering.
func (r *Result) Text(w io.Writer) {
	fmt.Fprintln(w, stripMarkdown(r.headline()))
	if r.Blocked != "" {
		fmt.Fprintf(w, "stopped: %s\n", r.Blocked)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	for _, repo := range r.Repositories {
		fmt.Fprintf(w, "\n%s (%s)\n", repo.Repository, repo.Kind)
		if c := repo.PolicyChange; c != nil {
			switch {
			case c.Unchanged:
				fmt.Fprintln(w, "  policy already in place")
			case c.Applied:
				fmt.Fprintln(w, "  policy applied; changes:")
			}
			for _, line := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
				if line != "" {
					fmt.Fprintf(w, "  %s\n", line)
				}
			}
			continue
		}
		if repo.Aborted != "" {
			fmt.Fprintf(w, "  nothing deleted: %s\n", repo.Aborted)
		}
		p := repo.Plan
		if p == nil {
			repo.inventoryText(w)
			continue
		}
		fmt.Fprintf(w, "  ages from %s\n", clockText(repo.Clocks))
		if len(p.Expired) == 0 && !hasDeletedOrphans(p) {
			fmt.Fprintln(w, "  nothing expires")
		} else {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  DIGEST\tTAGS\tPUSHED\tRULE\tGOES WITH IT")
			for _, d := range p.Expired {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", inventory.Short(d.Digest), textTags(d.Tags), d.PushedAt.UTC().Format("2006-01-02"), d.RulePriority, textCascade(d.Cascade))
			}
			for _, o := range p.Orphans {
				if o.Deleted {
					fmt.Fprintf(tw, "  %s\t%s\t\torphan\t%s\n", inventory.Short(o.Digest), textTags(o.Tags), textCascade(o.Cascade))
				}
			}
			tw.Flush()
		}
		for _, n := range p.Protected {
			fmt.Fprintf(w, "  kept %s: %s\n", inventory.Short(n.Digest), n.Reason)
		}
		for _, f := range p.Finished {
			fmt.Fprintf(w, "  leftover of an interrupted run, deleted now: %s\n", inventory.Short(f.Digest))
		}
		for _, line := range repo.Recheck.summaryLines() {
			fmt.Fprintf(w, "  re-check: %s\n", stripMarkdown(line))
		}
		if d := repo.Deletion; d != nil {
			fmt.Fprintf(w, "  deleted %d of %d\n", len(d.Deleted), len(p.Delete))
			for _, f := range d.Failed {
				fmt.Fprintf(w, "  refused %s: %s\n", f.Digest, f.Reason)
			}
			for _, n := range d.NotAttempted {
				fmt.Fprintf(w, "  not attempted %s: %s\n", n.Digest, n.Reason)
			}
		}
		if c := repo.AWS; c != nil {
			if c.Error != "" {
				fmt.Fprintf(w, "  AWS preview: %s\n", c.Error)
			} else {
				fmt.Fprintf(w, "  AWS preview: agrees on %d, differs on %d\n", c.Agree, len(c.Differences))
				for _, d := range c.Differences {
					fmt.Fprintf(w, "    %s  AWS: %s  ours: %s  (%s)\n", inventory.Short(d.Digest), d.AWS, d.Ours, d.Why)
				}
			}
		}
		for _, warn := range repo.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
	}
	if r.FromShorthand {
		fmt.Fprintf(w, "\npolicy compiled from the shorthand (paste into ECR):\n%s", r.Policy)
	}
	if r.planWritten {
		fmt.Fprintf(w, "plan: %s\n", r.PlanPath)
	}
	if r.inventoryWritten {
		fmt.Fprintf(w, "inventory: %s\n", r.InventoryPath)
	}
}

func textTags(tags []string) string {
	if len(tags) == 0 {
		return "-"
	}
	return strings.Join(tags, ",")
}

func textCascade(cascade []lifecycle.Cascaded) string {
	if len(cascade) == 0 {
		return "-"
	}
	out := make([]string, 0, len(cascade))
	for _, c := range cascade {
		out = append(out, c.Kind+" "+inventory.Short(c.Digest))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func stripMarkdown(s string) string {
	return strings.NewReplacer("**", "", "`", "", "\\", "").Replace(s)
}
