package clean

import (
	"fmt"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/lifecycle"
)

// PolicyInput is the policy as the user gave it: a document (from a file or
// inline) or the shorthand inputs.
type PolicyInput struct {
	// Text is an ECR lifecycle policy document; Source says where it came
	// from, e.g. "file .github/ecr-lifecycle.json" or "inline".
	Text   []byte
	Source string
	// Shorthand is used when Text is empty. The caller applies the default
	// protect-tags.
	Shorthand *lifecycle.Shorthand
}

// resolvePolicy parses the document or compiles the shorthand. Every problem
// is a bad input: the one-line error names the line and column of a JSON
// mistake, or the rule and field of a policy mistake.
func resolvePolicy(in PolicyInput) (*lifecycle.Policy, string, error) {
	if len(in.Text) > 0 {
		source := in.Source
		if source == "" {
			source = "inline"
		}
		p, err := lifecycle.Parse(in.Text)
		if err != nil {
			return nil, "", failure.Invalid(fmt.Errorf("clean: policy (%s): %w", source, err))
		}
		caps, _ := lifecycle.CapabilitiesFor(lifecycle.RegistryECR)
		if err := p.Validate(caps); err != nil {
			return nil, "", failure.Invalid(fmt.Errorf("clean: policy (%s): %w", source, err))
		}
		return p, source, nil
	}
	if in.Shorthand == nil {
		return nil, "", failure.Invalidf("clean: no policy: set policy (a file or inline JSON) or keep-tagged, untagged-older-than or tagged-older-than")
	}
	p, err := lifecycle.Compile(*in.Shorthand)
	if err != nil {
		return nil, "", failure.Invalid(fmt.Errorf("clean: %w", err))
	}
	return p, "shorthand", nil
}

// usesArchive reports whether a policy has rules about archived images,
// which ECR lists only when asked for every image status.
func usesArchive(p *lifecycle.Policy) bool {
	for _, r := range p.Rules {
		if r.Selection.StorageClass == lifecycle.StorageClassArchive || r.Action.Type == lifecycle.ActionTransition {
			return true
		}
	}
	return false
}
