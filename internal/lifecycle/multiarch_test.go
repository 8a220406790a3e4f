package lifecycle

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
)

// multiArch is the repository of issue 6: an index tagged v1 with two
// platform manifests, a buildx attestation manifest (listed by the index)
// and a cosign signature tagged sha256-<index hex>.sig. Everything is old.
func multiArch() (inv []Artifact, index, amd64, arm64, attest, sig string) {
	index, amd64, arm64, attest = digestOf("index"), digestOf("amd64"), digestOf("arm64"), digestOf("attestation")
	sigTag := strings.Replace(index, ":", "-", 1) + ".sig"
	sig = digestOf("signature")
	old := testNow.Add(-90 * day)
	inv = []Artifact{
		{Digest: index, Tags: []string{"v1"}, PushedAt: old, Size: 900, MediaType: mediaIndex, Children: []string{amd64, arm64, attest}},
		{Digest: amd64, PushedAt: old, Size: 1100, MediaType: mediaManifest},
		{Digest: arm64, PushedAt: old, Size: 1200, MediaType: mediaManifest},
		{Digest: attest, PushedAt: old, Size: 800, MediaType: mediaManifest},
		{Digest: sig, Tags: []string{sigTag}, AttachedTo: index, PushedAt: old, Size: 500, MediaType: mediaManifest},
	}
	return
}

const untaggedOlderThanOneDay = `{"rules": [{"rulePriority": 1, "description": "untagged older than 1 day",
	"selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
	"action": {"type": "expire"}}]}`

const v1OlderThanOneDay = `{"rules": [{"rulePriority": 1, "description": "v1 older than 1 day",
	"selection": {"tagStatus": "tagged", "tagPatternList": ["v1"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
	"action": {"type": "expire"}}]}`

func TestMultiArchUntaggedRuleExpiresNothing(t *testing.T) {
	inv, _, _, _, _, _ := multiArch()
	plan := mustEvaluate(t, mustParse(t, untaggedOlderThanOneDay), inv, EvalOptions{})
	if len(plan.Expired) != 0 || len(plan.Delete) != 0 {
		t.Fatalf("an untagged rule deleted parts of a multi-arch image: expired %v, delete %v", plan.Expired, plan.Delete)
	}
	want := Counts{Artifacts: 5, Candidates: 1, Kept: 1, Descendants: 4, Retained: 5}
	if plan.Counts != want {
		t.Errorf("counts = %+v, want %+v", plan.Counts, want)
	}
}

func TestMultiArchExpiringIndexCascadesToAllFour(t *testing.T) {
	inv, index, amd64, arm64, attest, sig := multiArch()
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{})
	if len(plan.Expired) != 1 || plan.Expired[0].Digest != index {
		t.Fatalf("expired = %+v, want the index", plan.Expired)
	}
	got := plan.Expired[0].Cascade
	want := []Cascaded{
		{Digest: amd64, Kind: CascadeChild, Parent: index, Size: 1100, MediaType: mediaManifest},
		{Digest: arm64, Kind: CascadeChild, Parent: index, Size: 1200, MediaType: mediaManifest},
		{Digest: attest, Kind: CascadeChild, Parent: index, Size: 800, MediaType: mediaManifest},
		{Digest: sig, Kind: CascadeReferrer, Parent: index, Tags: inv[4].Tags, Size: 500, MediaType: mediaManifest},
	}
	slices.SortFunc(want, func(a, b Cascaded) int { return strings.Compare(a.Digest, b.Digest) })
	if !equalJSON(got, want) {
		t.Errorf("cascade =\n%s\nwant\n%s", mustJSON(got), mustJSON(want))
	}
	if len(plan.Delete) != 5 || plan.Delete[0] != index {
		t.Errorf("delete = %v, want the index first, then its four descendants", plan.Delete)
	}
	if plan.BytesReclaimed != 900+1100+1200+800+500 || plan.UnknownSizes != 0 {
		t.Errorf("bytes reclaimed = %d (unknown %d)", plan.BytesReclaimed, plan.UnknownSizes)
	}
	golden(t, "plan_multiarch.json", mustJSON(plan))
}

