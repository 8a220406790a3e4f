package lifecycle

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Keeping a repository safe while it changes: the grace period, holds,
// GitHub's last-tagged-version rule, images being restored, proven
// attachments and ECR's index sizes.

const anyOlderThanOneDay = `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}, "action": {"type": "expire"}}]}`

const keepOneUntagged = `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}`

func TestUntaggedGraceKeepsAPushInProgress(t *testing.T) {
	// Platform manifests written a minute ago, before the index that will
	// list them: an untagged count rule would expire all but one.
	inv := []Artifact{
		image("old untagged", 10*day),
		image("amd64 in flight", time.Minute),
		image("arm64 in flight", 2*time.Minute),
	}
	p := mustParse(t, keepOneUntagged)
	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if len(plan.Delete) != 2 {
		t.Fatalf("without a grace period the rule expires two: %v", plan.Delete)
	}
	plan = mustEvaluate(t, p, inv, EvalOptions{UntaggedGrace: time.Hour})
	if !slices.Equal(plan.Delete, []string{digestOf("old untagged")}) {
		t.Fatalf("delete = %v, want only the old untagged image", plan.Delete)
	}
	if len(plan.Protected) != 1 || !strings.Contains(plan.Protected[0].Reason, "within the untagged grace period of 1h0m0s") {
		t.Errorf("protected notes = %s", mustJSON(plan.Protected))
	}
	// Tagged images are not in grace: a tag says the push finished.
	tagged := []Artifact{image("fresh", time.Minute, "v2"), image("older", 2*time.Minute, "v1")}
	keepOne := `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}`
	if plan := mustEvaluate(t, mustParse(t, keepOne), tagged, EvalOptions{UntaggedGrace: time.Hour}); len(plan.Delete) != 1 {
		t.Errorf("grace held a tagged image: %v", plan.Delete)
	}
}

func TestHeldDigestsAreKeptWithTheirReason(t *testing.T) {
	inv, index, _, _, _, _ := multiArch()
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{Held: []Hold{{Digest: index, Reason: "its tags changed since it was listed"}}})
	if len(plan.Delete) != 0 || len(plan.Protected) != 1 || plan.Protected[0].Reason != "its tags changed since it was listed; rule 1 would expire it" {
		t.Fatalf("delete %v, protected %s", plan.Delete, mustJSON(plan.Protected))
	}
}

func TestLastTaggedVersionIsKept(t *testing.T) {
	inv, index, _, _, _, _ := multiArch()
	inv = append(inv, image("older release", 100*day, "v0"), image("untagged", 50*day))
	p := mustParse(t, anyOlderThanOneDay)
	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if len(plan.Delete) != len(inv) {
		t.Fatalf("the rule should expire everything: %v", plan.Delete)
	}
	plan = mustEvaluate(t, p, inv, EvalOptions{KeepLastTagged: true})
	// The newest tagged image stays, with its platforms and signature.
	if len(plan.Delete) != 2 || slices.Contains(plan.Delete, index) {
		t.Fatalf("delete = %v, want the older release and the untagged image", plan.Delete)
	}
	if len(plan.Protected) != 1 || plan.Protected[0].Digest != index || !strings.HasPrefix(plan.Protected[0].Reason, ReasonLastTagged) {
		t.Errorf("protected = %s", mustJSON(plan.Protected))
	}
	// A plan that keeps a tagged image needs no hold.
	inv = append(inv, image("newest", 0, "latest"))
	plan = mustEvaluate(t, p, inv, EvalOptions{KeepLastTagged: true})
	if len(plan.Protected) != 0 || len(plan.Delete) != len(inv)-1 {
		t.Errorf("delete %d, protected %s", len(plan.Delete), mustJSON(plan.Protected))
	}
}

func TestRestoringImagesAreNeverSelected(t *testing.T) {
	restoring := image("restoring", 200*day, "v0")
	restoring.Restoring = true
	restoring.LastActivatedAt = testNow.Add(-time.Hour)
	inv := []Artifact{restoring, image("v1", 100*day, "v1"), image("v2", 50*day, "v2")}
	keepOne := `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}`
	plan := mustEvaluate(t, mustParse(t, keepOne), inv, EvalOptions{})
	// Not counted either: v2 is the one kept, v1 the one expired.
	if !slices.Equal(plan.Delete, []string{digestOf("v1")}) {
		t.Fatalf("delete = %v, want v1 alone", plan.Delete)
	}
	if len(plan.Protected) != 1 || plan.Protected[0].Reason != ReasonRestoring {
		t.Errorf("protected = %s", mustJSON(plan.Protected))
	}
}

