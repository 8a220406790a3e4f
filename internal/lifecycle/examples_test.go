package lifecycle

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

// AWS's worked examples. Sources:
//
//	[examples] https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_examples.html
//	           (current revision: tagPatternList, archive and pull-time examples)
//	[examples-2019] the same page's earlier revision, which wrote the same
//	           examples with tagPrefixList and had an untagged age example
//	[howitworks] https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
//	           ("prod*" and "*prod*" pattern semantics)
//
// Where the page gives only a policy (no repository), the repository below is
// ours, built so that every branch of the rule shows; those cases say so.

type named struct {
	name string
	Artifact
}

func img(name string, age time.Duration, tags ...string) named {
	return named{name, image(name, age, tags...)}
}

type awsExample struct {
	name         string
	source       string
	policy       string
	repo         []named
	expired      []string
	transitioned []string
}

// Repository of "Filtering on multiple rules", examples A and B.
var multipleRulesRepo = []named{
	img("A", 10*day, "beta-1", "prod-1"),
	img("B", 9*day, "beta-2", "prod-2"),
	img("C", 8*day, "beta-3"),
}

// Repository of "Filtering on multiple tags in a single rule", example A.
var multipleTagsRepoA = []named{
	img("A", 12*day, "alpha-1"),
	img("B", 11*day, "beta-1"),
	img("C", 10*day, "alpha-2", "beta-2"),
	img("D", 4*day, "alpha-3"),
	img("E", 3*day, "beta-3"),
	img("F", 2*day, "alpha-4", "beta-4"),
}

// Repository of "Filtering on multiple tags in a single rule", example B.
var multipleTagsRepoB = []named{
	img("A", 10*day, "alpha-1", "beta-1", "gamma-1"),
	img("B", 9*day, "alpha-2", "beta-2"),
	img("C", 8*day, "alpha-3", "beta-3", "gamma-2"),
}

// Repository of "Filtering on all images", example B. The page pushes D and
// E both "1 day ago" and keeps E as the newest, so E is pushed an hour later
// here; that also keeps E out of rule 2 ("older than 1 day").
var allImagesRepoB = []named{
	img("A", 4*day, "alpha-1", "beta-1"),
	img("B", 3*day),
	img("C", 2*day, "alpha-2"),
	img("D", 1*day, "git hash"),
	img("E", 23*time.Hour),
}

func rule(prio int, selection, action string) string {
	return `{"rulePriority": ` + strconv.Itoa(prio) + `, "description": "Rule ` + strconv.Itoa(prio) + `", "selection": ` + selection + `, "action": ` + action + `}`
}

func policyOf(rules ...string) string {
	out := `{"rules": [`
	for i, r := range rules {
		if i > 0 {
			out += ", "
		}
		out += r
	}
	return out + `]}`
}

const expire = `{"type": "expire"}`