func TestSharedChildOfKeptIndexIsKept(t *testing.T) {
	inv, index, amd64, arm64, attest, sig := multiArch()
	other := digestOf("index-v2")
	riscv := digestOf("riscv")
	inv = append(inv,
		Artifact{Digest: other, Tags: []string{"v2"}, PushedAt: testNow, Children: []string{amd64, riscv}},
		Artifact{Digest: riscv, PushedAt: testNow},
	)
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{})
	if len(plan.Expired) != 1 || plan.Expired[0].Digest != index {
		t.Fatalf("expired = %+v, want the v1 index only", plan.Expired)
	}
	wantDelete := []string{index}
	rest := []string{arm64, attest, sig}
	slices.Sort(rest)
	wantDelete = append(wantDelete, rest...)
	if got := plan.Delete; !slices.Equal(sortedTail(got), wantDelete) {
		t.Errorf("delete = %v, want %v (the shared amd64 manifest stays)", got, wantDelete)
	}
	for _, c := range plan.Expired[0].Cascade {
		if c.Digest == amd64 {
			t.Errorf("the shared child is listed in the cascade")
		}
	}
}

func sortedTail(s []string) []string {
	out := slices.Clone(s)
	if len(out) > 1 {
		slices.Sort(out[1:])
	}
	return out
}

func TestProtectedIndexIsNeverDeleted(t *testing.T) {
	inv, index, _, _, _, _ := multiArch()
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{Protected: []string{index}})
	if len(plan.Expired) != 0 || len(plan.Delete) != 0 {
		t.Fatalf("protected index expired: %+v", plan)
	}
	want := []ProtectedNote{{Digest: index, Tags: []string{"v1"}, RulePriority: 1, Action: ActionExpire, Reason: "protected; rule 1 would expire it"}}
	if !equalJSON(plan.Protected, want) {
		t.Errorf("protected notes = %s, want %s", mustJSON(plan.Protected), mustJSON(want))
	}
	if plan.Counts.Kept != 1 {
		t.Errorf("kept = %d, want 1", plan.Counts.Kept)
	}
}

func TestProtectedChildSurvivesItsIndex(t *testing.T) {
	inv, index, amd64, _, _, _ := multiArch()
	// The protected platform manifest has a referrer of its own, which it
	// keeps.
	sbom := digestOf("sbom-of-amd64")
	inv = append(inv, Artifact{Digest: sbom, Subject: amd64, PushedAt: testNow})
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{Protected: []string{amd64}})
	if len(plan.Expired) != 1 || plan.Expired[0].Digest != index {
		t.Fatalf("expired = %+v, want the index", plan.Expired)
	}
	for _, d := range plan.Delete {
		if d == amd64 || d == sbom {
			t.Errorf("deleted %s, which the protected digest reaches", d)
		}
	}
	if len(plan.Delete) != 4 {
		t.Errorf("delete = %v, want the index, arm64, the attestation and the signature", plan.Delete)
	}
	want := []ProtectedNote{{Digest: amd64, Reason: "protected; kept although " + index + " is deleted"}}
	if !equalJSON(plan.Protected, want) {
		t.Errorf("protected notes = %s, want %s", mustJSON(plan.Protected), mustJSON(want))
	}
}

func TestReferrerOfChildCascadesTransitively(t *testing.T) {
	inv, index, amd64, _, _, _ := multiArch()
	sbom := digestOf("sbom-of-amd64")
	inv = append(inv, Artifact{Digest: sbom, Subject: amd64, PushedAt: testNow, MediaType: mediaManifest})
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{})
	found := false
	for _, c := range plan.Expired[0].Cascade {
		if c.Digest == sbom {
			found = true
			if c.Kind != CascadeReferrer || c.Parent != amd64 {
				t.Errorf("sbom cascaded as %+v, want a referrer of the amd64 manifest", c)
			}
		}
	}
	if !found {
		t.Fatalf("the referrer of a child did not cascade: %s", mustJSON(plan.Expired[0].Cascade))
	}
	pos := map[string]int{}
	for i, d := range plan.Delete {
		pos[d] = i
	}
	if !(pos[index] < pos[amd64] && pos[amd64] < pos[sbom]) {
		t.Errorf("deletion order %v does not put parents before children", plan.Delete)
	}
}

