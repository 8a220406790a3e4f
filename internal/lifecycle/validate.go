package lifecycle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RegistryKind names a kind of registry the clean stage can target.
type RegistryKind string

// Registry kinds.
const (
	RegistryECR  RegistryKind = "ecr"
	RegistryGHCR RegistryKind = "ghcr"
	RegistryOCI  RegistryKind = "oci"
)

// Capabilities says which parts of the policy language a registry can
// honour. ECR honours all of it; registries without storage classes or pull
// records cannot archive images or count days since a pull, and a policy
// asking for that must be rejected rather than silently approximated.
type Capabilities struct {
	Kind RegistryKind
	// Archive: storage classes, transition actions, sinceImageTransitioned.
	Archive bool
	// PullTimes: sinceImagePulled.
	PullTimes bool
}

// CapabilitiesFor returns what a registry kind supports.
func CapabilitiesFor(kind RegistryKind) (Capabilities, error) {
	switch kind {
	case RegistryECR:
		return Capabilities{Kind: kind, Archive: true, PullTimes: true}, nil
	case RegistryGHCR, RegistryOCI:
		return Capabilities{Kind: kind}, nil
	}
	return Capabilities{}, fmt.Errorf("unknown registry kind %q: use %q, %q or %q", kind, RegistryECR, RegistryGHCR, RegistryOCI)
}

// registries names the registries of a kind in a sentence such as "... is
// not supported on GHCR repositories, which have no archive storage".
func (k RegistryKind) registries() string {
	switch k {
	case RegistryECR:
		return "ECR repositories"
	case RegistryGHCR:
		return "GHCR repositories"
	case RegistryOCI:
		return "plain OCI registries"
	}
	return fmt.Sprintf("registries of kind %q", string(k))
}

var (
	tagStatuses = []string{TagStatusTagged, TagStatusUntagged, TagStatusAny}
	countTypes  = []string{CountTypeImageCountMoreThan, CountTypeSinceImagePushed, CountTypeSinceImagePulled, CountTypeSinceImageTransitioned}
	actions     = []string{ActionExpire, ActionTransition}
	classes     = []string{StorageClassStandard, StorageClassArchive}
)

// Validate checks the policy against every rule AWS documents for
// PutLifecyclePolicy, and against what the target registry can honour. It
// returns a *PolicyError listing all problems, each naming the rule and the
// field, or nil.
//
// The text-length limit applies to the text as submitted (Text): the
// document as written, or the canonical rendering of a policy built in Go.
func (p *Policy) Validate(caps Capabilities) error {
	v := &validator{p: p, caps: caps}
	v.policy()
	if len(v.problems) > 0 {
		return &PolicyError{Problems: v.problems}
	}
	return nil
}

type validator struct {
	p        *Policy
	caps     Capabilities
	problems []Problem
	labels   []string
}

func (v *validator) add(i int, field, format string, args ...any) {
	label := "policy"
	if i >= 0 {
		label = v.labels[i]
	}
	v.problems = append(v.problems, Problem{
		Rule:    label,
		Field:   field,
		Message: label + ": " + fmt.Sprintf(format, args...),
	})
}

func (v *validator) policy() {
	rules := v.p.Rules
	byPriority := map[int][]int{}
	for i, r := range rules {
		byPriority[r.RulePriority] = append(byPriority[r.RulePriority], i)
	}
	// A rule is named by its priority when that names it unambiguously.
	v.labels = make([]string, len(rules))
	for i, r := range rules {
		if r.RulePriority >= 1 && len(byPriority[r.RulePriority]) == 1 {
			v.labels[i] = "rule " + strconv.Itoa(r.RulePriority)
		} else {
			v.labels[i] = fmt.Sprintf("rules[%d]", i)
		}
	}

	if len(rules) == 0 {
		v.add(-1, "rules", "has no rules; AWS requires at least one")
	}
	if len(rules) > MaxRules {
		v.add(-1, "rules", "has %d rules; AWS allows at most %d", len(rules), MaxRules)
	}
	if n := utf8.RuneCountInString(v.p.Text()); n < MinPolicyTextLength || n > MaxPolicyTextLength {
		v.add(-1, "rules", "text is %d characters long; AWS accepts %d to %d characters", n, MinPolicyTextLength, MaxPolicyTextLength)
	}

	for i := range rules {
		v.rule(i)
	}

	reported := map[int]bool{}
	for i, r := range rules {
		same := byPriority[r.RulePriority]
		if r.RulePriority >= 1 && len(same) > 1 && !reported[r.RulePriority] {
			reported[r.RulePriority] = true
			names := make([]string, len(same))
			for j, k := range same {
				names[j] = fmt.Sprintf("rules[%d]", k)
			}
			v.problems = append(v.problems, Problem{
				Rule:  v.labels[i],
				Field: "rulePriority",
				Message: fmt.Sprintf("rule %d: rulePriority %d is used by %s; every rule needs a unique priority",
					r.RulePriority, r.RulePriority, strings.Join(names, " and ")),
			})
		}
	}
	v.perStorageClass()
}

