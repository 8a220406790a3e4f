// Package lifecycle parses, validates and evaluates Amazon ECR lifecycle
// policies, the one policy language the clean stage speaks for every
// registry kind.
//
// The package is pure: it performs no I/O. Registry clients build an
// inventory of artifacts ([Artifact]); [Evaluate] turns a policy and an
// inventory into a [Plan] saying what expires, what cascades with it, and
// what is kept. Evaluation follows AWS's documented algorithm over the
// top-level artifacts of a repository, and then makes the result safe for
// multi-architecture images and signatures: platform manifests, attestation
// manifests and referrers live and die with the index or subject that
// references them.
package lifecycle

import (
	"bytes"
	"encoding/json"
	"slices"
)

// Values of the policy language, spelled as AWS spells them.
const (
	TagStatusTagged   = "tagged"
	TagStatusUntagged = "untagged"
	TagStatusAny      = "any"

	CountTypeImageCountMoreThan     = "imageCountMoreThan"
	CountTypeSinceImagePushed       = "sinceImagePushed"
	CountTypeSinceImagePulled       = "sinceImagePulled"
	CountTypeSinceImageTransitioned = "sinceImageTransitioned"

	CountUnitDays = "days"

	StorageClassStandard = "standard"
	StorageClassArchive  = "archive"

	ActionExpire     = "expire"
	ActionTransition = "transition"
)

// Limits AWS enforces on PutLifecyclePolicy.
const (
	MaxRules                = 50
	MinPolicyTextLength     = 100
	MaxPolicyTextLength     = 30720
	MaxWildcardsPerPattern  = 4
	MinDaysInArchive        = 90 // images stay archived at least this long before a rule may expire them
	maxIntegerInPolicyValue = 1<<31 - 1
)

// Policy is an ECR lifecycle policy document.
type Policy struct {
	Rules []Rule `json:"rules"`

	// text is the document as submitted, when the policy was parsed.
	text string
}

// Text is the policy text to submit to AWS: the document as the user wrote
// it when it was parsed (AWS measures and stores that text), else the
// canonical rendering (JSON).
func (p *Policy) Text() string {
	if p.text != "" {
		return p.text
	}
	return string(p.JSON())
}

// Rule is one lifecycle rule. Field order follows AWS's template so the
// canonical rendering reads like AWS's documentation.
type Rule struct {
	RulePriority int       `json:"rulePriority"`
	Description  string    `json:"description,omitempty"`
	Selection    Selection `json:"selection"`
	Action       Action    `json:"action"`

	// set records which fields the parsed document spelled out, so that
	// `"countNumber": 0` and a missing countNumber get different messages.
	set fieldSet
}

// Selection says which images a rule looks at and which of them it acts on.
type Selection struct {
	TagStatus      string   `json:"tagStatus"`
	TagPatternList []string `json:"tagPatternList,omitzero"`
	TagPrefixList  []string `json:"tagPrefixList,omitzero"`
	StorageClass   string   `json:"storageClass,omitempty"`
	CountType      string   `json:"countType"`
	CountUnit      string   `json:"countUnit,omitempty"`
	CountNumber    int      `json:"countNumber"`
}

// Action is what happens to the images a rule marks.
type Action struct {
	Type               string `json:"type"`
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
}

type fieldSet uint16

const (
	setRulePriority fieldSet = 1 << iota
	setTagStatus
	setTagPatternList
	setTagPrefixList
	setStorageClass
	setCountType
	setCountUnit
	setCountNumber
	setActionType
	setTargetStorageClass
)

// has reports whether a field was given: spelled out in a parsed document,
// or holding a non-zero value in a policy built in Go.
func (r *Rule) has(f fieldSet) bool {
	if r.set&f != 0 {
		return true
	}
	s := &r.Selection
	switch f {
	case setRulePriority:
		return r.RulePriority != 0
	case setTagStatus:
		return s.TagStatus != ""
	case setTagPatternList:
		return s.TagPatternList != nil
	case setTagPrefixList:
		return s.TagPrefixList != nil
	case setStorageClass:
		return s.StorageClass != ""
	case setCountType:
		return s.CountType != ""
	case setCountUnit:
		return s.CountUnit != ""
	case setCountNumber:
		return s.CountNumber != 0
	case setActionType:
		return r.Action.Type != ""
	case setTargetStorageClass:
		return r.Action.TargetStorageClass != ""
	}
	return false
}

// storageClass is the storage class a rule selects from; AWS defaults it to
// standard.
func (s Selection) storageClass() string {
	if s.StorageClass == "" {
		return StorageClassStandard
	}
	return s.StorageClass
}

// JSON renders the policy canonically: rules sorted by priority, fields in
// AWS's template order, two-space indentation, no HTML escaping, a trailing
// newline. The same policy always renders to the same bytes, so the text can
// be pasted into ECR, stored, and compared.
func (p *Policy) JSON() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// Encoding these plain structs cannot fail.
	_ = enc.Encode(p.canonical())
	return buf.Bytes()
}

// compactJSON is the canonical rendering without indentation, used to show a
// single rule on one line.
func compactJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func (p *Policy) canonical() *Policy {
	out := &Policy{Rules: make([]Rule, 0, len(p.Rules))}
	for _, r := range p.Rules {
		r.Selection.TagPatternList = slices.Clone(r.Selection.TagPatternList)
		r.Selection.TagPrefixList = slices.Clone(r.Selection.TagPrefixList)
		r.set = 0
		out.Rules = append(out.Rules, r)
	}
	slices.SortStableFunc(out.Rules, func(a, b Rule) int { return a.RulePriority - b.RulePriority })
	return out
}
