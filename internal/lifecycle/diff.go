package lifecycle

import (
	"fmt"
	"slices"
	"strings"
)

// Diff describes, rule by rule, how policy next differs from policy current
// (nil means no policy). Rules are matched by priority. The text reads as a
// diff: "+ rule 3: {...}" for an added rule, "- rule 4: {...}" for a removed
// one, and for a changed rule a "  rule 2:" line followed by "-" and "+"
// lines for each changed field. Identical policies give "".
func Diff(current, next *Policy) string {
	var b strings.Builder
	oldRules, newRules := rulesByPriority(current), rulesByPriority(next)
	for _, prio := range unionKeys(oldRules, newRules) {
		olds, news := oldRules[prio], newRules[prio]
		for k := 0; k < max(len(olds), len(news)); k++ {
			switch {
			case k >= len(olds):
				fmt.Fprintf(&b, "+ rule %d: %s\n", prio, compactJSON(news[k]))
			case k >= len(news):
				fmt.Fprintf(&b, "- rule %d: %s\n", prio, compactJSON(olds[k]))
			default:
				diffRule(&b, prio, olds[k], news[k])
			}
		}
	}
	return b.String()
}

func rulesByPriority(p *Policy) map[int][]Rule {
	out := map[int][]Rule{}
	if p == nil {
		return out
	}
	for _, r := range p.canonical().Rules {
		out[r.RulePriority] = append(out[r.RulePriority], r)
	}
	return out
}

func unionKeys(a, b map[int][]Rule) []int {
	seen := map[int]bool{}
	var keys []int
	for _, m := range []map[int][]Rule{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

type ruleField struct {
	path  string
	value string // JSON rendering; "" when absent
}

// fields flattens a rule in AWS's field order.
func fields(r Rule) []ruleField {
	s, a := r.Selection, r.Action
	str := func(v string) string {
		if v == "" {
			return ""
		}
		return compactJSON(v)
	}
	list := func(v []string) string {
		if v == nil {
			return ""
		}
		return compactJSON(v)
	}
	num := func(v int, given bool) string {
		if !given {
			return ""
		}
		return fmt.Sprint(v)
	}
	return []ruleField{
		{"description", str(r.Description)},
		{"selection.tagStatus", str(s.TagStatus)},
		{"selection.tagPatternList", list(s.TagPatternList)},
		{"selection.tagPrefixList", list(s.TagPrefixList)},
		{"selection.storageClass", str(s.StorageClass)},
		{"selection.countType", str(s.CountType)},
		{"selection.countUnit", str(s.CountUnit)},
		{"selection.countNumber", num(s.CountNumber, r.has(setCountNumber))},
		{"action.type", str(a.Type)},
		{"action.targetStorageClass", str(a.TargetStorageClass)},
	}
}

func diffRule(b *strings.Builder, prio int, old, next Rule) {
	of, nf := fields(old), fields(next)
	header := false
	for i := range of {
		if of[i].value == nf[i].value {
			continue
		}
		if !header {
			fmt.Fprintf(b, "  rule %d:\n", prio)
			header = true
		}
		if of[i].value != "" {
			fmt.Fprintf(b, "-   %s: %s\n", of[i].path, of[i].value)
		}
		if nf[i].value != "" {
			fmt.Fprintf(b, "+   %s: %s\n", nf[i].path, nf[i].value)
		}
	}
}