func TestRestoredImagesAgeFromTheirPush(t *testing.T) {
	restored := image("restored", 100*day, "v1")
	restored.LastActivatedAt = testNow.Add(-time.Hour)
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), []Artifact{restored}, EvalOptions{})
	if len(plan.Expired) != 1 || plan.Expired[0].AgeDays != 100 {
		t.Fatalf("expired = %s, want the image, 100 days old by its push", mustJSON(plan.Expired))
	}
}

func TestCosignTagsAttachOnlyWhenProven(t *testing.T) {
	img := image("image", 10*day, "v1")
	tag := strings.Replace(img.Digest, ":", "-", 1) + ".sig"
	unproven := Artifact{Digest: digestOf("named like a signature"), Tags: []string{tag}, PushedAt: testNow.Add(-10 * day)}
	proven := Artifact{Digest: digestOf("signature"), Tags: []string{tag}, AttachedTo: img.Digest, PushedAt: testNow.Add(-10 * day)}

	// An unproven sha256-…​.sig tag is an ordinary tag: its image is judged
	// on its own, as ECR judges it.
	plan := mustEvaluate(t, mustParse(t, anyOlderThanOneDay), []Artifact{img, unproven}, EvalOptions{})
	if plan.Counts.Candidates != 2 || len(plan.Expired) != 2 {
		t.Fatalf("unproven: %s", mustJSON(plan.Counts))
	}
	keepV1 := `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["v1"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}`
	plan = mustEvaluate(t, mustParse(t, keepV1), []Artifact{img, proven}, EvalOptions{})
	if plan.Counts.Candidates != 1 || plan.Counts.Descendants != 1 || len(plan.Delete) != 0 {
		t.Fatalf("proven: %s", mustJSON(plan.Counts))
	}
	if !proven.Attachment(tag) || unproven.Attachment(tag) || len(unproven.OwnTags()) != 1 || len(proven.OwnTags()) != 0 {
		t.Error("Attachment/OwnTags disagree with AttachedTo")
	}
}

func TestECRIndexSizeIsNotCountedTwice(t *testing.T) {
	inv, index, _, _, _, _ := multiArch()
	inv[0].Size, inv[0].SizeIncludesChildren = 1200, true // ECR: the largest platform image
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{})
	if plan.Delete[0] != index {
		t.Fatal("the index is not deleted first")
	}
	// The index as AWS reports it, plus the signature: the platform and
	// attestation manifests are in the index's figure already.
	if plan.BytesReclaimed != 1200+500 {
		t.Errorf("bytes reclaimed = %d, want %d", plan.BytesReclaimed, 1200+500)
	}
}

func TestLeftoversOfAnInterruptedRunAreFinished(t *testing.T) {
	// A run deleted the index, then stopped: its platform manifests and
	// signature are left, top-level and orphaned.
	inv, index, amd64, arm64, attest, sig := multiArch()
	inv = append(inv[1:], image("kept", time.Hour, "v2"))
	p := mustParse(t, v1OlderThanOneDay)
	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if len(plan.Delete) != 0 {
		t.Fatalf("the leftovers are not the policy's to delete: %v", plan.Delete)
	}
	plan = mustEvaluate(t, p, inv, EvalOptions{Finish: []string{amd64, arm64, attest, sig, digestOf("kept")}, Held: []Hold{{Digest: attest, Reason: "its tags changed"}}})
	got := slices.Clone(plan.Delete)
	slices.Sort(got)
	want := []string{amd64, arm64, sig}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delete = %v, want %v: the leftovers, but neither the held one nor the tagged image", plan.Delete, want)
	}
	if len(plan.Finished) != 3 || len(plan.Orphans) != 0 {
		t.Errorf("finished %s, orphans %s", mustJSON(plan.Finished), mustJSON(plan.Orphans))
	}
	_ = index
}