func TestTaggedChildIsReleasedNotCascaded(t *testing.T) {
	inv, index, _, arm64, _, _ := multiArch()
	inv[2].Tags = []string{"v1-arm64"}
	armSig := digestOf("sig-of-arm64")
	inv = append(inv, Artifact{Digest: armSig, Tags: []string{strings.Replace(arm64, ":", "-", 1) + ".sig"}, AttachedTo: arm64, PushedAt: testNow})

	// While its index lives, the tagged child is not a candidate: a rule
	// for its own tag does not touch it.
	armRule := `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["*arm64"],
		"countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}, "action": {"type": "expire"}}]}`
	plan := mustEvaluate(t, mustParse(t, armRule), inv, EvalOptions{})
	if len(plan.Delete) != 0 {
		t.Fatalf("a tagged child was judged on its own: delete %v", plan.Delete)
	}

	// When its index expires, the tagged child and its signature stay.
	plan = mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{})
	for _, d := range plan.Delete {
		if d == arm64 || d == armSig {
			t.Errorf("deleted %s: a tagged child must not be cascaded", d)
		}
	}
	if len(plan.Delete) != 4 {
		t.Errorf("delete = %v, want the index, amd64, the attestation and the signature", plan.Delete)
	}
	want := []Released{{Digest: arm64, Tags: []string{"v1-arm64"}, Parents: []string{index}}}
	if !equalJSON(plan.Released, want) {
		t.Errorf("released = %s, want %s", mustJSON(plan.Released), mustJSON(want))
	}
}

func TestOrphans(t *testing.T) {
	gone := digestOf("deleted image")
	orphanSig := digestOf("orphan signature")
	orphanRef := digestOf("orphan referrer")
	refOfOrphan := digestOf("referrer of the orphan signature")
	inv := []Artifact{
		image("kept", 1*day, "v1"),
		{Digest: orphanSig, Tags: []string{strings.Replace(gone, ":", "-", 1) + ".sig"}, AttachedTo: gone, PushedAt: testNow, Size: 10},
		{Digest: orphanRef, Subject: digestOf("another deleted image"), PushedAt: testNow, Size: 20},
		{Digest: refOfOrphan, Subject: orphanSig, PushedAt: testNow},
	}
	p := mustParse(t, untaggedOlderThanOneDay)

	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if len(plan.Delete) != 0 {
		t.Fatalf("orphans deleted without DeleteOrphans: %v", plan.Delete)
	}
	if plan.Counts.Orphans != 2 || len(plan.Orphans) != 2 || plan.Orphans[0].Deleted || plan.Orphans[1].Deleted {
		t.Fatalf("orphans = %s", mustJSON(plan.Orphans))
	}

	plan = mustEvaluate(t, p, inv, EvalOptions{DeleteOrphans: true})
	// Image by image (same age: by digest), each followed by what goes
	// with it: the orphan signature's referrer right after it.
	want := []string{orphanSig, refOfOrphan, orphanRef}
	if orphanRef < orphanSig {
		want = []string{orphanRef, orphanSig, refOfOrphan}
	}
	if !slices.Equal(plan.Delete, want) {
		t.Errorf("delete = %v, want %v", plan.Delete, want)
	}
	for _, o := range plan.Orphans {
		if !o.Deleted {
			t.Errorf("orphan %s not deleted", o.Digest)
		}
		if o.Digest == orphanSig && (len(o.Cascade) != 1 || o.Cascade[0].Digest != refOfOrphan || o.Subjects[0] != gone) {
			t.Errorf("orphan signature = %s", mustJSON(o))
		}
	}
	if plan.BytesReclaimed != 30 || plan.UnknownSizes != 1 {
		t.Errorf("bytes = %d, unknown = %d, want 30 and 1", plan.BytesReclaimed, plan.UnknownSizes)
	}

	plan = mustEvaluate(t, p, inv, EvalOptions{DeleteOrphans: true, Protected: []string{orphanSig}})
	if !slices.Equal(plan.Delete, []string{orphanRef}) {
		t.Errorf("delete = %v, want only the unprotected orphan", plan.Delete)
	}
	if len(plan.Protected) != 1 || plan.Protected[0].Digest != orphanSig {
		t.Errorf("protected notes = %s", mustJSON(plan.Protected))
	}
}

