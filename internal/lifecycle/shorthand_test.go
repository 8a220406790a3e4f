package lifecycle

import (
	"slices"
	"testing"
	"time"
)

func TestCompileShape(t *testing.T) {
	p, err := Compile(Shorthand{KeepTagged: 10, UntaggedOlderThan: 7 * day, ProtectTags: []string{"latest", "stable"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "rules": [
    {
      "rulePriority": 1,
      "description": "Protect images tagged latest: selected here, never expired by a later rule",
      "selection": {
        "tagStatus": "tagged",
        "tagPatternList": [
          "latest"
        ],
        "countType": "imageCountMoreThan",
        "countNumber": 1000000
      },
      "action": {
        "type": "expire"
      }
    },
    {
      "rulePriority": 2,
      "description": "Protect images tagged stable: selected here, never expired by a later rule",
      "selection": {
        "tagStatus": "tagged",
        "tagPatternList": [
          "stable"
        ],
        "countType": "imageCountMoreThan",
        "countNumber": 1000000
      },
      "action": {
        "type": "expire"
      }
    },
    {
      "rulePriority": 3,
      "description": "Expire untagged images older than 7 days",
      "selection": {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7
      },
      "action": {
        "type": "expire"
      }
    },
    {
      "rulePriority": 4,
      "description": "Keep the 10 most recent tagged images, expire older ones",
      "selection": {
        "tagStatus": "tagged",
        "tagPatternList": [
          "*"
        ],
        "countType": "imageCountMoreThan",
        "countNumber": 10
      },
      "action": {
        "type": "expire"
      }
    }
  ]
}
`
	if got := string(p.JSON()); got != want {
		t.Errorf("compiled policy =\n%s\nwant\n%s", got, want)
	}
	// What people paste into ECR must parse and validate everywhere.
	for _, kind := range []RegistryKind{RegistryECR, RegistryGHCR, RegistryOCI} {
		caps, _ := CapabilitiesFor(kind)
		if err := mustParse(t, string(p.JSON())).Validate(caps); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
}

func TestCompiledPolicyProtectsTags(t *testing.T) {
	p, err := Compile(Shorthand{KeepTagged: 2, UntaggedOlderThan: 3 * day, ProtectTags: []string{"latest"}})
	if err != nil {
		t.Fatal(err)
	}
	repo := []named{
		img("latest-but-old", 100*day, "latest", "v1"),
		img("v2", 50*day, "v2"),
		img("v3", 40*day, "v3"),
		img("v4", 30*day, "v4"),
		img("untagged-old", 10*day),
		img("untagged-new", 1*day),
	}
	inv, labels := split(repo)
	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if got, want := names(inv, labels, plan.Expired), []string{"untagged-old", "v2"}; !slices.Equal(got, want) {
		t.Errorf("expired %v, want %v", got, want)
	}
}

func TestCompileTagPatternsAndAge(t *testing.T) {
	p, err := Compile(Shorthand{TaggedOlderThan: 30 * day, TagPatterns: []string{"pr-*", "sha-*", "pr-*"}, ProtectTags: []string{"latest"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{RulePriority: 1, Description: "Protect images tagged latest: selected here, never expired by a later rule",
			Selection: Selection{TagStatus: "tagged", TagPatternList: []string{"latest"}, CountType: "imageCountMoreThan", CountNumber: ProtectCount},
			Action:    Action{Type: "expire"}},
		{RulePriority: 2, Description: "Expire images tagged pr-* older than 30 days",
			Selection: Selection{TagStatus: "tagged", TagPatternList: []string{"pr-*"}, CountType: "sinceImagePushed", CountUnit: "days", CountNumber: 30},
			Action:    Action{Type: "expire"}},
		{RulePriority: 3, Description: "Expire images tagged sha-* older than 30 days",
			Selection: Selection{TagStatus: "tagged", TagPatternList: []string{"sha-*"}, CountType: "sinceImagePushed", CountUnit: "days", CountNumber: 30},
			Action:    Action{Type: "expire"}},
	}
	if !equalJSON(p.Rules, want) {
		t.Errorf("rules = %s\nwant %s", mustJSON(p.Rules), mustJSON(want))
	}
	repo := []named{
		img("pr", 40*day, "pr-12"),
		img("sha", 40*day, "sha-abc"),
		img("both-latest", 40*day, "sha-def", "latest"),
		img("release", 400*day, "v1.0"),
		img("young", 3*day, "pr-13"),
	}
	inv, labels := split(repo)
	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if got, want := names(inv, labels, plan.Expired), []string{"pr", "sha"}; !slices.Equal(got, want) {
		t.Errorf("expired %v, want %v", got, want)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		s    Shorthand
		want string
	}{
		{"nothing to do", Shorthand{ProtectTags: []string{"latest"}},
			"invalid lifecycle shorthand: the shorthand has no rule: set keep-tagged, untagged-older-than or tagged-older-than, or give a policy"},
		{"keep and age together", Shorthand{KeepTagged: 5, TaggedOlderThan: 30 * day},
			"invalid lifecycle shorthand: keep-tagged and tagged-older-than cannot both be set: in ECR's policy language the first of the two rules selects every tagged image, so the second would never expire anything; set one of them, or write a policy file"},
		{"negative count", Shorthand{KeepTagged: -1, UntaggedOlderThan: day},
			"invalid lifecycle shorthand: keep-tagged must not be negative, got -1"},
		{"partial days", Shorthand{UntaggedOlderThan: 36 * time.Hour},
			"invalid lifecycle shorthand: untagged-older-than must be a whole number of days (ECR counts in days), got 36h0m0s"},
		{"negative age", Shorthand{TaggedOlderThan: -day},
			"invalid lifecycle shorthand: tagged-older-than must not be negative, got -24h0m0s"},
		{"patterns without a tagged rule", Shorthand{UntaggedOlderThan: day, TagPatterns: []string{"pr-*"}},
			"invalid lifecycle shorthand: tag-patterns only applies to keep-tagged or tagged-older-than; set one of them, or remove tag-patterns"},
		{"too many wildcards", Shorthand{KeepTagged: 3, TagPatterns: []string{"*a*b*c*d*"}},
			`invalid lifecycle shorthand: tag-patterns entry "*a*b*c*d*" has more than 4 wildcards`},
		{"empty protect tag", Shorthand{KeepTagged: 3, ProtectTags: []string{""}},
			"invalid lifecycle shorthand: protect-tags has an empty entry"},
		{"pattern also protected", Shorthand{KeepTagged: 3, TagPatterns: []string{"latest"}, ProtectTags: []string{"latest"}},
			`invalid lifecycle shorthand: tag-patterns entry "latest" is also in protect-tags, so its images are never expired; remove it from one of them`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.s)
			if err == nil || err.Error() != c.want {
				t.Errorf("Compile = %v\nwant       %s", err, c.want)
			}
		})
	}
}

// More than 50 rules is caught by AWS's own limit.
func TestCompileRespectsRuleLimit(t *testing.T) {
	var patterns []string
	for i := 0; i < 50; i++ {
		patterns = append(patterns, "p"+string(rune('A'+i%26))+string(rune('a'+i/26))+"*")
	}
	_, err := Compile(Shorthand{KeepTagged: 1, TagPatterns: patterns, ProtectTags: []string{"latest"}})
	if err == nil || err.Error() != "compile lifecycle shorthand: invalid lifecycle policy: policy: has 51 rules; AWS allows at most 50" {
		t.Errorf("Compile = %v", err)
	}
}

func TestParseDays(t *testing.T) {
	good := map[string]time.Duration{
		"": 0, "7d": 7 * day, " 7 d ": 7 * day, "7": 7 * day, "1 day": day, "30 days": 30 * day, "168h": 7 * day, "0d": 0,
	}
	for in, want := range good {
		got, err := ParseDays(in)
		if err != nil || got != want {
			t.Errorf("ParseDays(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"7w":        `age "7w" is not a number of days: write it like 7d`,
		"36h":       `age "36h" is not a whole number of days: write it like 7d`,
		"-3d":       `age "-3d" is negative`,
		"d":         `age "d" is not a number of days: write it like 7d`,
		"999999999": `age "999999999" is too large`,
	}
	for in, want := range bad {
		if _, err := ParseDays(in); err == nil || err.Error() != want {
			t.Errorf("ParseDays(%q) = %v, want %s", in, err, want)
		}
	}
}

func split(repo []named) ([]Artifact, []string) {
	inv := make([]Artifact, len(repo))
	labels := make([]string, len(repo))
	for i, n := range repo {
		inv[i], labels[i] = n.Artifact, n.name
	}
	return inv, labels
}
