package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// sel and act build one rule's JSON for the validation table.
func ruleJSON(prio, selection, action string) string {
	return `{"rulePriority": ` + prio + `, "description": "a rule under test", "selection": ` + selection + `, "action": ` + action + `}`
}

func rulesJSON(rules ...string) string {
	return `{"rules": [` + strings.Join(rules, ", ") + `]}`
}

const (
	keepTen     = `{"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 10}`
	untagged14  = `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}`
	anyKeep5    = `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}`
	toArchive   = `{"type": "transition", "targetStorageClass": "archive"}`
	archived400 = `{"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 400}`
	pulled90    = `{"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}`
)

func TestValidateErrorsOneByOne(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		kind   RegistryKind
		want   []string
	}{
		{"no rules", `{"rules": []}`, RegistryECR, []string{
			"policy: has no rules; AWS requires at least one",
			"policy: text is 13 characters long; AWS accepts 100 to 30720 characters",
		}},
		{"rulePriority missing", rulesJSON(`{"selection": ` + keepTen + `, "action": ` + expire + `}`), RegistryECR, []string{
			"rules[0]: rulePriority is required",
		}},
		{"rulePriority zero", rulesJSON(ruleJSON("0", keepTen, expire)), RegistryECR, []string{
			"rules[0]: rulePriority must be at least 1, got 0",
		}},
		{"rulePriority negative", rulesJSON(ruleJSON("-3", keepTen, expire)), RegistryECR, []string{
			"rules[0]: rulePriority must be at least 1, got -3",
		}},
		{"rulePriority duplicated", rulesJSON(ruleJSON("2", keepTen, expire), ruleJSON("2", untagged14, expire)), RegistryECR, []string{
			"rule 2: rulePriority 2 is used by rules[0] and rules[1]; every rule needs a unique priority",
		}},
		{"tagStatus missing", rulesJSON(ruleJSON("1", `{"countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			"rule 1: tagStatus is required (tagged, untagged or any)",
		}},
		{"tagStatus unknown", rulesJSON(ruleJSON("1", `{"tagStatus": "all", "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: tagStatus "all" is not one of tagged, untagged, any`,
		}},
		{"prefix and pattern lists together", rulesJSON(ruleJSON("1", `{"tagStatus": "tagged", "tagPrefixList": ["prod"], "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			"rule 1: tagPrefixList and tagPatternList cannot both be set; use one of them",
		}},
		{"tagged without a list", rulesJSON(ruleJSON("1", `{"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: tagStatus "tagged" requires tagPatternList or tagPrefixList`,
		}},
		{"pattern list on untagged", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: tagPatternList is only allowed with tagStatus "tagged"`,
		}},
		{"prefix list on any", rulesJSON(ruleJSON("1", `{"tagStatus": "any", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: tagPrefixList is only allowed with tagStatus "tagged"`,
		}},
		{"empty pattern list", rulesJSON(ruleJSON("1", `{"tagStatus": "tagged", "tagPatternList": [], "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			"rule 1: tagPatternList is empty; list at least one pattern",
		}},
		{"empty prefix list", rulesJSON(ruleJSON("1", `{"tagStatus": "tagged", "tagPrefixList": [], "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			"rule 1: tagPrefixList is empty; list at least one prefix",
		}},
		{"too many wildcards", rulesJSON(ruleJSON("1", keepTen, expire), ruleJSON("2", `{"tagStatus": "tagged", "tagPatternList": ["v*", "a*b*c*d*e*f"], "countType": "imageCountMoreThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 2: tagPatternList "a*b*c*d*e*f" has more than 4 wildcards`,
		}},
		{"countType missing", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "countNumber": 10}`, expire)), RegistryECR, []string{
			"rule 1: countType is required (imageCountMoreThan, sinceImagePushed, sinceImagePulled or sinceImageTransitioned)",
		}},
		{"countType unknown", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "countType": "imageCountLessThan", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: countType "imageCountLessThan" is not one of imageCountMoreThan, sinceImagePushed, sinceImagePulled, sinceImageTransitioned`,
		}},
		{"countUnit missing", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: countUnit is required with countType "sinceImagePushed"; set it to "days"`,
		}},
		{"countUnit not days", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "hours", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: countUnit "hours" is not supported; the only unit is "days"`,
		}},
		{"countUnit with imageCountMoreThan", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 10}`, expire)), RegistryECR, []string{
			`rule 1: countUnit is not allowed with countType "imageCountMoreThan"; remove it`,
		}},
		{"countNumber missing", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "countType": "imageCountMoreThan"}`, expire)), RegistryECR, []string{
			"rule 1: countNumber is required",
		}},
		{"countNumber zero", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 0}`, expire)), RegistryECR, []string{
			"rule 1: countNumber must be at least 1, got 0",
		}},
		{"less than 90 days in archive", rulesJSON(ruleJSON("1", `{"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 30}`, expire)), RegistryECR, []string{
			`rule 1: countNumber 30 is too small for countType "sinceImageTransitioned"; archived images must stay archived at least 90 days before they expire`,
		}},
		{"storageClass unknown", rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "storageClass": "glacier", "countType": "imageCountMoreThan", "countNumber": 1}`, expire)), RegistryECR, []string{
			`rule 1: storageClass "glacier" is not one of standard, archive`,
		}},
		{"sinceImageTransitioned without archive", rulesJSON(ruleJSON("1", `{"tagStatus": "any", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 100}`, expire)), RegistryECR, []string{
			`rule 1: countType "sinceImageTransitioned" requires storageClass "archive"`,
		}},
		{"archive without sinceImageTransitioned", rulesJSON(ruleJSON("1", `{"tagStatus": "any", "storageClass": "archive", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 100}`, expire)), RegistryECR, []string{
			`rule 1: storageClass "archive" is only allowed with countType "sinceImageTransitioned"`,
		}},
		{"action type missing", rulesJSON(ruleJSON("1", untagged14, `{}`)), RegistryECR, []string{
			"rule 1: action type is required (expire or transition)",
		}},
		{"action type unknown", rulesJSON(ruleJSON("1", untagged14, `{"type": "delete"}`)), RegistryECR, []string{
			`rule 1: action type "delete" is not one of expire, transition`,
		}},
		{"transition without target", rulesJSON(ruleJSON("1", untagged14, `{"type": "transition"}`)), RegistryECR, []string{
			`rule 1: action type "transition" requires targetStorageClass "archive"`,
		}},
		{"transition to an unknown class", rulesJSON(ruleJSON("1", untagged14, `{"type": "transition", "targetStorageClass": "glacier"}`)), RegistryECR, []string{
			`rule 1: targetStorageClass "glacier" is not supported; the only value is "archive"`,
		}},
		{"target on expire", rulesJSON(ruleJSON("1", untagged14, `{"type": "expire", "targetStorageClass": "archive"}`)), RegistryECR, []string{
			`rule 1: targetStorageClass is only allowed with action type "transition"`,
		}},
		{"sinceImagePulled with expire", rulesJSON(ruleJSON("1", pulled90, expire)), RegistryECR, []string{
			`rule 1: countType "sinceImagePulled" is only allowed with action type "transition"`,
		}},
		{"sinceImageTransitioned with transition", rulesJSON(ruleJSON("1", archived400, toArchive)), RegistryECR, []string{
			`rule 1: countType "sinceImageTransitioned" is only allowed with action type "expire"`,
		}},
		{"any before another rule", rulesJSON(ruleJSON("1", anyKeep5, expire), ruleJSON("2", untagged14, expire)), RegistryECR, []string{
			`rule 1: a rule with tagStatus "any" must have the highest rulePriority among rules selecting standard images, but rule 2 comes after it`,
		}},
		{"two untagged rules", rulesJSON(ruleJSON("1", untagged14, expire), ruleJSON("2", keepTen, expire), ruleJSON("3", `{"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 3}`, expire)), RegistryECR, []string{
			"rule 3: only one rule may select untagged standard images, and rule 1 already does",
		}},
		{"repeated prefix set", rulesJSON(ruleJSON("1", keepTen, expire), ruleJSON("2", `{"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3}`, expire)), RegistryECR, []string{
			`rule 2: tagPrefixList ["prod"] repeats rule 1's; rules selecting standard images need distinct tag sets`,
		}},
		{"repeated pattern set in another order", rulesJSON(
			ruleJSON("1", `{"tagStatus": "tagged", "tagPatternList": ["a*", "b*"], "countType": "imageCountMoreThan", "countNumber": 3}`, expire),
			ruleJSON("2", `{"tagStatus": "tagged", "tagPatternList": ["b*", "a*"], "countType": "imageCountMoreThan", "countNumber": 5}`, expire)), RegistryECR, []string{
			`rule 2: tagPatternList ["b*", "a*"] repeats rule 1's; rules selecting standard images need distinct tag sets`,
		}},
		{"transition on GHCR", rulesJSON(ruleJSON("1", untagged14, toArchive)), RegistryGHCR, []string{
			`rule 1: action type "transition" is not supported on GHCR repositories, which have no archive storage; use "expire", or apply this rule to an ECR repository`,
		}},
		{"sinceImagePulled on GHCR", rulesJSON(ruleJSON("1", pulled90, toArchive)), RegistryGHCR, []string{
			`rule 1: action type "transition" is not supported on GHCR repositories, which have no archive storage; use "expire", or apply this rule to an ECR repository`,
			`rule 1: countType "sinceImagePulled" is not supported on GHCR repositories, which record no pull times; use "sinceImagePushed"`,
		}},
		{"archive on an OCI registry", rulesJSON(ruleJSON("1", archived400, expire)), RegistryOCI, []string{
			`rule 1: countType "sinceImageTransitioned" is not supported on plain OCI registries, which have no archive storage; use "sinceImagePushed"`,
			`rule 1: storageClass "archive" is not supported on plain OCI registries, which have no archive storage; remove storageClass`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.policy))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			caps, err := CapabilitiesFor(c.kind)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Validate(caps)
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate = %v, want a *PolicyError", err)
			}
			var got []string
			for _, pr := range pe.Problems {
				got = append(got, pr.Message)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
			if want := "invalid lifecycle policy: " + strings.Join(c.want, "; "); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			// The same policy on ECR is either valid or fails for reasons
			// of its own, never for the registry's capabilities.
			if c.kind != RegistryECR {
				ecr, _ := CapabilitiesFor(RegistryECR)
				if err := p.Validate(ecr); err != nil {
					t.Errorf("valid on ECR expected, got %v", err)
				}
			}
		})
	}
}

