package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseSyntaxErrorsHaveLineAndColumn(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"empty", "", "invalid JSON at line 1, column 1: empty document"},
		{"blank", "  \n  ", "invalid JSON at line 2, column 3: empty document"},
		{"trailing comma in object", "{\n  \"rules\": [\n    {\"rulePriority\": 1,}\n  ]\n}",
			`invalid JSON at line 3, column 24: unexpected '}', expected a field name in double quotes`},
		{"trailing comma in array", "{\"rules\": [1,]}", `invalid JSON at line 1, column 14: unexpected ']', expected a value`},
		{"missing colon", `{"rules" []}`, `invalid JSON at line 1, column 10: unexpected '[', expected ':' after field name "rules"`},
		{"bad literal", `{"rules": tru}`, `invalid JSON at line 1, column 14: unexpected '}' in literal true`},
		{"unterminated string", `{"rules`, "invalid JSON at line 1, column 8: unexpected end of input inside a string"},
		{"unterminated object", `{"rules": []`, "invalid JSON at line 1, column 13: unexpected end of input, expected ',' or '}'"},
		{"bad escape", `{"a\x": 1}`, `invalid JSON at line 1, column 5: invalid escape sequence \'x' inside a string`},
		{"control character", "{\"a\tb\": 1}", "invalid JSON at line 1, column 4: control character U+0009 must be escaped inside a string"},
		{"bad number", `{"rules": -}`, `invalid JSON at line 1, column 12: unexpected '}' in number, expected a digit`},
		{"leading zero", `{"rules": 01}`, `invalid JSON at line 1, column 12: unexpected '1', expected ',' or '}'`},
		{"garbage after document", "{\"rules\": []}\n}", `invalid JSON at line 2, column 1: unexpected '}' after the end of the document`},
		{"columns count characters", `{"rules": [{"description": "déjà vu" x}]}`, `invalid JSON at line 1, column 38: unexpected 'x', expected ',' or '}'`},
		{"duplicate field", `{"rules": [], "rules": []}`, `invalid JSON at line 1, column 15: duplicate field "rules"`},
		{"invalid UTF-8", "{\"a\xff\": 1}", "invalid JSON at line 1, column 4: invalid UTF-8 inside a string"},
		{"deep nesting", strings.Repeat("[", 100), "invalid JSON at line 1, column 65: nesting deeper than 64 levels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, want a *SyntaxError", err)
			}
			if err.Error() != c.want {
				t.Errorf("error = %s\nwant    %s", err, c.want)
			}
		})
	}
}

func TestParseRejectsUnknownFieldsAndWrongTypes(t *testing.T) {
	text := `{
  "version": 1,
  "rules": [
    {
      "rulePriority": "1",
      "selection": {
        "tagStatus": "tagged",
        "tagFilter": ["prod"],
        "tagPrefixList": "prod",
        "tagPatternList": ["a*", 7],
        "countType": "imageCountMoreThan",
        "countNumber": 1.5
      },
      "action": {"type": "expire", "retain": true}
    },
    3,
    {"rulePriority": 99999999999, "selection": {"countNumber": 1e3}, "action": {"type": ["expire"]}}
  ]
}`
	_, err := Parse([]byte(text))
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse = %v, want a *PolicyError", err)
	}
	want := []string{
		`line 2, column 3: unknown field "version" in policy; AWS accepts only rules`,
		`line 5, column 23: rules[0].rulePriority: expected an integer, got a string`,
		`line 8, column 9: unknown field "tagFilter" in rules[0].selection; AWS accepts only tagStatus, tagPatternList, tagPrefixList, storageClass, countType, countUnit, countNumber`,
		`line 9, column 26: rules[0].selection.tagPrefixList: expected an array of strings, got a string`,
		`line 10, column 34: rules[0].selection.tagPatternList[1]: expected a string, got a number`,
		`line 12, column 24: rules[0].selection.countNumber: expected an integer, got 1.5`,
		`line 14, column 36: unknown field "retain" in rules[0].action; AWS accepts only type, targetStorageClass`,
		`line 16, column 5: rules[1]: expected an object, got a number`,
		`line 17, column 22: rules[2].rulePriority: integer 99999999999 is out of range`,
		`line 17, column 64: rules[2].selection.countNumber: expected an integer, got 1e3`,
		`line 17, column 89: rules[2].action.type: expected a string, got an array`,
	}
	var got []string
	for _, p := range pe.Problems {
		got = append(got, p.Message)
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	fields := []string{"version", "rulePriority", "tagFilter", "tagPrefixList", "tagPatternList", "countNumber", "retain", "rules", "rulePriority", "countNumber", "type"}
	for i, p := range pe.Problems {
		if i < len(fields) && p.Field != fields[i] {
			t.Errorf("problem %d names field %q, want %q", i, p.Field, fields[i])
		}
	}
}

func TestParseRootAndRulesShape(t *testing.T) {
	for text, want := range map[string]string{
		`[]`:             "invalid lifecycle policy: line 1, column 1: policy: expected an object, got an array",
		`{"rules": {}}`:  "invalid lifecycle policy: line 1, column 11: rules: expected an array, got an object",
		`{"rules": "x"}`: "invalid lifecycle policy: line 1, column 11: rules: expected an array, got a string",
	} {
		if _, err := Parse([]byte(text)); err == nil || err.Error() != want {
			t.Errorf("Parse(%s) = %v, want %s", text, err, want)
		}
	}
}

