package lifecycle

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Shorthand is a lifecycle policy for people who would rather not write
// JSON. Each field mirrors the clean stage input of the same name.
type Shorthand struct {
	// KeepTagged keeps the N most recent tagged images (per tag pattern) and
	// expires the older ones. 0 means no such rule.
	KeepTagged int
	// UntaggedOlderThan expires untagged images older than this many whole
	// days. 0 means no such rule.
	UntaggedOlderThan time.Duration
	// TaggedOlderThan expires tagged images older than this many whole days
	// (per tag pattern). 0 means no such rule.
	TaggedOlderThan time.Duration
	// TagPatterns restricts the tagged rules to tags matching any of these
	// patterns ('*' wildcards); empty means every tagged image.
	TagPatterns []string
	// ProtectTags are tags (or patterns) whose images are never expired. The
	// caller applies the default, ["latest"].
	ProtectTags []string
}

// ProtectCount is the countNumber of a protecting rule: larger than any
// repository, so the rule never expires anything.
const ProtectCount = 1_000_000

// Compile turns a Shorthand into an ECR lifecycle policy that ECR accepts
// as is, in this shape (priorities consecutive from 1):
//
//  1. One rule per protect tag t, first:
//     {tagStatus: tagged, tagPatternList: [t], countType: imageCountMoreThan,
//     countNumber: 1000000, action: expire}.
//     It expires nothing, but it selects every image carrying t, and AWS never
//     lets a lower-priority rule expire an image a higher-priority rule
//     selected. That is how ECR protects tags.
//  2. If UntaggedOlderThan is set: {tagStatus: untagged, countType:
//     sinceImagePushed, countUnit: days, countNumber: days, action: expire}.
//  3. For each tag pattern p (["*"] when TagPatterns is empty), either
//     {tagStatus: tagged, tagPatternList: [p], countType: imageCountMoreThan,
//     countNumber: KeepTagged, action: expire} when KeepTagged is set, or
//     {tagStatus: tagged, tagPatternList: [p], countType: sinceImagePushed,
//     countUnit: days, countNumber: days, action: expire} when
//     TaggedOlderThan is set.
//
// Protect tags and tag patterns each get their own rule because a
// tagPatternList with several entries selects only images carrying all of
// them, while the shorthand means any of them.
//
// KeepTagged and TaggedOlderThan cannot both be set: whichever rule comes
// first selects every image of the pattern, so AWS would never let the
// second one expire anything. Write a policy file for finer control.
func Compile(s Shorthand) (*Policy, error) {
	var problems []string
	if s.KeepTagged < 0 {
		problems = append(problems, fmt.Sprintf("keep-tagged must not be negative, got %d", s.KeepTagged))
	}
	untaggedDays, err := wholeDays("untagged-older-than", s.UntaggedOlderThan)
	if err != nil {
		problems = append(problems, err.Error())
	}
	taggedDays, err := wholeDays("tagged-older-than", s.TaggedOlderThan)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if s.KeepTagged > 0 && s.TaggedOlderThan > 0 {
		problems = append(problems, "keep-tagged and tagged-older-than cannot both be set: in ECR's policy language the first of the two rules selects every tagged image, so the second would never expire anything; set one of them, or write a policy file")
	}
	if s.KeepTagged == 0 && s.UntaggedOlderThan == 0 && s.TaggedOlderThan == 0 {
		problems = append(problems, "the shorthand has no rule: set keep-tagged, untagged-older-than or tagged-older-than, or give a policy")
	}
	if len(s.TagPatterns) > 0 && s.KeepTagged == 0 && s.TaggedOlderThan == 0 {
		problems = append(problems, "tag-patterns only applies to keep-tagged or tagged-older-than; set one of them, or remove tag-patterns")
	}
	protect := checkPatterns("protect-tags", s.ProtectTags, &problems)
	patterns := checkPatterns("tag-patterns", s.TagPatterns, &problems)
	for _, p := range patterns {
		if slices.Contains(protect, p) {
			problems = append(problems, fmt.Sprintf("tag-patterns entry %q is also in protect-tags, so its images are never expired; remove it from one of them", p))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New("invalid lifecycle shorthand: " + strings.Join(problems, "; "))
	}

	p := &Policy{}
	add := func(r Rule) {
		r.RulePriority = len(p.Rules) + 1
		r.Action = Action{Type: ActionExpire}
		p.Rules = append(p.Rules, r)
	}
	for _, t := range protect {
		add(Rule{
			Description: fmt.Sprintf("Protect images tagged %s: selected here, never expired by a later rule", t),
			Selection: Selection{TagStatus: TagStatusTagged, TagPatternList: []string{t},
				CountType: CountTypeImageCountMoreThan, CountNumber: ProtectCount},
		})
	}
	if untaggedDays > 0 {
		add(Rule{
			Description: fmt.Sprintf("Expire untagged images older than %s", plural(untaggedDays, "day")),
			Selection: Selection{TagStatus: TagStatusUntagged,
				CountType: CountTypeSinceImagePushed, CountUnit: CountUnitDays, CountNumber: untaggedDays},
		})
	}
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	for _, pat := range patterns {
		// "images tagged pr-*", or "tagged images" for every tag.
		which := "images tagged " + pat
		if pat == "*" {
			which = "tagged images"
		}
		switch {
		case s.KeepTagged > 0:
			add(Rule{
				Description: fmt.Sprintf("Keep the %d most recent %s, expire older ones", s.KeepTagged, which),
				Selection: Selection{TagStatus: TagStatusTagged, TagPatternList: []string{pat},
					CountType: CountTypeImageCountMoreThan, CountNumber: s.KeepTagged},
			})
		case taggedDays > 0:
			add(Rule{
				Description: fmt.Sprintf("Expire %s older than %s", which, plural(taggedDays, "day")),
				Selection: Selection{TagStatus: TagStatusTagged, TagPatternList: []string{pat},
					CountType: CountTypeSinceImagePushed, CountUnit: CountUnitDays, CountNumber: taggedDays},
			})
		}
	}
	caps, _ := CapabilitiesFor(RegistryECR)
	if err := p.Validate(caps); err != nil {
		return nil, fmt.Errorf("compile lifecycle shorthand: %w", err)
	}
	return p, nil
}

func checkPatterns(input string, list []string, problems *[]string) []string {
	var out []string
	for _, p := range list {
		switch {
		case p == "":
			*problems = append(*problems, input+" has an empty entry")
		case strings.Count(p, "*") > MaxWildcardsPerPattern:
			*problems = append(*problems, fmt.Sprintf("%s entry %q has more than %d wildcards", input, p, MaxWildcardsPerPattern))
		case !slices.Contains(out, p):
			out = append(out, p)
		}
	}
	return out
}

func wholeDays(input string, d time.Duration) (int, error) {
	const day = 24 * time.Hour
	switch {
	case d < 0:
		return 0, fmt.Errorf("%s must not be negative, got %s", input, d)
	case d%day != 0:
		return 0, fmt.Errorf("%s must be a whole number of days (ECR counts in days), got %s", input, d)
	case d/day > maxIntegerInPolicyValue:
		return 0, fmt.Errorf("%s is too large", input)
	}
	return int(d / day), nil
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// ParseDays reads an age given in days: "7d", "7 days", "7", or a Go
// duration that is a whole number of days ("168h"). An empty string is 0,
// meaning "not set".
func ParseDays(s string) (time.Duration, error) {
	const day = 24 * time.Hour
	const maxDays = int(math.MaxInt64 / int64(day))
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	num := strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(t, "days"), "day"), "d"))
	if n, err := strconv.Atoi(num); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("age %q is negative", s)
		}
		if n > maxDays {
			return 0, fmt.Errorf("age %q is too large", s)
		}
		return time.Duration(n) * day, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("age %q is not a number of days: write it like 7d", s)
	}
	if d < 0 || d%day != 0 {
		return 0, fmt.Errorf("age %q is not a whole number of days: write it like 7d", s)
	}
	return d, nil
}