func TestValidateRuleCountAndTextLength(t *testing.T) {
	many := func(n int, description string) *Policy {
		p := &Policy{}
		for i := 1; i <= n; i++ {
			p.Rules = append(p.Rules, Rule{RulePriority: i, Description: description,
				Selection: Selection{TagStatus: TagStatusTagged, TagPrefixList: []string{fmt.Sprintf("p%d-", i)},
					CountType: CountTypeImageCountMoreThan, CountNumber: 5},
				Action: Action{Type: ActionExpire}})
		}
		return p
	}
	ecr, _ := CapabilitiesFor(RegistryECR)

	if err := many(50, "").Validate(ecr); err != nil {
		t.Errorf("50 rules: %v", err)
	}
	err := many(51, "").Validate(ecr)
	if err == nil || err.Error() != "invalid lifecycle policy: policy: has 51 rules; AWS allows at most 50" {
		t.Errorf("51 rules: %v", err)
	}

	long := many(40, strings.Repeat("é", 700))
	n := utf8.RuneCount(long.JSON())
	if n <= MaxPolicyTextLength {
		t.Fatalf("test policy is only %d characters", n)
	}
	err = long.Validate(ecr)
	want := fmt.Sprintf("invalid lifecycle policy: policy: text is %d characters long; AWS accepts 100 to 30720 characters", n)
	if err == nil || err.Error() != want {
		t.Errorf("long policy: %v, want %s", err, want)
	}
}

