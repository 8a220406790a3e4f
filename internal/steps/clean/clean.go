// Package clean applies one lifecycle-policy language — ECR's — to ECR
// repositories, GHCR packages and any OCI registry: it lists what a
// repository holds, previews what a policy would delete, puts the policy on
// ECR repositories, or enforces it now by deleting, in an order that never
// leaves an index without its platform manifests or a kept image without
// its signatures.
//
// Repositories do not hold still while they are cleaned. Just before
// deleting, enforce lists the repository again and deletes only what both
// listings plan, untouched since and referenced by nothing that stays; a
// listing that lists a manifest it cannot return stops the run before any
// deletion. The state of every deletion is kept in the plan file as the run
// goes, and the next run finishes what a stopped run left behind.
package clean

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/ghcr"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/outdir"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

// Modes.
const (
	ModeList    = "list"
	ModePreview = "preview"
	ModeApply   = "apply"
	ModeEnforce = "enforce"
)

// File names inside the output directory.
const (
	PlanFileName      = "clean-plan.json"
	InventoryFileName = "clean-inventory.json"
)

// planVersion is the plan file's format version.
const planVersion = 2

// DefaultUntaggedGrace is how long an untagged manifest is left alone after
// its push, by default.
const DefaultUntaggedGrace = time.Hour

// Options is everything clean needs, as plain values.
type Options struct {
	// Images are the repositories to clean (registry/repository). A
	// repository@digest, as a chain hands on what push wrote, names its
	// repository.
	Images []string
	Policy PolicyInput
	// Mode is list, preview (default), apply or enforce.
	Mode string
	// MaxDeletions: enforce deletes nothing when the plan deletes more
	// manifests than this, across all repositories.
	MaxDeletions int
	// DeleteOrphans also deletes signatures and attestations whose subject
	// is gone.
	DeleteOrphans bool
	// Protected digests are never deleted, nor what they reference (the
	// digest pushed earlier in the same run).
	Protected []string
	// UntaggedGrace: untagged manifests pushed less than this long ago are
	// never deleted (a push may still be writing the index that lists
	// them), where the registry records push times (ECR, GHCR). Negative
	// means DefaultUntaggedGrace; zero turns it off.
	UntaggedGrace time.Duration
	// OutputDir receives the JSON plan and inventory; empty writes none. It
	// is claimed with outdir.Claim before anything is written.
	OutputDir string
	// WorkDir is the working directory: the plan output names the file
	// relative to it, so later steps find it after a container action.
	WorkDir string
	// Now is when ages are measured from (default: the current time).
	Now time.Time

	Registry *registry.Client
	// ECR returns an ECR API client for a registry host.
	ECR func(ctx context.Context, host registry.ECRHost) (ECRAPI, error)
	// GitHub returns a GitHub Packages API client (for ghcr.io).
	GitHub func() (inventory.GitHubAPI, error)
	// AWSPreview bounds the wait for ECR's own lifecycle policy preview.
	AWSPreview ecr.PreviewOptions
	// Concurrency bounds registry reads in flight (default 8).
	Concurrency int
	Log         report.Logger
}

// ECRAPI is the part of the ECR API clean uses.
type ECRAPI interface {
	inventory.ECRAPI
	LifecyclePolicy(ctx context.Context, repo string) (text string, found bool, err error)
	PutLifecyclePolicy(ctx context.Context, repo, text string) error
	PreviewLifecyclePolicy(ctx context.Context, repo, text string, opts ecr.PreviewOptions) ([]ecr.PreviewResult, error)
}

// target is one repository to clean.
type target struct {
	repo  name.Repository
	kind  lifecycle.RegistryKind
	store inventory.Store
	// ECR only: the API client and the repository name in the registry.
	ecr     ECRAPI
	ecrName string
}