func TestParseRejectsNullAndEmptyTagEntries(t *testing.T) {
	// AWS rejects null values and empty prefixes or patterns; each is named
	// with its line, column and field.
	_, err := Parse([]byte(`{"rules": [{"rulePriority": 1, "description": null, "selection": {"tagStatus": "tagged",
		"tagPrefixList": ["v", ""], "countType": "imageCountMoreThan", "countNumber": 1, "countUnit": null}, "action": {"type": "expire"}},
	{"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": [""], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}`))
	want := "invalid lifecycle policy: line 1, column 47: rules[0].description: null is not allowed; remove the field or give it a value; " +
		"line 2, column 26: rules[0].selection.tagPrefixList[1]: an empty string is not allowed; remove it or write the tag prefix; " +
		"line 2, column 97: rules[0].selection.countUnit: null is not allowed; remove the field or give it a value; " +
		"line 3, column 78: rules[1].selection.tagPatternList[0]: an empty string is not allowed; remove it or write the tag pattern"
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v\nwant %s", err, want)
	}
	// A policy built in Go is checked by Validate.
	p := &Policy{Rules: []Rule{{RulePriority: 1, Selection: Selection{TagStatus: TagStatusTagged, TagPatternList: []string{"v*", ""},
		CountType: CountTypeImageCountMoreThan, CountNumber: 1}, Action: Action{Type: ActionExpire}}}}
	caps, _ := CapabilitiesFor(RegistryECR)
	if err := p.Validate(caps); err == nil || !strings.Contains(err.Error(), "rule 1: tagPatternList has an empty entry; remove it or write a pattern") {
		t.Errorf("Validate = %v", err)
	}
}

func TestPolicyLengthIsMeasuredOnTheSubmittedText(t *testing.T) {
	caps, _ := CapabilitiesFor(RegistryECR)
	// 50 compact rules under the limit, whose indented rendering is over
	// it: AWS measures the text it is sent, the text as written.
	desc := strings.Repeat("d", 440)
	var rules []string
	for i := 1; i <= MaxRules; i++ {
		rules = append(rules, fmt.Sprintf(`{"rulePriority":%d,"description":%q,"selection":{"tagStatus":"tagged","tagPatternList":["p%d*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`, i, desc, i))
	}
	compact := `{"rules":[` + strings.Join(rules, ",") + `]}`
	p := mustParse(t, compact)
	if p.Text() != compact {
		t.Fatal("Text() is not the submitted text")
	}
	if n, c := utf8.RuneCountInString(compact), utf8.RuneCount(p.JSON()); n > MaxPolicyTextLength || c <= MaxPolicyTextLength {
		t.Fatalf("the test needs a text under the limit (%d) with a rendering over it (%d)", n, c)
	}
	if err := p.Validate(caps); err != nil {
		t.Errorf("a text under the limit was refused: %v", err)
	}
	padded := compact[:len(compact)-1] + strings.Repeat(" ", MaxPolicyTextLength-len(compact)+1) + "}"
	if err := mustParse(t, padded).Validate(caps); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("text is %d characters long", MaxPolicyTextLength+1)) {
		t.Errorf("a text over the limit: %v", err)
	}
}

func TestParseKeepsEscapesAndUnicode(t *testing.T) {
	p := mustParse(t, `{"rules": [{"rulePriority": 1, "description": "caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \n\ud800x",
		"selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}`)
	if got, want := p.Rules[0].Description, "café 😀 \"q\" \\ / \n\uFFFDx"; got != want {
		t.Errorf("description = %q, want %q", got, want)
	}
}

// The canonical rendering parses back to the same policy, sorts rules by
// priority and escapes no HTML.
func TestJSONRoundTrip(t *testing.T) {
	text := rulesJSON(
		ruleJSON("3", anyKeep5, expire),
		`{"rulePriority": 1, "description": "keep <10> & more", "selection": {"tagStatus": "tagged", "tagPatternList": ["prod*", "*-rc"], "countType": "imageCountMoreThan", "countNumber": 10}, "action": {"type": "expire"}}`,
		ruleJSON("2", untagged14, expire),
	)
	p := mustParse(t, text)
	out := p.JSON()
	again := mustParse(t, string(out))
	if string(again.JSON()) != string(out) {
		t.Errorf("rendering is not stable:\n%s\n%s", out, again.JSON())
	}
	want := `{
  "rules": [
    {
      "rulePriority": 1,
      "description": "keep <10> & more",
      "selection": {
        "tagStatus": "tagged",
        "tagPatternList": [
          "prod*",
          "*-rc"
        ],
        "countType": "imageCountMoreThan",
        "countNumber": 10
      },
      "action": {
        "type": "expire"
      }
    },
    {
      "rulePriority": 2,
      "description": "a rule under test",
      "selection": {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 14
      },
      "action": {
        "type": "expire"
      }
    },
    {
      "rulePriority": 3,
      "description": "a rule under test",
      "selection": {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 5
      },
      "action": {
        "type": "expire"
      }
    }
  ]
}
`
	if string(out) != want {
		t.Errorf("JSON() =\n%s\nwant\n%s", out, want)
	}
	// Rendering must not reorder the caller's rules.
	if p.Rules[0].RulePriority != 3 {
		t.Errorf("JSON() reordered the policy's own rules")
	}
}
