// Package clean applies one lifecycle-policy language — ECR's — to ECR
// repositories, GHCR packages and any OCI registry: it previews what a
// policy would delete, puts the policy on ECR repositories, or enforces it
// now by deleting, in an order that never leaves an index without its
// platform manifests or a kept image without its signatures.
package clean

import (
	"context"
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
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

// Modes.
const (
	ModePreview = "preview"
	ModeApply   = "apply"
	ModeEnforce = "enforce"
)

// PlanFileName is the JSON plan's name inside the output directory.
const PlanFileName = "clean-plan.json"

// Options is everything clean needs, as plain values.
type Options struct {
	// Images are the repositories to clean (registry/repository). A
	// repository@digest, as a chain hands on what push wrote, names its
	// repository.
	Images []string
	Policy PolicyInput
	// Mode is preview (default), apply or enforce.
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
	// OutputDir receives the JSON plan; empty writes none.
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

// Run previews, applies or enforces the policy on every repository.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = report.Discard{}
	}
	mode := strings.ToLower(strings.TrimSpace(opts.Mode))
	if mode == "" {
		mode = ModePreview
	}
	if mode != ModePreview && mode != ModeApply && mode != ModeEnforce {
		return nil, failure.Invalidf("clean: mode %q is not one of preview, apply or enforce", opts.Mode)
	}
	if opts.MaxDeletions < 0 {
		return nil, failure.Invalidf("clean: max-deletions must not be negative, got %d", opts.MaxDeletions)
	}
	if len(opts.Images) == 0 {
		return nil, failure.Invalidf("clean: input \"images\" is required: name the repositories to clean")
	}
	policy, source, err := resolvePolicy(opts.Policy)
	if err != nil {
		return nil, err
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
		Mode: mode, Policy: policy.JSON(), PolicySource: source, FromShorthand: source == "shorthand",
		EvaluatedAt: now, MaxDeletions: opts.MaxDeletions, DeleteOrphans: opts.DeleteOrphans,
		Protected: slices.Clone(opts.Protected),
	}
	if opts.OutputDir != "" {
		res.PlanFile = filepath.Join(opts.OutputDir, PlanFileName)
		res.PlanPath = report.DisplayPath(opts.WorkDir, res.PlanFile)
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
		return res, res.writePlan()
	}

	inventories := make([]*inventory.Inventory, len(targets))
	for i, t := range targets {
		repo, inv, err := evaluate(ctx, opts, policy, t, mode, now)
		if err != nil {
			return nil, err
		}
		inventories[i] = inv
		res.Repositories = append(res.Repositories, repo)
	}
	res.tally()
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
	var failures []string
	for i, t := range targets {
		repo := &res.Repositories[i]
		if len(repo.Plan.Delete) == 0 {
			continue
		}
		end := opts.Log.Group("delete from " + t.repo.Name())
		del := t.store.Delete(ctx, inventories[i], repo.Plan.Delete)
		end()
		repo.Deletion = del
		opts.Log.Infof("%s: deleted %d of %d manifests", t.repo.Name(), len(del.Deleted), len(repo.Plan.Delete))
		for _, f := range del.Failed {
			opts.Log.Warnf("%s: could not delete %s: %s", t.repo.Name(), f.Digest, f.Reason)
		}
		if len(del.Failed)+len(del.NotAttempted) > 0 {
			failures = append(failures, deletionFailure(t.repo.Name(), repo.Plan.Delete, del))
		}
		if del.Err != nil && errors.Is(del.Err, context.Canceled) {
			break
		}
	}
	res.tally()
	if err := res.writePlan(); err != nil {
		return res, err
	}
	if len(failures) > 0 {
		return res, fmt.Errorf("clean: %s; re-run to retry what was not deleted", strings.Join(failures, "; "))
	}
	return res, nil
}

