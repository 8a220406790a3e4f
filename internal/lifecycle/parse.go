package lifecycle

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a policy. Parse reports problems with the
// line and column of the offending JSON; Validate reports them by rule
// ("rule 2") and field.
type Problem struct {
	Line, Column int    // where in the document, when known
	Rule         string // "rule 2", or "rules[1]" when the priority cannot name the rule
	Field        string // JSON field name, e.g. "tagPatternList"
	Message      string // the complete sentence, e.g. `rule 2: tagPatternList "a*" ...`
}

func (p Problem) Error() string { return p.Message }

// PolicyError lists every problem found in a policy, not only the first, so
// one round of editing can fix them all.
type PolicyError struct {
	Problems []Problem
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return "invalid lifecycle policy: " + strings.Join(msgs, "; ")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (e *PolicyError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// Parse reads an ECR lifecycle policy document as AWS accepts it. Malformed
// JSON yields a *SyntaxError with line and column. Fields AWS does not know,
// and values of the wrong JSON type, yield a *PolicyError naming each field
// and its position, as does a null value (AWS rejects null; leave the
// field out instead). The text is kept as given: it is what Text returns,
// what Validate measures and what is sent to AWS.
//
// Parse checks shape only; call Validate for AWS's rules.
func Parse(data []byte) (*Policy, error) {
	root, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	d := &decoder{}
	p := d.policy(root)
	if len(d.problems) > 0 {
		return nil, &PolicyError{Problems: d.problems}
	}
	p.text = string(data)
	return p, nil
}

type decoder struct {
	problems []Problem
}

// addf records a problem at pos concerning the value at path, e.g.
// "rules[0].selection.countNumber".
func (d *decoder) addf(pos jsonPos, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{
		Line:    pos.Line,
		Column:  pos.Column,
		Field:   fieldOfPath(path),
		Message: fmt.Sprintf("line %d, column %d: %s: %s", pos.Line, pos.Column, path, fmt.Sprintf(format, args...)),
	})
}

// fieldOfPath returns the last field name in a path such as
// "rules[0].selection.tagPrefixList[2]".
func fieldOfPath(path string) string {
	for strings.HasSuffix(path, "]") {
		path = path[:strings.LastIndexByte(path, '[')]
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func joinPath(path, key string) string {
	if path == "policy" {
		return key
	}
	return path + "." + key
}

// object walks the members of an object, rejecting fields outside allowed.
func (d *decoder) object(v *jsonValue, path string, allowed []string, each func(key string, val *jsonValue, keyPos jsonPos)) bool {
	if v.Kind != jsonObject {
		d.addf(v.Pos, path, "expected an object, got %s", v.Kind)
		return false
	}
	for _, m := range v.Members {
		known := false
		for _, a := range allowed {
			if m.Key == a {
				known = true
				break
			}
		}
		if !known {
			d.problems = append(d.problems, Problem{
				Line:   m.KeyPos.Line,
				Column: m.KeyPos.Column,
				Field:  m.Key,
				Message: fmt.Sprintf("line %d, column %d: unknown field %q in %s; AWS accepts only %s",
					m.KeyPos.Line, m.KeyPos.Column, m.Key, path, strings.Join(allowed, ", ")),
			})
			continue
		}
		if m.Value.Kind == jsonNull {
			// AWS rejects null where a value is expected; an absent
			// field is the way to leave one out.
			d.addf(m.Value.Pos, joinPath(path, m.Key), "null is not allowed; remove the field or give it a value")
			continue
		}
		each(m.Key, m.Value, m.KeyPos)
	}
	return true
}

func (d *decoder) policy(v *jsonValue) *Policy {
	p := &Policy{}
	d.object(v, "policy", []string{"rules"}, func(_ string, val *jsonValue, _ jsonPos) {
		if val.Kind != jsonArray {
			d.addf(val.Pos, "rules", "expected an array, got %s", val.Kind)
			return
		}
		p.Rules = make([]Rule, 0, len(val.Items))
		for i, item := range val.Items {
			p.Rules = append(p.Rules, d.rule(item, fmt.Sprintf("rules[%d]", i)))
		}
	})
	return p
}

func (d *decoder) rule(v *jsonValue, path string) Rule {
	var r Rule
	d.object(v, path, []string{"rulePriority", "description", "selection", "action"}, func(key string, val *jsonValue, _ jsonPos) {
		switch key {
		case "rulePriority":
			r.RulePriority = d.integer(val, path+".rulePriority")
			r.set |= setRulePriority
		case "description":
			r.Description = d.str(val, path+".description")
		case "selection":
			d.selection(val, path+".selection", &r)
		case "action":
			d.action(val, path+".action", &r)
		}
	})
	return r
}

func (d *decoder) selection(v *jsonValue, path string, r *Rule) {
	s := &r.Selection
	allowed := []string{"tagStatus", "tagPatternList", "tagPrefixList", "storageClass", "countType", "countUnit", "countNumber"}
	d.object(v, path, allowed, func(key string, val *jsonValue, _ jsonPos) {
		p := path + "." + key
		switch key {
		case "tagStatus":
			s.TagStatus, r.set = d.str(val, p), r.set|setTagStatus
		case "tagPatternList":
			s.TagPatternList, r.set = d.strings(val, p), r.set|setTagPatternList
		case "tagPrefixList":
			s.TagPrefixList, r.set = d.strings(val, p), r.set|setTagPrefixList
		case "storageClass":
			s.StorageClass, r.set = d.str(val, p), r.set|setStorageClass
		case "countType":
			s.CountType, r.set = d.str(val, p), r.set|setCountType
		case "countUnit":
			s.CountUnit, r.set = d.str(val, p), r.set|setCountUnit
		case "countNumber":
			s.CountNumber, r.set = d.integer(val, p), r.set|setCountNumber
		}
	})
}

func (d *decoder) action(v *jsonValue, path string, r *Rule) {
	d.object(v, path, []string{"type", "targetStorageClass"}, func(key string, val *jsonValue, _ jsonPos) {
		switch key {
		case "type":
			r.Action.Type, r.set = d.str(val, path+".type"), r.set|setActionType
		case "targetStorageClass":
			r.Action.TargetStorageClass, r.set = d.str(val, path+".targetStorageClass"), r.set|setTargetStorageClass
		}
	})
}

func (d *decoder) str(v *jsonValue, path string) string {
	if v.Kind != jsonString {
		d.addf(v.Pos, path, "expected a string, got %s", v.Kind)
		return ""
	}
	return v.Str
}

func (d *decoder) strings(v *jsonValue, path string) []string {
	if v.Kind != jsonArray {
		d.addf(v.Pos, path, "expected an array of strings, got %s", v.Kind)
		return nil
	}
	out := make([]string, 0, len(v.Items))
	for i, item := range v.Items {
		if item.Kind != jsonString {
			d.addf(item.Pos, fmt.Sprintf("%s[%d]", path, i), "expected a string, got %s", item.Kind)
			continue
		}
		if item.Str == "" {
			// AWS refuses an empty prefix or pattern (it would match
			// every tag); name it here, where its line is known.
			d.addf(item.Pos, fmt.Sprintf("%s[%d]", path, i), "an empty string is not allowed; remove it or write the tag %s", map[bool]string{true: "prefix", false: "pattern"}[strings.HasSuffix(path, "tagPrefixList")])
			continue
		}
		out = append(out, item.Str)
	}
	return out
}

func (d *decoder) integer(v *jsonValue, path string) int {
	if v.Kind != jsonNumber {
		d.addf(v.Pos, path, "expected an integer, got %s", v.Kind)
		return 0
	}
	n, err := strconv.ParseInt(v.Str, 10, 64)
	if err != nil {
		if strings.ContainsAny(v.Str, ".eE") {
			d.addf(v.Pos, path, "expected an integer, got %s", v.Str)
		} else {
			d.addf(v.Pos, path, "integer %s is out of range", v.Str)
		}
		return 0
	}
	if n > maxIntegerInPolicyValue || n < -maxIntegerInPolicyValue {
		d.addf(v.Pos, path, "integer %s is out of range", v.Str)
		return 0
	}
	return int(n)
}