// Run lists, previews, applies or enforces the policy on every repository.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = report.Discard{}
	}
	mode := strings.ToLower(strings.TrimSpace(opts.Mode))
	if mode == "" {
		mode = ModePreview
	}
	if mode != ModeList && mode != ModePreview && mode != ModeApply && mode != ModeEnforce {
		return nil, failure.Invalidf("clean: mode %q is not one of list, preview, apply or enforce", opts.Mode)
	}
	if opts.MaxDeletions < 0 {
		return nil, failure.Invalidf("clean: max-deletions must not be negative, got %d", opts.MaxDeletions)
	}
	if opts.UntaggedGrace < 0 {
		opts.UntaggedGrace = DefaultUntaggedGrace
	}
	if len(opts.Images) == 0 {
		return nil, failure.Invalidf("clean: input \"images\" is required: name the repositories to clean")
	}
	var policy *lifecycle.Policy
	var source string
	if mode != ModeList || len(opts.Policy.Text) > 0 || opts.Policy.Shorthand != nil {
		var err error
		if policy, source, err = resolvePolicy(opts.Policy); err != nil {
			return nil, err
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()

	targets, err := resolveTargets(ctx, opts, policy)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Mode: mode, PolicySource: source, FromShorthand: source == "shorthand",
		EvaluatedAt: now, MaxDeletions: opts.MaxDeletions, DeleteOrphans: opts.DeleteOrphans,
		Protected: slices.Clone(opts.Protected), UntaggedGrace: opts.UntaggedGrace.String(),
	}
	if policy != nil {
		res.Policy = policy.JSON()
	}
	var previous map[string][]JournalEntry
	if opts.OutputDir != "" {
		// Claimed before anything is written: a directory that holds
		// files this program did not write is refused.
		if err := outdir.Claim(opts.OutputDir); err != nil {
			return nil, fmt.Errorf("clean: %w", err)
		}
		res.PlanFile = filepath.Join(opts.OutputDir, PlanFileName)
		res.PlanPath = report.DisplayPath(opts.WorkDir, res.PlanFile)
		res.InventoryFile = filepath.Join(opts.OutputDir, InventoryFileName)
		res.InventoryPath = report.DisplayPath(opts.WorkDir, res.InventoryFile)
		if mode != ModeList {
			if previous, err = previousJournals(res.PlanFile); err != nil {
				res.Warnings = append(res.Warnings, report.OneLine(err.Error()))
			}
		}
	}
	if mode == ModeApply {
		for _, t := range targets {
			if t.kind != lifecycle.RegistryECR {
				return nil, failure.Invalidf("clean: mode apply puts a lifecycle policy on ECR repositories, but %s is on %s, which stores no policies: use mode: enforce on a schedule to apply the policy there",
					t.repo.Name(), registryLabel(t.kind))
			}
		}
		if err := apply(ctx, opts, policy, targets, res); err != nil {
			return res, err
		}
		// apply deletes nothing: the journals of earlier runs stay for the
		// next enforce.
		for i := range res.Repositories {
			res.Repositories[i].Journal = previous[res.Repositories[i].Repository]
		}
		return res, res.writePlan()
	}

	states := make([]*repoState, len(targets))
	for i, t := range targets {
		st, repo, err := evaluate(ctx, opts, policy, t, mode, now, previous[t.repo.Name()])
		if repo != nil {
			res.Repositories = append(res.Repositories, *repo)
		}
		if err != nil {
			if failure.Code(err) == failure.ExitInvalid {
				return nil, err // a bad input: nothing to report but the error
			}
			res.tally()
			if werr := res.writeInventory(); werr != nil {
				opts.Log.Warnf("%s", werr)
			}
			return res, err
		}
		states[i] = st
	}
	res.tally()
	if err := res.writeInventory(); err != nil {
		return res, err
	}
	if mode == ModeList {
		return res, nil
	}
	if mode == ModePreview {
		if res.Totals.Planned > opts.MaxDeletions {
			res.Warnings = append(res.Warnings, fmt.Sprintf("enforce would stop here: the plan deletes %d manifests, more than max-deletions %d; raise max-deletions to at least %d before enforcing",
				res.Totals.Planned, opts.MaxDeletions, res.Totals.Planned))
		}
		return res, res.writePlan()
	}

	// enforce
	if res.Totals.Planned > opts.MaxDeletions {
		res.Blocked = fmt.Sprintf("the plan deletes %d manifests, more than max-deletions %d: nothing was deleted", res.Totals.Planned, opts.MaxDeletions)
		if err := res.writePlan(); err != nil {
			return res, err
		}
		return res, &failure.GateError{Verdict: fmt.Sprintf("clean: the plan deletes %d manifests, more than max-deletions %d, so nothing was deleted: review the plan (%s) and raise max-deletions to at least %d to proceed",
			res.Totals.Planned, opts.MaxDeletions, orNone(res.PlanPath), res.Totals.Planned)}
	}
	if err := res.writePlan(); err != nil {
		return res, err
	}
	var failures []string
	for i, t := range targets {
		repo := &res.Repositories[i]
		if len(repo.Plan.Delete) == 0 {
			continue
		}
		err := enforce(ctx, opts, policy, t, states[i], repo, res)
		res.tally()
		if werr := res.writePlan(); werr != nil && err == nil {
			err = werr
		}
		if err != nil {
			// A listing that changed beyond use: stop before the next
			// repository, saying what was done.
			return res, err
		}
		if del := repo.Deletion; len(del.Failed)+len(del.NotAttempted) > 0 {
			failures = append(failures, deletionFailure(t.repo.Name(), repo.Journal, del))
		}
		if del := repo.Deletion; del.Err != nil && (errors.Is(del.Err, context.Canceled) || errors.Is(del.Err, ghcr.ErrNoAdmin) || errors.Is(del.Err, ghcr.ErrRateLimited)) {
			break
		}
	}
	if len(failures) > 0 {
		return res, fmt.Errorf("clean: %s; re-run to retry what was not deleted", strings.Join(failures, "; "))
	}
	return res, nil
}