func TestNestedIndexAndReferrersTagSchema(t *testing.T) {
	outer, inner, leaf := digestOf("outer"), digestOf("inner"), digestOf("leaf")
	referrer := digestOf("referrer")
	fallback := digestOf("referrers tag schema index")
	inv := []Artifact{
		{Digest: outer, Tags: []string{"v1"}, PushedAt: testNow.Add(-10 * day), Children: []string{inner}},
		{Digest: inner, PushedAt: testNow.Add(-10 * day), Children: []string{leaf}},
		{Digest: leaf, PushedAt: testNow.Add(-10 * day)},
		{Digest: referrer, Subject: outer, PushedAt: testNow},
		// A registry without the referrers API lists them in an index
		// tagged sha256-<subject hex>; it belongs to the subject.
		{Digest: fallback, Tags: []string{strings.Replace(outer, ":", "-", 1)}, AttachedTo: outer, PushedAt: testNow, Children: []string{referrer}},
	}
	everythingTagged := `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}`
	plan := mustEvaluate(t, mustParse(t, everythingTagged), inv, EvalOptions{})
	if plan.Counts.Candidates != 1 || len(plan.Delete) != 0 {
		t.Fatalf("the referrers index was judged as an image: %s", mustJSON(plan))
	}
	plan = mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{})
	if len(plan.Delete) != 5 || plan.Delete[0] != outer {
		t.Fatalf("delete = %v, want all five, the outer index first", plan.Delete)
	}
}

func TestTransitionCascadesWithoutDeleting(t *testing.T) {
	inv, index, _, _, _, _ := multiArch()
	p := mustParse(t, `{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"],
		"countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}, "action": {"type": "transition", "targetStorageClass": "archive"}}]}`)
	plan := mustEvaluate(t, p, inv, EvalOptions{})
	if len(plan.Delete) != 0 || len(plan.Expired) != 0 {
		t.Fatalf("a transition deleted: %v", plan.Delete)
	}
	if len(plan.Transitioned) != 1 || plan.Transitioned[0].Digest != index || len(plan.Transitioned[0].Cascade) != 4 {
		t.Fatalf("transitioned = %s", mustJSON(plan.Transitioned))
	}
	if plan.Counts.Transitioned != 1 || plan.Counts.Kept != 0 || plan.Counts.Retained != 5 {
		t.Errorf("counts = %+v", plan.Counts)
	}
}

func TestEvaluateRejectsBadInput(t *testing.T) {
	p := mustParse(t, untaggedOlderThanOneDay)
	cases := []struct {
		name string
		p    *Policy
		inv  []Artifact
		opts EvalOptions
		want string
	}{
		{"zero now", p, nil, EvalOptions{}, "evaluate lifecycle policy: EvalOptions.Now is not set"},
		{"duplicate digest", p, []Artifact{image("a", day), image("a", day)}, EvalOptions{Now: testNow},
			"evaluate lifecycle policy: digest " + digestOf("a") + " appears twice in the inventory"},
		{"empty digest", p, []Artifact{{PushedAt: testNow}}, EvalOptions{Now: testNow},
			"evaluate lifecycle policy: artifact 0 in the inventory has no digest"},
		{"no push time", p, []Artifact{{Digest: digestOf("x"), Tags: []string{"v1"}}}, EvalOptions{Now: testNow},
			"evaluate lifecycle policy: artifact " + digestOf("x") + " (v1) has no push time, so its age is unknown; the registry listing must supply it"},
		{"bad storage class", p, []Artifact{{Digest: digestOf("x"), StorageClass: "glacier", PushedAt: testNow}}, EvalOptions{Now: testNow},
			"evaluate lifecycle policy: artifact " + digestOf("x") + ` has unknown storage class "glacier"`},
		{"invalid policy", &Policy{}, nil, EvalOptions{Now: testNow},
			"invalid lifecycle policy: policy: has no rules; AWS requires at least one; policy: text is 18 characters long; AWS accepts 100 to 30720 characters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Evaluate(c.p, c.inv, c.opts)
			if err == nil || err.Error() != c.want {
				t.Fatalf("error = %v\nwant    %s", err, c.want)
			}
		})
	}
}

