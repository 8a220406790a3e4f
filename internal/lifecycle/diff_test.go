package lifecycle

import "testing"

func TestDiff(t *testing.T) {
	current := mustParse(t, rulesJSON(
		ruleJSON("1", keepTen, expire),
		ruleJSON("2", untagged14, expire),
		ruleJSON("9", anyKeep5, expire),
	))
	next := mustParse(t, rulesJSON(
		ruleJSON("9", anyKeep5, expire), // order does not matter
		ruleJSON("1", `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 20}`, expire),
		`{"rulePriority": 3, "selection": {"tagStatus": "tagged", "tagPrefixList": ["pr-"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}}`,
	))
	want := `  rule 1:
+   selection.tagPatternList: ["prod*"]
-   selection.tagPrefixList: ["prod"]
-   selection.countNumber: 10
+   selection.countNumber: 20
- rule 2: {"rulePriority":2,"description":"a rule under test","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}
+ rule 3: {"rulePriority":3,"selection":{"tagStatus":"tagged","tagPrefixList":["pr-"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}
`
	if got := Diff(current, next); got != want {
		t.Errorf("Diff =\n%s\nwant\n%s", got, want)
	}
	if got := Diff(next, next); got != "" {
		t.Errorf("Diff of a policy with itself = %q, want nothing", got)
	}
	// Parsing the canonical text changes nothing.
	if got := Diff(next, mustParse(t, string(next.JSON()))); got != "" {
		t.Errorf("Diff after a round trip = %q", got)
	}
}

func TestDiffFromNoPolicy(t *testing.T) {
	next := mustParse(t, rulesJSON(ruleJSON("1", untagged14, expire)))
	want := `+ rule 1: {"rulePriority":1,"description":"a rule under test","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}
`
	if got := Diff(nil, next); got != want {
		t.Errorf("Diff(nil, p) =\n%s\nwant\n%s", got, want)
	}
	if got := Diff(next, nil); got[0] != '-' {
		t.Errorf("Diff(p, nil) = %q, want a removal", got)
	}
}
