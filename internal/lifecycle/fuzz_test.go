package lifecycle

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser and, when they parse, to the
// validator, the renderer and the evaluator. Nothing may panic; errors must
// be of the documented types; the canonical rendering must parse back to
// itself; a valid policy must evaluate.
func FuzzParse(f *testing.F) {
	for _, ex := range awsExamples() {
		f.Add([]byte(ex.policy))
	}
	f.Add([]byte(untaggedOlderThanOneDay))
	f.Add([]byte(`{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["a*b*c*d*e*f"]}}]}`))
	f.Add([]byte(`{"rules": [], "version": 1}`))
	f.Add([]byte(`{"rules": [{"rulePriority": "1", "description": "\ud83d\ude00\u0000"}]}`))

	inv, _, _, _, _, _ := multiArch()
	inv = append(inv, image("plain", 40*day, "prod-1"), image("untagged", 3*day))
	kinds := []RegistryKind{RegistryECR, RegistryGHCR, RegistryOCI}

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var se *SyntaxError
			var pe *PolicyError
			if !errors.As(err, &se) && !errors.As(err, &pe) {
				t.Fatalf("Parse returned %T: %v", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		valid := false
		for _, kind := range kinds {
			caps, _ := CapabilitiesFor(kind)
			err := p.Validate(caps)
			var pe *PolicyError
			if err != nil && (!errors.As(err, &pe) || len(pe.Problems) == 0) {
				t.Fatalf("Validate returned %T: %v", err, err)
			}
			if kind == RegistryECR {
				valid = err == nil
			}
		}
		out := p.JSON()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("the canonical rendering does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(again.JSON(), out) {
			t.Fatalf("the canonical rendering is not stable:\n%s\n%s", out, again.JSON())
		}
		if Diff(p, again) != "" {
			t.Fatalf("a policy differs from its own rendering: %s", Diff(p, again))
		}
		if valid {
			if _, err := Evaluate(p, inv, EvalOptions{Now: testNow, DeleteOrphans: true}); err != nil {
				t.Fatalf("a valid policy does not evaluate: %v", err)
			}
		}
	})
}

// FuzzGlob checks the compiled tag patterns against anchored regular
// expressions.
func FuzzGlob(f *testing.F) {
	f.Add("prod*", "production")
	f.Add("*prod*", "repo-production")
	f.Add("a*a", "a")
	f.Add("*test*1*2*3", "my-test-1-2-3")
	f.Add("v*.*", "v1.0")
	f.Fuzz(func(t *testing.T, pattern, tag string) {
		parts := strings.Split(pattern, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re, err := regexp.Compile("^(?s:" + strings.Join(parts, ".*") + ")$")
		if err != nil {
			t.Skip()
		}
		if got, want := compileGlob(pattern).match(tag), re.MatchString(tag); got != want {
			t.Fatalf("pattern %q on tag %q: got %v, want %v", pattern, tag, got, want)
		}
	})
}