// repoState is what enforce needs of an evaluation.
type repoState struct {
	inv      *inventory.Inventory
	evalOpts lifecycle.EvalOptions
	// leftovers are the digests an earlier run left behind, with the tags
	// its journal recorded.
	leftovers map[string][]string
}

// enforce lists the repository again, keeps from the plan what the fresh
// listing still supports, and deletes it, recording each outcome in the
// journal (and the plan file) as it goes.
func enforce(ctx context.Context, opts Options, policy *lifecycle.Policy, t target, st *repoState, repo *RepositoryResult, res *Result) error {
	end := opts.Log.Group("delete from " + t.repo.Name())
	defer end()
	fresh, err := t.store.Inventory(ctx)
	if err != nil {
		repo.Aborted = "the listing just before deleting failed: nothing was deleted"
		return explainListing(t, err)
	}
	if err := fresh.Consistent(); err != nil {
		repo.Aborted = report.OneLine(err.Error())
		return fmt.Errorf("clean: just before deleting, %w", err)
	}
	freshPlan, err := lifecycle.Evaluate(policy, fresh.Artifacts, st.evalOpts)
	if err != nil {
		return fmt.Errorf("clean: %s: %w", t.repo.Name(), err)
	}
	order, rc := recheck(repo.Plan, st.inv, fresh, freshPlan)
	repo.Recheck = rc
	for _, line := range rc.summaryLines() {
		opts.Log.Infof("%s: %s", t.repo.Name(), stripMarkdown(line))
	}
	// The journal: every planned deletion, with what the re-check made of it.
	leftovers := map[string]bool{}
	for _, f := range repo.Plan.Finished {
		leftovers[f.Digest] = true
	}
	journal := newJournal(st.inv, repo.Plan.Delete, leftovers)
	dropped := map[string]string{}
	for _, d := range rc.Dropped {
		dropped[d.Digest] = d.Reason
	}
	for i := range journal {
		switch {
		case slices.Contains(rc.Gone, journal[i].Digest):
			journal[i].State = StateGone
		case dropped[journal[i].Digest] != "":
			journal[i].State, journal[i].Reason = StateDropped, dropped[journal[i].Digest]
		}
	}
	repo.Journal = journal
	if err := res.writePlan(); err != nil {
		return err
	}
	var lastWrite time.Time
	del := t.store.Delete(ctx, fresh, order, func(d *inventory.Deletion) {
		record(repo.Journal, d)
		if time.Since(lastWrite) > journalInterval {
			lastWrite = time.Now()
			_ = res.writePlan()
		}
	})
	record(repo.Journal, del)
	repo.Deletion = del
	opts.Log.Infof("%s: deleted %d of %d manifests", t.repo.Name(), len(del.Deleted), len(repo.Plan.Delete))
	for _, f := range del.Failed {
		opts.Log.Warnf("%s: could not delete %s: %s", t.repo.Name(), f.Digest, f.Reason)
	}
	return nil
}