func (v *validator) rule(i int) {
	r := &v.p.Rules[i]
	s := &r.Selection

	if !r.has(setRulePriority) {
		v.add(i, "rulePriority", "rulePriority is required")
	} else if r.RulePriority < 1 {
		v.add(i, "rulePriority", "rulePriority must be at least 1, got %d", r.RulePriority)
	}

	switch {
	case !r.has(setTagStatus):
		v.add(i, "tagStatus", "tagStatus is required (%s)", orList(tagStatuses))
	case !slices.Contains(tagStatuses, s.TagStatus):
		v.add(i, "tagStatus", "tagStatus %q is not one of %s", s.TagStatus, strings.Join(tagStatuses, ", "))
	}
	v.tagLists(i)

	countTypeKnown := slices.Contains(countTypes, s.CountType)
	switch {
	case !r.has(setCountType):
		v.add(i, "countType", "countType is required (%s)", orList(countTypes))
	case !countTypeKnown:
		v.add(i, "countType", "countType %q is not one of %s", s.CountType, strings.Join(countTypes, ", "))
	}
	since := countTypeKnown && s.CountType != CountTypeImageCountMoreThan
	switch {
	case since && !r.has(setCountUnit):
		v.add(i, "countUnit", "countUnit is required with countType %q; set it to %q", s.CountType, CountUnitDays)
	case since && s.CountUnit != CountUnitDays:
		v.add(i, "countUnit", "countUnit %q is not supported; the only unit is %q", s.CountUnit, CountUnitDays)
	case s.CountType == CountTypeImageCountMoreThan && r.has(setCountUnit):
		v.add(i, "countUnit", "countUnit is not allowed with countType %q; remove it", s.CountType)
	}
	switch {
	case !r.has(setCountNumber):
		v.add(i, "countNumber", "countNumber is required")
	case s.CountNumber < 1:
		v.add(i, "countNumber", "countNumber must be at least 1, got %d", s.CountNumber)
	case s.CountType == CountTypeSinceImageTransitioned && s.CountNumber < MinDaysInArchive:
		v.add(i, "countNumber", "countNumber %d is too small for countType %q; archived images must stay archived at least %d days before they expire",
			s.CountNumber, s.CountType, MinDaysInArchive)
	}

	if r.has(setStorageClass) && !slices.Contains(classes, s.StorageClass) {
		v.add(i, "storageClass", "storageClass %q is not one of %s", s.StorageClass, strings.Join(classes, ", "))
	}
	switch {
	case s.CountType == CountTypeSinceImageTransitioned && s.StorageClass != StorageClassArchive:
		v.add(i, "storageClass", "countType %q requires storageClass %q", s.CountType, StorageClassArchive)
	case s.StorageClass == StorageClassArchive && countTypeKnown && s.CountType != CountTypeSinceImageTransitioned:
		v.add(i, "storageClass", "storageClass %q is only allowed with countType %q", StorageClassArchive, CountTypeSinceImageTransitioned)
	}

	v.action(i)
	v.capabilities(i)
}

func (v *validator) tagLists(i int) {
	r := &v.p.Rules[i]
	s := &r.Selection
	hasPrefix, hasPattern := r.has(setTagPrefixList), r.has(setTagPatternList)
	if hasPrefix && hasPattern {
		v.add(i, "tagPatternList", "tagPrefixList and tagPatternList cannot both be set; use one of them")
	}
	if s.TagStatus == TagStatusTagged && !hasPrefix && !hasPattern {
		v.add(i, "tagPatternList", "tagStatus %q requires tagPatternList or tagPrefixList", TagStatusTagged)
	}
	if r.has(setTagStatus) && s.TagStatus != TagStatusTagged {
		if hasPattern {
			v.add(i, "tagPatternList", "tagPatternList is only allowed with tagStatus %q", TagStatusTagged)
		}
		if hasPrefix {
			v.add(i, "tagPrefixList", "tagPrefixList is only allowed with tagStatus %q", TagStatusTagged)
		}
	}
	if hasPattern && len(s.TagPatternList) == 0 {
		v.add(i, "tagPatternList", "tagPatternList is empty; list at least one pattern")
	}
	if hasPrefix && len(s.TagPrefixList) == 0 {
		v.add(i, "tagPrefixList", "tagPrefixList is empty; list at least one prefix")
	}
	for _, pre := range s.TagPrefixList {
		if pre == "" {
			v.add(i, "tagPrefixList", "tagPrefixList has an empty entry; remove it or write a prefix")
		}
	}
	for _, pat := range s.TagPatternList {
		if pat == "" {
			v.add(i, "tagPatternList", "tagPatternList has an empty entry; remove it or write a pattern")
		}
		if n := strings.Count(pat, "*"); n > MaxWildcardsPerPattern {
			v.add(i, "tagPatternList", "tagPatternList %q has more than %d wildcards", pat, MaxWildcardsPerPattern)
		}
	}
}