// Children and referrers need no push time of their own: only candidates
// are judged by age.
func TestDescendantsNeedNoPushTime(t *testing.T) {
	inv, _, _, _, _, _ := multiArch()
	for i := 1; i < len(inv); i++ {
		inv[i].PushedAt = time.Time{}
	}
	plan, err := Evaluate(mustParse(t, v1OlderThanOneDay), inv, EvalOptions{Now: testNow})
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	if len(plan.Delete) != 5 {
		t.Errorf("delete = %v, want all five", plan.Delete)
	}
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func equalJSON(a, b any) bool { return bytes.Equal(mustJSON(a), mustJSON(b)) }

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

// Day counts up to AWS's integer limit must not overflow into "everything
// is old": the engine counts back by calendar days, not a Duration.
func TestHugeCountNumbersExpireNothing(t *testing.T) {
	inv := []Artifact{image("a", 3000*day, "v1"), image("b", 5000*day), image("c", 1*day, "v2")}
	for _, sel := range []string{
		`{"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 2147483647}`,
		`{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2147483647}`,
		`{"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 106752}`,
	} {
		plan := mustEvaluate(t, mustParse(t, rulesJSON(ruleJSON("1", sel, expire))), inv, EvalOptions{})
		if len(plan.Expired) != 0 {
			t.Errorf("%s expired %d images", sel, len(plan.Expired))
		}
	}
	// The boundary: older than 3000 days means strictly more than 3000 × 24 h.
	plan := mustEvaluate(t, mustParse(t, rulesJSON(ruleJSON("1",
		`{"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3000}`, expire))), inv, EvalOptions{})
	if len(plan.Expired) != 1 || plan.Expired[0].Digest != digestOf("b") {
		t.Errorf("expired %s, want only b (a is exactly 3000 days old)", mustJSON(plan.Expired))
	}
}

// Ages are measured in 24-hour days whatever the time zone of Now.
func TestDaysAreTwentyFourHoursInAnyZone(t *testing.T) {
	zone, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	// Paris moved its clocks forward on 2025-03-30, so ten calendar days
	// before now are only 239 hours; the rule counts 240.
	now := time.Date(2025, 4, 1, 12, 0, 0, 0, zone)
	inv := []Artifact{
		{Digest: digestOf("just older"), Tags: []string{"v1"}, PushedAt: now.Add(-10*day - time.Minute)},
		{Digest: digestOf("just younger"), Tags: []string{"v2"}, PushedAt: now.Add(-10*day + time.Minute)},
	}
	p := mustParse(t, rulesJSON(ruleJSON("1", `{"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 10}`, expire)))
	plan := mustEvaluate(t, p, inv, EvalOptions{Now: now})
	if len(plan.Expired) != 1 || plan.Expired[0].Digest != digestOf("just older") {
		t.Errorf("expired %s, want only the image pushed just over 240 hours ago", mustJSON(plan.Expired))
	}
}

// Referrers that name each other as subjects form a cycle. Reached from an
// expired index, the cycle goes with it, after the index; reached from
// nothing, it is never judged and stays.
func TestReferrerCycles(t *testing.T) {
	index, a, b := digestOf("index"), digestOf("cycle a"), digestOf("cycle b")
	c, d := digestOf("stranded c"), digestOf("stranded d")
	inv := []Artifact{
		{Digest: index, Tags: []string{"v1"}, PushedAt: testNow.Add(-30 * day), Children: []string{a}},
		{Digest: a, Subject: b},
		{Digest: b, Subject: a},
		{Digest: c, Subject: d},
		{Digest: d, Subject: c, Children: []string{digestOf("amd64")}},
		{Digest: digestOf("amd64")},
	}
	plan := mustEvaluate(t, mustParse(t, v1OlderThanOneDay), inv, EvalOptions{DeleteOrphans: true})
	cycle := []string{a, b}
	slices.Sort(cycle)
	if want := append([]string{index}, cycle...); !slices.Equal(plan.Delete, want) {
		t.Errorf("delete = %v, want %v", plan.Delete, want)
	}
	if plan.Counts.Retained != 3 || plan.Counts.Descendants != 5 {
		t.Errorf("counts = %+v", plan.Counts)
	}
}
