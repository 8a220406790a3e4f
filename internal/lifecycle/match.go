package lifecycle

import "strings"

// glob is a tagPatternList entry compiled once: the literal parts between
// its '*' wildcards. AWS anchors patterns at both ends, so "prod*" matches
// "production" but not "preprod".
type glob struct {
	parts []string // len(parts) == wildcards+1
}

func compileGlob(pattern string) glob {
	return glob{parts: strings.Split(pattern, "*")}
}

func (g glob) match(s string) bool {
	if len(g.parts) == 1 {
		return s == g.parts[0]
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	// With '*' the only metacharacter, taking the leftmost occurrence of each
	// middle part is always safe: it leaves the most room for the rest.
	rest := s[len(first) : len(s)-len(last)]
	for _, part := range g.parts[1 : len(g.parts)-1] {
		i := strings.Index(rest, part)
		if i < 0 {
			return false
		}
		rest = rest[i+len(part):]
	}
	return true
}

// selector is a rule's tag criteria, compiled once per evaluation.
type selector struct {
	status   string
	prefixes []string
	globs    []glob
}

func newSelector(s Selection) selector {
	sel := selector{status: s.TagStatus, prefixes: s.TagPrefixList}
	for _, p := range s.TagPatternList {
		sel.globs = append(sel.globs, compileGlob(p))
	}
	return sel
}

// matches applies AWS's tag rules: "untagged" wants no tags, "any" takes
// everything, and "tagged" wants every list entry to match at least one of
// the image's tags.
func (sel *selector) matches(tags []string) bool {
	switch sel.status {
	case TagStatusAny:
		return true
	case TagStatusUntagged:
		return len(tags) == 0
	case TagStatusTagged:
		if len(tags) == 0 {
			return false
		}
	next:
		for _, prefix := range sel.prefixes {
			for _, t := range tags {
				if strings.HasPrefix(t, prefix) {
					continue next
				}
			}
			return false
		}
	nextGlob:
		for _, g := range sel.globs {
			for _, t := range tags {
				if g.match(t) {
					continue nextGlob
				}
			}
			return false
		}
		return true
	}
	return false
}