// deletionFailure says, in one clause, what was and was not deleted.
func deletionFailure(repo string, planned []string, del *inventory.Deletion) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: deleted %d of %d manifests", repo, len(del.Deleted), len(planned))
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
			t.store = &inventory.ECR{API: api, Registry: repo.RegistryStr(), Name: repo.RepositoryStr(), Archived: usesArchive(policy)}
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
		caps, _ := lifecycle.CapabilitiesFor(t.kind)
		if err := policy.Validate(caps); err != nil {
			return nil, failure.Invalid(fmt.Errorf("clean: the policy cannot be used on %s: %w", repo.Name(), err))
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

// evaluate lists one repository and plans what the policy does to it.
func evaluate(ctx context.Context, opts Options, policy *lifecycle.Policy, t target, mode string, now time.Time) (RepositoryResult, *inventory.Inventory, error) {
	end := opts.Log.Group("clean " + t.repo.Name())
	defer end()
	out := RepositoryResult{Repository: t.repo.Name(), Kind: string(t.kind)}
	inv, err := t.store.Inventory(ctx)
	if err != nil {
		return out, nil, explainListing(t, err)
	}
	out.Clocks, out.Notes, out.Warnings = inv.Clocks, inv.Notes, inv.Warnings
	for _, w := range inv.Warnings {
		opts.Log.Warnf("%s: %s", t.repo.Name(), w)
	}
	opts.Log.Infof("%s: %d manifests listed", t.repo.Name(), len(inv.Artifacts))
	plan, err := lifecycle.Evaluate(policy, inv.Artifacts, lifecycle.EvalOptions{Now: now, Protected: opts.Protected, DeleteOrphans: opts.DeleteOrphans})
	if err != nil {
		return out, nil, fmt.Errorf("clean: %s: %w", t.repo.Name(), err)
	}
	out.Plan = plan
	out.parents = inventory.Parents(inv.Artifacts)
	out.sizes = map[string]int64{}
	for _, a := range inv.Artifacts {
		out.sizes[a.Digest] = a.Size
	}
	opts.Log.Infof("%s: %d of %d images expire; %d manifests to delete", t.repo.Name(), plan.Counts.Expired, plan.Counts.Candidates, len(plan.Delete))
	if len(plan.Transitioned) > 0 && mode == ModeEnforce {
		out.Notes = append(out.Notes, fmt.Sprintf("%d images the policy would move to archive storage are left as they are: only ECR's own lifecycle transitions images (mode: apply)", len(plan.Transitioned)))
	}
	if t.kind == lifecycle.RegistryECR && mode == ModePreview {
		out.AWS = compareWithAWS(ctx, opts, policy, t, plan, out.parents)
		if out.AWS.Error != "" {
			if ctx.Err() != nil {
				return out, nil, fmt.Errorf("clean: %s: %w", t.repo.Name(), ctx.Err())
			}
			opts.Log.Warnf("%s: %s", t.repo.Name(), out.AWS.Error)
		}
	}
	return out, inv, nil
}

// explainListing turns a listing failure into a one-line error; an unknown
// repository or package is a bad input.
func explainListing(t target, err error) error {
	if errors.Is(err, ecr.ErrRepositoryNotFound) || errors.Is(err, ghcr.ErrNotFound) || errors.Is(err, inventory.ErrRepositoryNotFound) {
		return failure.Invalid(fmt.Errorf("clean: %w", err))
	}
	return fmt.Errorf("clean: %w", err)
}

// apply puts the policy on every repository (ECR only), showing how it
// differs from the current one.
func apply(ctx context.Context, opts Options, policy *lifecycle.Policy, targets []target, res *Result) error {
	text := string(policy.JSON())
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

// writePlan writes the JSON plan (the result itself) to PlanFile.
func (r *Result) writePlan() error {
	if r.PlanFile == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.PlanFile), 0o755); err != nil {
		return fmt.Errorf("clean: write the plan: %w", err)
	}
	data, err := r.planJSON()
	if err != nil {
		return fmt.Errorf("clean: write the plan: %w", err)
	}
	if err := os.WriteFile(r.PlanFile, data, 0o644); err != nil {
		return fmt.Errorf("clean: write the plan: %w", err)
	}
	return nil
}