// All problems come back together, and each is reachable with errors.As.
func TestValidateReportsEveryProblem(t *testing.T) {
	p := mustParse(t, rulesJSON(
		ruleJSON("1", `{"tagStatus": "tagged", "tagPatternList": ["*a*b*c*d*"], "countType": "imageCountMoreThan", "countNumber": 0}`, expire),
		ruleJSON("2", `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 3}`, `{"type": "transition"}`),
	))
	caps, _ := CapabilitiesFor(RegistryGHCR)
	err := p.Validate(caps)
	want := []string{
		`rule 1: tagPatternList "*a*b*c*d*" has more than 4 wildcards`,
		"rule 1: countNumber must be at least 1, got 0",
		`rule 2: countUnit is required with countType "sinceImagePushed"; set it to "days"`,
		`rule 2: action type "transition" requires targetStorageClass "archive"`,
		`rule 2: action type "transition" is not supported on GHCR repositories, which have no archive storage; use "expire", or apply this rule to an ECR repository`,
	}
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("Validate = %v", err)
	}
	var got []string
	for _, pr := range pe.Problems {
		got = append(got, pr.Message)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	var first Problem
	if !errors.As(err, &first) || first.Rule != "rule 1" || first.Field != "tagPatternList" {
		t.Errorf("errors.As(Problem) = %+v", first)
	}
}