func (v *validator) action(i int) {
	r := &v.p.Rules[i]
	a := &r.Action
	switch {
	case !r.has(setActionType):
		v.add(i, "type", "action type is required (%s)", orList(actions))
	case !slices.Contains(actions, a.Type):
		v.add(i, "type", "action type %q is not one of %s", a.Type, strings.Join(actions, ", "))
	}
	switch {
	case a.Type == ActionTransition && !r.has(setTargetStorageClass):
		v.add(i, "targetStorageClass", "action type %q requires targetStorageClass %q", ActionTransition, StorageClassArchive)
	case a.Type == ActionTransition && a.TargetStorageClass != StorageClassArchive:
		v.add(i, "targetStorageClass", "targetStorageClass %q is not supported; the only value is %q", a.TargetStorageClass, StorageClassArchive)
	case a.Type != ActionTransition && r.has(setTargetStorageClass):
		v.add(i, "targetStorageClass", "targetStorageClass is only allowed with action type %q", ActionTransition)
	}
	ct := r.Selection.CountType
	if ct == CountTypeSinceImagePulled && r.has(setActionType) && a.Type != ActionTransition {
		v.add(i, "countType", "countType %q is only allowed with action type %q", ct, ActionTransition)
	}
	if ct == CountTypeSinceImageTransitioned && r.has(setActionType) && a.Type != ActionExpire {
		v.add(i, "countType", "countType %q is only allowed with action type %q", ct, ActionExpire)
	}
}

// capabilities rejects what the target registry cannot do, saying what to
// change instead.
func (v *validator) capabilities(i int) {
	r := &v.p.Rules[i]
	where := v.caps.Kind.registries()
	if !v.caps.Archive {
		if r.Action.Type == ActionTransition {
			v.add(i, "type", "action type %q is not supported on %s, which have no archive storage; use %q, or apply this rule to an ECR repository",
				ActionTransition, where, ActionExpire)
		}
		if r.Selection.CountType == CountTypeSinceImageTransitioned {
			v.add(i, "countType", "countType %q is not supported on %s, which have no archive storage; use %q",
				CountTypeSinceImageTransitioned, where, CountTypeSinceImagePushed)
		}
		if r.Selection.StorageClass == StorageClassArchive {
			v.add(i, "storageClass", "storageClass %q is not supported on %s, which have no archive storage; remove storageClass",
				StorageClassArchive, where)
		}
	}
	if !v.caps.PullTimes && r.Selection.CountType == CountTypeSinceImagePulled {
		v.add(i, "countType", "countType %q is not supported on %s, which record no pull times; use %q",
			CountTypeSinceImagePulled, where, CountTypeSinceImagePushed)
	}
}

// perStorageClass checks the rules AWS applies among the rules selecting the
// same storage class: the "any" rule comes last, one rule selects untagged
// images, and no two rules share a tag prefix (or pattern) set. AWS's own
// archive example has an "any" rule for each storage class, which is why
// these checks are per class.
func (v *validator) perStorageClass() {
	rules := v.p.Rules
	order := make([]int, len(rules))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rules[a].RulePriority - rules[b].RulePriority })

	for _, class := range classes {
		var inClass []int
		for _, i := range order {
			if rules[i].Selection.storageClass() == class {
				inClass = append(inClass, i)
			}
		}
		untagged := -1
		prefixSets := map[string]int{}
		patternSets := map[string]int{}
		for pos, i := range inClass {
			s := rules[i].Selection
			if s.TagStatus == TagStatusAny && pos < len(inClass)-1 {
				later := inClass[len(inClass)-1]
				v.add(i, "tagStatus", "a rule with tagStatus %q must have the highest rulePriority among rules selecting %s images, but %s comes after it",
					TagStatusAny, class, v.labels[later])
			}
			if s.TagStatus == TagStatusUntagged {
				if untagged >= 0 {
					v.add(i, "tagStatus", "only one rule may select untagged %s images, and %s already does", class, v.labels[untagged])
				} else {
					untagged = i
				}
			}
			if s.TagStatus == TagStatusTagged {
				v.uniqueSet(i, "tagPrefixList", s.TagPrefixList, prefixSets, class)
				v.uniqueSet(i, "tagPatternList", s.TagPatternList, patternSets, class)
			}
		}
	}
}

func (v *validator) uniqueSet(i int, field string, list []string, seen map[string]int, class string) {
	if len(list) == 0 {
		return
	}
	set := slices.Clone(list)
	slices.Sort(set)
	set = slices.Compact(set)
	key := strings.Join(set, "\x00")
	if first, ok := seen[key]; ok {
		v.add(i, field, "%s %s repeats %s's; rules selecting %s images need distinct tag sets", field, quoteList(list), v.labels[first], class)
		return
	}
	seen[key] = i
}

func orList(values []string) string {
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