func awsExamples() []awsExample {
	return []awsExample{
		{
			name:   "filtering on image age: prod* older than 14 days",
			source: "[examples] Filtering on image age (repository ours)",
			policy: policyOf(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}`, expire)),
			repo: []named{
				img("A", 20*day, "prod-1"), img("B", 10*day, "prod-2"),
				img("C", 30*day, "beta-1"), img("D", 30*day),
			},
			expired: []string{"A"},
		},
		{
			name:    "filtering on image age: untagged older than 14 days",
			source:  "[examples-2019] Filtering on image age (repository ours)",
			policy:  policyOf(rule(1, `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}`, expire)),
			repo:    []named{img("A", 15*day), img("B", 13*day), img("C", 30*day, "v1")},
			expired: []string{"A"},
		},
		{
			name:   "filtering on image count: keep one untagged image",
			source: "[examples] Filtering on image count (repository ours)",
			policy: policyOf(rule(1, `{"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo: []named{
				img("A", 3*day), img("B", 2*day), img("C", 1*day), img("D", 5*day, "v1"),
			},
			expired: []string{"A", "B"},
		},
		{
			name:   "multiple rules, example A (patterns)",
			source: "[examples] Filtering on multiple rules, Example A",
			policy: policyOf(
				rule(1, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire),
				rule(2, `{"tagStatus": "tagged", "tagPatternList": ["beta*"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    multipleRulesRepo,
			expired: []string{"A"},
		},
		{
			name:   "multiple rules, example A (prefixes)",
			source: "[examples-2019] Filtering on multiple rules, Example A; also REFERENCES.md",
			policy: policyOf(
				rule(1, `{"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire),
				rule(2, `{"tagStatus": "tagged", "tagPrefixList": ["beta"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    multipleRulesRepo,
			expired: []string{"A"},
		},
		{
			name:   "multiple rules, example B (patterns, priorities swapped)",
			source: "[examples] Filtering on multiple rules, Example B",
			policy: policyOf(
				rule(1, `{"tagStatus": "tagged", "tagPatternList": ["beta*"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire),
				rule(2, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    multipleRulesRepo,
			expired: []string{"A", "B"},
		},
		{
			name:   "multiple rules, example B (prefixes, priorities swapped)",
			source: "[examples-2019] Filtering on multiple rules, Example B; also REFERENCES.md",
			policy: policyOf(
				rule(1, `{"tagStatus": "tagged", "tagPrefixList": ["beta"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire),
				rule(2, `{"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    multipleRulesRepo,
			expired: []string{"A", "B"},
		},
		{
			name:    "multiple tags in one rule, example A (patterns)",
			source:  "[examples] Filtering on multiple tags in a single rule, Example A",
			policy:  policyOf(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["alpha*", "beta*"], "countType": "sinceImagePushed", "countNumber": 5, "countUnit": "days"}`, expire)),
			repo:    multipleTagsRepoA,
			expired: []string{"C"},
		},
		{
			name:    "multiple tags in one rule, example A (prefixes)",
			source:  "[examples-2019] Filtering on multiple tags in a single rule, Example A",
			policy:  policyOf(rule(1, `{"tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"], "countType": "sinceImagePushed", "countNumber": 5, "countUnit": "days"}`, expire)),
			repo:    multipleTagsRepoA,
			expired: []string{"C"},
		},
		{
			name:    "multiple tags in one rule, example B (patterns; tags are not exclusive)",
			source:  "[examples] Filtering on multiple tags in a single rule, Example B",
			policy:  policyOf(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["alpha*", "beta*"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    multipleTagsRepoB,
			expired: []string{"A", "B"},
		},
		{
			name:    "multiple tags in one rule, example B (prefixes)",
			source:  "[examples-2019] Filtering on multiple tags in a single rule, Example B",
			policy:  policyOf(rule(1, `{"tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    multipleTagsRepoB,
			expired: []string{"A", "B"},
		},
		{
			name:   "all images, example A: any, keep one",
			source: "[examples] Filtering on all images, Example A",
			policy: policyOf(rule(1, `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo: []named{
				img("A", 4*day, "alpha-1"), img("B", 3*day, "beta-1"), img("C", 2*day), img("D", 1*day, "alpha-2"),
			},
			expired: []string{"A", "B", "C"},
		},
		{
			name:   "all images, example B: tagged, untagged and any (patterns)",
			source: "[examples] Filtering on all images, Example B",
			policy: policyOf(
				rule(1, `{"tagStatus": "tagged", "tagPatternList": ["alpha*"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire),
				rule(2, `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}`, expire),
				rule(3, `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    allImagesRepoB,
			expired: []string{"A", "B", "D"},
		},
		{
			name:   "all images, example B (prefixes)",
			source: "[examples-2019] Filtering on all images, Example B",
			policy: policyOf(
				rule(1, `{"tagStatus": "tagged", "tagPrefixList": ["alpha"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire),
				rule(2, `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}`, expire),
				rule(3, `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}`, expire)),
			repo:    allImagesRepoB,
			expired: []string{"A", "B", "D"},
		},
		{
			name:   `patterns "prod*" versus "*prod*": prod*`,
			source: "[howitworks] tagPatternList matching (repository ours)",
			policy: policyOf(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}`, expire)),
			repo: []named{
				img("prod", 5*day, "prod"), img("prod1", 5*day, "prod1"), img("production-team1", 5*day, "production-team1"),
				img("repo-production", 5*day, "repo-production"), img("prod-team", 5*day, "prod-team"),
				img("preprod", 5*day, "preprod"), img("pro", 5*day, "pro"),
			},
			expired: []string{"prod", "prod-team", "prod1", "production-team1"},
		},
		{
			name:   `patterns "prod*" versus "*prod*": *prod*`,
			source: "[howitworks] tagPatternList matching (repository ours)",
			policy: policyOf(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["*prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}`, expire)),
			repo: []named{
				img("prod", 5*day, "prod"), img("prod1", 5*day, "prod1"), img("production-team1", 5*day, "production-team1"),
				img("repo-production", 5*day, "repo-production"), img("prod-team", 5*day, "prod-team"),
				img("preprod", 5*day, "preprod"), img("pro", 5*day, "pro"),
			},
			expired: []string{"preprod", "prod", "prod-team", "prod1", "production-team1", "repo-production"},
		},
		{
			name:   "filtering on last pulled time: archive images not pulled in 90 days",
			source: "[examples] Filtering on last pulled time; Archiving images not pulled in a specified number of days (repository ours)",
			policy: policyOf(rule(1, `{"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}`, `{"type": "transition", "targetStorageClass": "archive"}`)),
			repo: []named{
				pulled(img("A", 300*day, "v1"), 100*day), // last pulled long ago
				img("B", 120*day),                        // never pulled: push time counts
				pulled(img("C", 200*day, "v2"), 10*day),  // old but pulled recently
				img("D", 30*day, "v3"),                   // recent
			},
			transitioned: []string{"A", "B"},
		},
		{
			name:   "filtering on archive transition time: expire images archived for more than 365 days",
			source: "[examples] Filtering on archive transition time (repository ours)",
			policy: policyOf(rule(1, `{"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 365}`, expire)),
			repo: []named{
				archived(img("A", 900*day, "v1"), 400*day),
				archived(img("B", 900*day, "v2"), 100*day),
				img("C", 1000*day, "v3"), // standard storage: not selected
			},
			expired: []string{"A"},
		},
		{
			name:   "archive examples: archive prod* images older than 30 days",
			source: "[examples] Archive examples, Archiving images older than a specified number of days (repository ours)",
			policy: policyOf(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}`, `{"type": "transition", "targetStorageClass": "archive"}`)),
			repo: []named{
				img("A", 40*day, "prod-1"), img("B", 10*day, "prod-2"), img("C", 40*day, "dev"),
			},
			transitioned: []string{"A"},
		},
		{
			name:   "archive examples: combining archive and expire rules",
			source: "[examples] Archive examples, Combining archive and expire rules (repository ours)",
			policy: policyOf(
				rule(1, `{"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}`, `{"type": "transition", "targetStorageClass": "archive"}`),
				rule(2, `{"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 365}`, expire)),
			repo: []named{
				img("A", 40*day, "v1"),
				img("B", 10*day, "v2"),
				archived(img("C", 900*day, "v0"), 400*day),
				archived(img("D", 900*day), 100*day),
			},
			expired:      []string{"C"},
			transitioned: []string{"A"},
		},
	}
}

func pulled(n named, ago time.Duration) named {
	n.LastPulledAt = testNow.Add(-ago)
	return n
}

func archived(n named, ago time.Duration) named {
	n.StorageClass = StorageClassArchive
	n.ArchivedAt = testNow.Add(-ago)
	return n
}

func TestAWSExamples(t *testing.T) {
	for _, ex := range awsExamples() {
		t.Run(ex.name, func(t *testing.T) {
			p := mustParse(t, ex.policy)
			caps, _ := CapabilitiesFor(RegistryECR)
			if err := p.Validate(caps); err != nil {
				t.Fatalf("AWS's example policy does not validate: %v", err)
			}
			inv := make([]Artifact, len(ex.repo))
			labels := make([]string, len(ex.repo))
			for i, n := range ex.repo {
				inv[i], labels[i] = n.Artifact, n.name
			}
			plan := mustEvaluate(t, p, inv, EvalOptions{})
			if got := names(inv, labels, plan.Expired); !slices.Equal(got, ex.expired) {
				t.Errorf("expired %v, want %v (%s)", got, ex.expired, ex.source)
			}
			if got := names(inv, labels, plan.Transitioned); !slices.Equal(got, ex.transitioned) {
				t.Errorf("transitioned %v, want %v (%s)", got, ex.transitioned, ex.source)
			}
			// A transition archives; only expirations delete.
			if len(plan.Delete) != len(ex.expired) {
				t.Errorf("plan deletes %d artifacts, want %d", len(plan.Delete), len(ex.expired))
			}
			// The result must not depend on the order of the inventory.
			slices.Reverse(inv)
			slices.Reverse(labels)
			again := mustEvaluate(t, p, inv, EvalOptions{})
			if got := names(inv, labels, again.Expired); !slices.Equal(got, ex.expired) {
				t.Errorf("with the inventory reversed: expired %v, want %v", got, ex.expired)
			}
		})
	}
}

// The rule that acts on an image is the first one that selects it: in
// example A, rule 2 marks A and B, but only A expires, and by rule 1.
func TestMultipleRulesExampleAttribution(t *testing.T) {
	ex := awsExamples()[4]
	p := mustParse(t, ex.policy)
	var inv []Artifact
	for _, n := range ex.repo {
		inv = append(inv, n.Artifact)
	}
	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if len(plan.Expired) != 1 {
		t.Fatalf("expired %d images, want 1", len(plan.Expired))
	}
	d := plan.Expired[0]
	if d.Digest != digestOf("A") || d.RulePriority != 1 || d.RuleDescription != "Rule 1" || d.Action != ActionExpire || d.AgeDays != 10 {
		t.Errorf("decision = %+v, want image A expired by rule 1 at 10 days", d)
	}
	if plan.Counts.Candidates != 3 || plan.Counts.Kept != 2 || plan.Counts.Expired != 1 {
		t.Errorf("counts = %+v", plan.Counts)
	}
}