func TestValidateAcceptsAWSDocumentedEdgeCases(t *testing.T) {
	ecr, _ := CapabilitiesFor(RegistryECR)
	valid := []string{
		// "*test*1*2*3" and "test*1*2*3*" have four wildcards each: valid.
		rulesJSON(ruleJSON("1", `{"tagStatus": "tagged", "tagPatternList": ["*test*1*2*3", "test*1*2*3*"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
		// Priorities need not be consecutive.
		rulesJSON(ruleJSON("10", keepTen, expire), ruleJSON("20", untagged14, expire), ruleJSON("99", anyKeep5, expire)),
		// Rules are ordered by priority, not by position.
		rulesJSON(ruleJSON("99", anyKeep5, expire), ruleJSON("20", untagged14, expire)),
		// An explicit standard storage class.
		rulesJSON(ruleJSON("1", `{"tagStatus": "untagged", "storageClass": "standard", "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
		// Exactly 90 days in archive.
		rulesJSON(ruleJSON("1", `{"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}`, expire)),
		// One untagged rule per storage class, and an "any" rule last in each.
		rulesJSON(ruleJSON("1", untagged14, toArchive), ruleJSON("2", pulled90, toArchive),
			ruleJSON("3", `{"tagStatus": "untagged", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 100}`, expire),
			ruleJSON("4", archived400, expire)),
		// Prefix and pattern lists in different rules of one policy.
		rulesJSON(ruleJSON("1", keepTen, expire), ruleJSON("2", `{"tagStatus": "tagged", "tagPatternList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 3}`, expire)),
	}
	for i, text := range valid {
		if err := mustParse(t, text).Validate(ecr); err != nil {
			t.Errorf("policy %d: %v", i, err)
		}
	}
	for _, kind := range []RegistryKind{RegistryGHCR, RegistryOCI} {
		caps, _ := CapabilitiesFor(kind)
		if err := mustParse(t, valid[1]).Validate(caps); err != nil {
			t.Errorf("an expire-only policy on %s: %v", kind, err)
		}
	}
}

func TestCapabilitiesFor(t *testing.T) {
	ecr, err := CapabilitiesFor(RegistryECR)
	if err != nil || !ecr.Archive || !ecr.PullTimes {
		t.Errorf("ECR = %+v, %v", ecr, err)
	}
	ghcr, err := CapabilitiesFor(RegistryGHCR)
	if err != nil || ghcr.Archive || ghcr.PullTimes {
		t.Errorf("GHCR = %+v, %v", ghcr, err)
	}
	_, err = CapabilitiesFor("quay")
	if err == nil || err.Error() != `unknown registry kind "quay": use "ecr", "ghcr" or "oci"` {
		t.Errorf("unknown kind: %v", err)
	}
}