// journalInterval bounds how often the plan file is rewritten while
// deleting; it is written once more at the end.
const journalInterval = 500 * time.Millisecond

// deletionFailure says, in one clause, what was and was not deleted.
func deletionFailure(repo string, journal []JournalEntry, del *inventory.Deletion) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: deleted %d of %d manifests", repo, len(del.Deleted), len(journal))
	if len(del.Failed) > 0 {
		f := del.Failed[0]
		fmt.Fprintf(&b, ", %d refused (first: %s: %s)", len(del.Failed), f.Digest, f.Reason)
	}
	if len(del.NotAttempted) > 0 {
		fmt.Fprintf(&b, ", %d not attempted (%s)", len(del.NotAttempted), del.NotAttempted[0].Reason)
	}
	return b.String()
}

func orNone(path string) string {
	if path == "" {
		return "see the job summary"
	}
	return path
}

// resolveTargets parses the repositories and picks each one's store.
func resolveTargets(ctx context.Context, opts Options, policy *lifecycle.Policy) ([]target, error) {
	var targets []target
	seen := map[string]bool{}
	ecrClients := map[string]ECRAPI{}
	var github inventory.GitHubAPI
	for _, image := range opts.Images {
		repo, err := parseRepository(opts.Registry, image)
		if err != nil {
			return nil, err
		}
		if seen[repo.Name()] {
			continue
		}
		seen[repo.Name()] = true
		t := target{repo: repo}
		switch registry.KindOf(repo.RegistryStr()) {
		case registry.KindECR:
			host, _ := registry.ParseECRHost(registry.HostOnly(repo.RegistryStr()))
			key := host.AccountID + "/" + host.Region
			api, ok := ecrClients[key]
			if !ok {
				if opts.ECR == nil {
					return nil, fmt.Errorf("clean: no ECR client for %s", repo.RegistryStr())
				}
				if api, err = opts.ECR(ctx, host); err != nil {
					return nil, fmt.Errorf("clean: %w", err)
				}
				ecrClients[key] = api
			}
			t.kind, t.ecr, t.ecrName = lifecycle.RegistryECR, api, repo.RepositoryStr()
			t.store = &inventory.ECR{API: api, Registry: repo.RegistryStr(), Name: repo.RepositoryStr(), Archived: policy == nil || usesArchive(policy)}
		case registry.KindGHCR:
			owner, pkg, err := inventory.SplitGHCR(repo.RepositoryStr())
			if err != nil {
				return nil, failure.Invalid(fmt.Errorf("clean: %w", err))
			}
			if github == nil {
				if opts.GitHub == nil {
					return nil, fmt.Errorf("clean: no GitHub API client for %s", repo.Name())
				}
				if github, err = opts.GitHub(); err != nil {
					return nil, fmt.Errorf("clean: %w", err)
				}
			}
			t.kind = lifecycle.RegistryGHCR
			t.store = &inventory.GHCR{API: github, Owner: owner, Package: pkg, Repo: repo, Remote: opts.Registry.Remote(ctx), Concurrency: opts.Concurrency}
		case registry.KindECRPublic:
			return nil, failure.Invalidf("clean: %s is an ECR Public repository, which clean cannot manage: its images are deleted through the ECR Public API", repo.Name())
		default:
			t.kind = lifecycle.RegistryOCI
			t.store = &inventory.OCI{Repo: repo, Remote: opts.Registry.Remote(ctx), Concurrency: opts.Concurrency}
		}
		if policy != nil {
			caps, _ := lifecycle.CapabilitiesFor(t.kind)
			if err := policy.Validate(caps); err != nil {
				return nil, failure.Invalid(fmt.Errorf("clean: the policy cannot be used on %s: %w", repo.Name(), err))
			}
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// parseRepository accepts registry/repository, and repository@digest as a
// chain hands on what push wrote; a tag is refused, since clean judges every
// image of the repository.
func parseRepository(reg *registry.Client, image string) (name.Repository, error) {
	s := strings.TrimSpace(image)
	if i := strings.Index(s, "@"); i >= 0 {
		s = s[:i]
	}
	if lower, changed := registry.LowercaseGHCR(s); changed {
		s = lower
	}
	last := s[strings.LastIndexByte(s, '/')+1:]
	if strings.Contains(last, ":") && strings.Contains(s, "/") {
		return name.Repository{}, failure.Invalidf("clean: images entry %q has a tag: give the repository alone (clean judges every image in it)", image)
	}
	repo, err := reg.Repository(s)
	if err != nil {
		return name.Repository{}, failure.Invalid(fmt.Errorf("clean: %w", err))
	}
	return repo, nil
}

// evaluate lists one repository, builds its inventory report and plans
// what the policy does to it.
func evaluate(ctx context.Context, opts Options, policy *lifecycle.Policy, t target, mode string, now time.Time, journal []JournalEntry) (*repoState, *RepositoryResult, error) {
	end := opts.Log.Group("clean " + t.repo.Name())
	defer end()
	out := &RepositoryResult{Repository: t.repo.Name(), Kind: string(t.kind)}
	inv, err := t.store.Inventory(ctx)
	if err != nil {
		return nil, nil, explainListing(t, err)
	}
	out.Clocks, out.Notes, out.Warnings = inv.Clocks, inv.Notes, inv.Warnings
	for _, w := range inv.Warnings {
		opts.Log.Warnf("%s: %s", t.repo.Name(), w)
	}
	opts.Log.Infof("%s: %d manifests listed", t.repo.Name(), len(inv.Artifacts))
	if policy == nil {
		out.Inventory = inventory.BuildReport(inv, nil)
		out.Unreadable = inv.Unreadable
		return &repoState{inv: inv}, out, nil
	}
	if err := inv.Consistent(); err != nil {
		out.Inventory = inventory.BuildReport(inv, nil)
		out.Unreadable = inv.Unreadable
		out.Aborted = report.OneLine(err.Error())
		return nil, out, fmt.Errorf("clean: %w", err)
	}
	st := &repoState{inv: inv, evalOpts: lifecycle.EvalOptions{Now: now, Protected: opts.Protected, DeleteOrphans: opts.DeleteOrphans}}
	switch t.kind {
	case lifecycle.RegistryGHCR:
		st.evalOpts.KeepLastTagged = true
		st.evalOpts.UntaggedGrace = opts.UntaggedGrace
	case lifecycle.RegistryECR:
		st.evalOpts.UntaggedGrace = opts.UntaggedGrace
	}
	// What an interrupted run left, as its journal says and the registry
	// confirms: present with the tags it had.
	st.leftovers = leftovers(journal)
	tagsNow := map[string][]string{}
	for _, a := range inv.Artifacts {
		tagsNow[a.Digest] = a.Tags
	}
	for d, tags := range st.leftovers {
		if now, ok := tagsNow[d]; ok && sameTags(tags, now) {
			st.evalOpts.Finish = append(st.evalOpts.Finish, d)
		}
	}
	slices.Sort(st.evalOpts.Finish)
	plan, err := lifecycle.Evaluate(policy, inv.Artifacts, st.evalOpts)
	if err != nil {
		return nil, out, fmt.Errorf("clean: %s: %w", t.repo.Name(), err)
	}
	out.Plan = plan
	out.Inventory = inventory.BuildReport(inv, plan)
	out.parents = inventory.Parents(inv.Artifacts)
	out.sizes = map[string]int64{}
	out.coveredBy = map[string][]string{}
	for _, a := range inv.Artifacts {
		out.sizes[a.Digest] = a.Size
		if a.SizeIncludesChildren {
			for _, c := range a.Children {
				out.coveredBy[c] = append(out.coveredBy[c], a.Digest)
			}
		}
	}
	leftoverSet := map[string]bool{}
	for _, f := range plan.Finished {
		leftoverSet[f.Digest] = true
	}
	out.Journal = newJournal(inv, plan.Delete, leftoverSet)
	opts.Log.Infof("%s: %d of %d images expire; %d manifests to delete", t.repo.Name(), plan.Counts.Expired, plan.Counts.Candidates, len(plan.Delete))
	if len(plan.Finished) > 0 {
		opts.Log.Infof("%s: %d manifests an interrupted run left behind are deleted now", t.repo.Name(), len(plan.Finished))
	}
	if len(plan.Transitioned) > 0 && mode == ModeEnforce {
		out.Notes = append(out.Notes, fmt.Sprintf("%d images the policy would move to archive storage are left as they are: only ECR's own lifecycle transitions images (mode: apply)", len(plan.Transitioned)))
	}
	if t.kind == lifecycle.RegistryECR && mode == ModePreview {
		out.AWS = compareWithAWS(ctx, opts, policy, t, plan, inv)
		if out.AWS.Error != "" {
			if ctx.Err() != nil {
				return nil, out, fmt.Errorf("clean: %s: %w", t.repo.Name(), ctx.Err())
			}
			opts.Log.Warnf("%s: %s", t.repo.Name(), out.AWS.Error)
		}
	}
	return st, out, nil
}

// explainListing turns a listing failure into a one-line error; an unknown
// repository or package is a bad input.
func explainListing(t target, err error) error {
	if errors.Is(err, ecr.ErrRepositoryNotFound) || errors.Is(err, ghcr.ErrNotFound) && !errors.Is(err, ghcr.ErrInconsistent) || errors.Is(err, inventory.ErrRepositoryNotFound) {
		return failure.Invalid(fmt.Errorf("clean: %w", err))
	}
	return fmt.Errorf("clean: %w", err)
}

// apply puts the policy on every repository (ECR only), showing how it
// differs from the current one.
func apply(ctx context.Context, opts Options, policy *lifecycle.Policy, targets []target, res *Result) error {
	text := policy.Text()
	for _, t := range targets {
		change := &PolicyChange{}
		current, found, err := t.ecr.LifecyclePolicy(ctx, t.ecrName)
		if err != nil {
			return explainListing(t, err)
		}
		var cur *lifecycle.Policy
		if found {
			change.Current = current
			if cur, err = lifecycle.Parse([]byte(current)); err != nil {
				change.Diff = "the current policy could not be read (" + err.Error() + "); it is replaced as a whole\n"
			}
		}
		if change.Diff == "" {
			change.Diff = lifecycle.Diff(cur, policy)
		}
		if found && cur != nil && change.Diff == "" {
			change.Unchanged = true
			opts.Log.Infof("%s: the lifecycle policy is already in place", t.repo.Name())
		} else {
			if err := t.ecr.PutLifecyclePolicy(ctx, t.ecrName, text); err != nil {
				res.Repositories = append(res.Repositories, RepositoryResult{Repository: t.repo.Name(), Kind: string(t.kind), PolicyChange: change})
				return fmt.Errorf("clean: %w", err)
			}
			change.Applied = true
			opts.Log.Infof("%s: lifecycle policy applied", t.repo.Name())
		}
		res.Repositories = append(res.Repositories, RepositoryResult{Repository: t.repo.Name(), Kind: string(t.kind), PolicyChange: change})
	}
	return nil
}

func registryLabel(kind lifecycle.RegistryKind) string {
	switch kind {
	case lifecycle.RegistryGHCR:
		return "ghcr.io"
	case lifecycle.RegistryECR:
		return "ECR"
	}
	return "a plain OCI registry"
}

// writePlan writes the JSON plan (the result itself, journals included)
// to PlanFile, replacing it at once so that a run stopped while writing
// leaves the previous plan whole.
func (r *Result) writePlan() error {
	if r.PlanFile == "" {
		return nil
	}
	data, err := r.planJSON()
	if err != nil {
		return fmt.Errorf("clean: write the plan: %w", err)
	}
	if err := writeFile(r.PlanFile, data); err != nil {
		return err
	}
	r.planWritten = true
	return nil
}

// writeInventory writes the inventory report of every repository listed.
func (r *Result) writeInventory() error {
	if r.InventoryFile == "" {
		return nil
	}
	doc := struct {
		Version      int                 `json:"version"`
		ListedAt     time.Time           `json:"listedAt"`
		Repositories []*inventory.Report `json:"repositories"`
	}{Version: 1, ListedAt: r.EvaluatedAt, Repositories: []*inventory.Report{}}
	for _, repo := range r.Repositories {
		if repo.Inventory != nil {
			doc.Repositories = append(doc.Repositories, repo.Inventory)
		}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("clean: write the inventory: %w", err)
	}
	if err := writeFile(r.InventoryFile, data); err != nil {
		return err
	}
	r.inventoryWritten = true
	return nil
}

func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("clean: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("clean: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("clean: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("clean: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("clean: write %s: %w", path, err)
	}
	return nil
}
