package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/ghcr"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/clean"
	"github.com/registry-actions/registry/internal/version"
)

func runClean(ctx context.Context, r *Run) (report.Result, error) {
	v := r.Values
	images, err := r.targetImages(inputs.Clean)
	if err != nil {
		return nil, err
	}
	mode := strings.ToLower(strings.TrimSpace(v.String("mode")))
	var policy clean.PolicyInput
	if mode != clean.ModeList || v.IsSet("policy") || slices.ContainsFunc(shorthandInputs, v.IsSet) {
		if policy, err = r.cleanPolicy(); err != nil {
			return nil, err
		}
	}
	maxDeletions, _ := v.Int("max-deletions")
	grace, set := v.Duration("untagged-grace")
	if !set {
		grace = clean.DefaultUntaggedGrace
	}
	opts := clean.Options{
		Images:        images,
		Policy:        policy,
		Mode:          v.String("mode"),
		MaxDeletions:  maxDeletions,
		DeleteOrphans: v.Bool("delete-orphans"),
		UntaggedGrace: grace,
		Protected:     r.protectedDigests(),
		OutputDir:     r.Path(v.String("output-dir")),
		WorkDir:       r.IO.Dir,
		Registry:      r.Registry,
		ECR: func(ctx context.Context, host registry.ECRHost) (clean.ECRAPI, error) {
			return ecr.New(ctx, ecr.Options{Region: host.Region, RegistryID: host.AccountID})
		},
		GitHub: func() (inventory.GitHubAPI, error) {
			return ghcr.New(ghcr.Options{APIURL: r.IO.Getenv("GITHUB_API_URL"), Token: v.String("github-token"), UserAgent: version.UserAgent()})
		},
		Log: r.Log,
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	res, err := clean.Run(ctx, opts)
	if res == nil {
		return nil, err
	}
	return res, err
}

// shorthandInputs are the inputs that build a policy without JSON.
var shorthandInputs = []string{"keep-tagged", "untagged-older-than", "tagged-older-than", "tag-patterns", "protect-tags"}

// cleanPolicy reads the policy input (a file path or inline JSON) or the
// shorthand inputs; exactly one of the two must be given.
func (r *Run) cleanPolicy() (clean.PolicyInput, error) {
	v := r.Values
	var shorthand []string
	for _, name := range shorthandInputs {
		if v.IsSet(name) {
			shorthand = append(shorthand, name)
		}
	}
	if v.IsSet("policy") {
		if len(shorthand) > 0 {
			return clean.PolicyInput{}, failure.Invalidf("clean: policy and %s are both set: use policy alone (write those rules into it), or remove policy to use the shorthand inputs", strings.Join(shorthand, ", "))
		}
		raw := strings.TrimSpace(v.String("policy"))
		if strings.HasPrefix(raw, "{") {
			return clean.PolicyInput{Text: []byte(raw), Source: "inline"}, nil
		}
		data, err := os.ReadFile(r.Path(raw))
		if err != nil {
			return clean.PolicyInput{}, failure.Invalidf("clean: policy file %q cannot be read (%s): give a path relative to the working directory, or the policy JSON itself", raw, describeFileError(err))
		}
		return clean.PolicyInput{Text: data, Source: "file " + raw}, nil
	}
	if !v.IsSet("keep-tagged") && !v.IsSet("untagged-older-than") && !v.IsSet("tagged-older-than") {
		return clean.PolicyInput{}, failure.Invalidf("clean: no policy: set policy (an ECR lifecycle policy file or inline JSON), or at least one of keep-tagged, untagged-older-than and tagged-older-than")
	}
	keep, _ := v.Int("keep-tagged")
	sh := &lifecycle.Shorthand{
		KeepTagged:        keep,
		UntaggedOlderThan: r.days("untagged-older-than"),
		TaggedOlderThan:   r.days("tagged-older-than"),
		TagPatterns:       v.List("tag-patterns"),
		ProtectTags:       v.List("protect-tags"),
	}
	if err := v.Err(); err != nil {
		return clean.PolicyInput{}, err
	}
	return clean.PolicyInput{Shorthand: sh}, nil
}

// days reads an age input in whole days ("7d", "7 days", "7").
func (r *Run) days(name string) time.Duration {
	raw := r.Values.String(name)
	parsed, err := lifecycle.ParseDays(raw)
	if err != nil {
		r.Values.Fail(fmt.Errorf("input %q: %w", name, err))
	}
	return parsed
}

// protectedDigests are what this run pushed: clean never deletes them.
func (r *Run) protectedDigests() []string {
	var out []string
	if r.State.Digest != "" {
		out = append(out, r.State.Digest)
	}
	for _, ref := range r.State.Pushed {
		if _, d, ok := strings.Cut(ref, "@"); ok && d != r.State.Digest {
			out = append(out, d)
		}
	}
	return out
}

func describeFileError(err error) string {
	switch {
	case os.IsNotExist(err):
		return "no such file"
	case os.IsPermission(err):
		return "permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
