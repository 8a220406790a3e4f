package lifecycle

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The property test builds thousands of random repositories (multi-arch
// indexes with shared children, cosign and OCI 1.1 referrers, referrers of
// referrers, orphans, tagged children, archived images, ties in push time)
// and random valid policies, and checks that
//
//	(a) no artifact that stays loses any descendant,
//	(b) protected digests and everything they reach are never deleted or
//	    transitioned,
//	(c) the candidates acted on, and the rule acting on each, are exactly
//	    those of referenceAWS below, a plain transcription of AWS's
//	    documented algorithm,
//
// plus the bookkeeping of the plan (deletion order, uniqueness, counts, and
// independence from inventory order).
func TestPropertyRandomRepositories(t *testing.T) {
	const repositories = 3000
	// How often each situation came up: the test is only as good as its
	// repositories, so it insists that all of them occur.
	seen := map[string]int{}
	defer func() {
		for _, situation := range []string{"expired", "cascaded child", "cascaded referrer", "transitioned",
			"protected from a rule", "protected descendant", "released tagged child", "orphan deleted", "orphan kept",
			"archived candidate expired", "kept child of an expired index"} {
			if seen[situation] < 10 {
				t.Errorf("the random repositories produced %q only %d times", situation, seen[situation])
			}
		}
		t.Logf("situations over %d repositories: %v", repositories, seen)
	}()
	for seed := uint64(1); seed <= repositories; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		inv := randomInventory(rng)
		p := randomPolicy(rng)
		opts := EvalOptions{Now: testNow, Protected: randomProtected(rng, inv), DeleteOrphans: rng.IntN(2) == 0}
		plan, err := Evaluate(p, inv, opts)
		if err != nil {
			t.Fatalf("seed %d: Evaluate: %v", seed, err)
		}
		if msg := checkPlan(p, inv, opts, plan); msg != "" {
			t.Fatalf("seed %d: %s\npolicy:\n%s\ninventory:\n%s\nplan:\n%s", seed, msg, p.JSON(), mustJSON(inv), mustJSON(plan))
		}
		tally(seen, inv, plan)
		// Same repository listed in another order: same plan.
		shuffled := slices.Clone(inv)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := Evaluate(p, shuffled, opts)
		if err != nil {
			t.Fatalf("seed %d: Evaluate (shuffled): %v", seed, err)
		}
		if !bytes.Equal(mustJSON(plan), mustJSON(again)) {
			t.Fatalf("seed %d: the plan depends on the order of the inventory", seed)
		}
	}
}

func tally(seen map[string]int, inv []Artifact, plan *Plan) {
	byDigest := map[string]Artifact{}
	for _, a := range inv {
		byDigest[a.Digest] = a
	}
	deleted := map[string]bool{}
	for _, d := range plan.Delete {
		deleted[d] = true
	}
	for _, d := range plan.Expired {
		seen["expired"]++
		if byDigest[d.Digest].StorageClass == StorageClassArchive {
			seen["archived candidate expired"]++
		}
		for _, c := range d.Cascade {
			seen["cascaded "+c.Kind]++
		}
		for _, c := range byDigest[d.Digest].Children {
			if _, ok := byDigest[c]; ok && !deleted[c] {
				seen["kept child of an expired index"]++
			}
		}
	}
	seen["transitioned"] += len(plan.Transitioned)
	seen["released tagged child"] += len(plan.Released)
	for _, n := range plan.Protected {
		if n.RulePriority > 0 {
			seen["protected from a rule"]++
		} else {
			seen["protected descendant"]++
		}
	}
	for _, o := range plan.Orphans {
		if o.Deleted {
			seen["orphan deleted"]++
		} else {
			seen["orphan kept"]++
		}
	}
}

var (
	tagVocabulary = []string{"prod-1", "prod-2", "prod-3", "beta-1", "beta-2", "beta-3", "v1.0", "v1.1", "v2.0",
		"latest", "stable", "release-2024", "release-2025", "sha-abc", "sha-def", "dev", "rc1", "pr-12", "pr-13", "x"}
	prefixVocabulary  = []string{"prod", "beta", "v1", "v", "release-", "sha-", "pr-", "rc", "x", "la"}
	patternVocabulary = []string{"prod*", "*1", "v*.*", "*-*", "latest", "*", "beta-?", "*e*e*", "release-202*", "pr-1*", "*a*b*"}
)

type invBuilder struct {
	rng   *rand.Rand
	inv   []Artifact
	n     int
	tags  []string // unused tags: a tag names one manifest
	times []time.Time
}

func (b *invBuilder) digest() string {
	b.n++
	return digestOf(fmt.Sprintf("artifact-%d-%d", b.n, b.rng.Uint64()))
}

func (b *invBuilder) takeTags(max int) []string {
	var out []string
	for k := b.rng.IntN(max + 1); k > 0 && len(b.tags) > 0; k-- {
		i := b.rng.IntN(len(b.tags))
		out = append(out, b.tags[i])
		b.tags = slices.Delete(b.tags, i, i+1)
	}
	return out
}

// pushTime draws from a few coarse instants, so ties are common.
func (b *invBuilder) pushTime() time.Time {
	if len(b.times) > 0 && b.rng.IntN(3) == 0 {
		return b.times[b.rng.IntN(len(b.times))]
	}
	t := testNow.Add(-time.Duration(b.rng.IntN(60*4)) * 6 * time.Hour)
	b.times = append(b.times, t)
	return t
}

func (b *invBuilder) add(a Artifact) int {
	if b.rng.IntN(5) > 0 {
		a.Size = int64(100 + b.rng.IntN(5000))
	}
	b.inv = append(b.inv, a)
	return len(b.inv) - 1
}

func randomInventory(rng *rand.Rand) []Artifact {
	b := &invBuilder{rng: rng, tags: slices.Clone(tagVocabulary)}
	var children []string
	var all []string
	for k := rng.IntN(25); k > 0; k-- {
		a := Artifact{Digest: b.digest(), Tags: b.takeTags(3), PushedAt: b.pushTime()}
		switch rng.IntN(10) {
		case 0:
			a.StorageClass = StorageClassArchive
			a.ArchivedAt = testNow.Add(-time.Duration(rng.IntN(500)) * day)
		case 1:
			a.LastPulledAt = testNow.Add(-time.Duration(rng.IntN(120)) * day)
		case 2:
			a.LastActivatedAt = a.PushedAt.Add(time.Duration(rng.IntN(20)) * day)
		}
		if rng.IntN(3) == 0 { // an index
			a.MediaType = mediaIndex
			for c := 1 + rng.IntN(3); c > 0; c-- {
				if len(children) > 0 && rng.IntN(4) == 0 {
					a.Children = append(a.Children, children[rng.IntN(len(children))]) // shared
					continue
				}
				child := Artifact{Digest: b.digest(), PushedAt: a.PushedAt}
				if rng.IntN(8) == 0 {
					child.Tags = b.takeTags(1) // a tagged platform manifest
				}
				if rng.IntN(10) == 0 { // a nested index
					grandchild := Artifact{Digest: b.digest(), PushedAt: a.PushedAt}
					child.Children = []string{grandchild.Digest}
					b.add(grandchild)
					all = append(all, grandchild.Digest)
				}
				b.add(child)
				children = append(children, child.Digest)
				all = append(all, child.Digest)
				a.Children = append(a.Children, child.Digest)
			}
			if rng.IntN(6) == 0 {
				a.Children = append(a.Children, digestOf("a manifest the registry lost"))
			}
		}
		b.add(a)
		all = append(all, a.Digest)
	}
	// Referrers: cosign tags or OCI 1.1 subjects, of images, children, other
	// referrers, or of nothing left in the repository (orphans).
	for k := rng.IntN(12); k > 0; k-- {
		subject := digestOf(fmt.Sprintf("gone-%d", rng.IntN(3)))
		if len(all) > 0 && rng.IntN(4) > 0 {
			subject = all[rng.IntN(len(all))]
		}
		r := Artifact{Digest: b.digest(), PushedAt: b.pushTime()}
		if rng.IntN(2) == 0 {
			r.Tags = []string{strings.Replace(subject, ":", "-", 1) + []string{".sig", ".att", ".sbom", ""}[rng.IntN(4)]}
			// Usually the registry client proved the tag (the payload
			// names the subject); otherwise it is an ordinary tag.
			if rng.IntN(4) > 0 {
				r.AttachedTo = subject
			}
		} else {
			r.Subject = subject
		}
		b.add(r)
		all = append(all, r.Digest)
	}
	return b.inv
}

func randomProtected(rng *rand.Rand, inv []Artifact) []string {
	var out []string
	for k := rng.IntN(3); k > 0 && len(inv) > 0; k-- {
		out = append(out, inv[rng.IntN(len(inv))].Digest)
	}
	if rng.IntN(10) == 0 {
		out = append(out, digestOf("pushed somewhere else"))
	}
	return out
}

// randomPolicy draws rules until a valid policy comes out.
func randomPolicy(rng *rand.Rand) *Policy {
	ecr, _ := CapabilitiesFor(RegistryECR)
	for {
		p := &Policy{}
		prios := rng.Perm(20)
		for k := 1 + rng.IntN(6); k > 0; k-- {
			p.Rules = append(p.Rules, randomRule(rng, prios[k]+1))
		}
		if p.Validate(ecr) == nil {
			return p
		}
	}
}

func randomRule(rng *rand.Rand, priority int) Rule {
	r := Rule{RulePriority: priority, Description: fmt.Sprintf("random rule %d", priority), Action: Action{Type: ActionExpire}}
	s := &r.Selection
	s.TagStatus = []string{TagStatusTagged, TagStatusTagged, TagStatusUntagged, TagStatusAny}[rng.IntN(4)]
	if s.TagStatus == TagStatusTagged {
		usePatterns := rng.IntN(2) == 0
		vocab := prefixVocabulary
		if usePatterns {
			vocab = patternVocabulary
		}
		var list []string
		for k := 1 + rng.IntN(2); k > 0; k-- {
			list = append(list, vocab[rng.IntN(len(vocab))])
		}
		if usePatterns {
			s.TagPatternList = list
		} else {
			s.TagPrefixList = list
		}
	}
	if rng.IntN(8) == 0 {
		s.StorageClass = StorageClassArchive
		s.CountType, s.CountUnit, s.CountNumber = CountTypeSinceImageTransitioned, CountUnitDays, 90+rng.IntN(300)
		return r
	}
	if rng.IntN(5) == 0 {
		r.Action = Action{Type: ActionTransition, TargetStorageClass: StorageClassArchive}
	}
	switch rng.IntN(3) {
	case 0:
		s.CountType, s.CountNumber = CountTypeImageCountMoreThan, 1+rng.IntN(5)
	case 1:
		s.CountType, s.CountUnit, s.CountNumber = CountTypeSinceImagePushed, CountUnitDays, 1+rng.IntN(40)
	default:
		s.CountType, s.CountUnit, s.CountNumber = CountTypeSinceImagePulled, CountUnitDays, 1+rng.IntN(60)
		r.Action = Action{Type: ActionTransition, TargetStorageClass: StorageClassArchive}
	}
	return r
}

// checkPlan verifies the properties; it returns "" or what is wrong.
func checkPlan(p *Policy, inv []Artifact, opts EvalOptions, plan *Plan) string {
	byDigest := map[string]Artifact{}
	for _, a := range inv {
		byDigest[a.Digest] = a
	}
	// The reference graph, built here independently of the engine.
	refs := map[string][]string{}
	for _, a := range inv {
		for _, c := range a.Children {
			if _, ok := byDigest[c]; ok {
				refs[a.Digest] = append(refs[a.Digest], c)
			}
		}
		for _, s := range append([]string{a.Subject}, subjectTags(a)...) {
			if _, ok := byDigest[s]; ok && s != "" {
				refs[s] = append(refs[s], a.Digest)
			}
		}
	}
	descendants := func(d string) map[string]bool {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(x string) {
			for _, y := range refs[x] {
				if !seen[y] {
					seen[y] = true
					walk(y)
				}
			}
		}
		walk(d)
		return seen
	}

	deleted := map[string]bool{}
	for _, d := range plan.Delete {
		if deleted[d] {
			return "digest " + d + " is deleted twice"
		}
		if _, ok := byDigest[d]; !ok {
			return "deletes " + d + ", which is not in the inventory"
		}
		deleted[d] = true
	}
	transitioned := map[string]bool{}
	for _, dec := range plan.Transitioned {
		transitioned[dec.Digest] = true
		for _, c := range dec.Cascade {
			transitioned[c.Digest] = true
		}
	}

	// (a) whatever stays keeps everything it reaches.
	for _, a := range inv {
		if deleted[a.Digest] {
			continue
		}
		for d := range descendants(a.Digest) {
			if deleted[d] {
				return fmt.Sprintf("(a) %s stays but its descendant %s is deleted", a.Digest, d)
			}
		}
	}
	// (b) protected digests and what they reach are untouched.
	for _, d := range opts.Protected {
		if _, ok := byDigest[d]; !ok {
			continue
		}
		reach := descendants(d)
		reach[d] = true
		for x := range reach {
			if deleted[x] || transitioned[x] {
				return fmt.Sprintf("(b) %s is reached from protected %s but deleted or transitioned", x, d)
			}
		}
	}
	// (c) the candidates acted on are AWS's.
	want := referenceAWS(p, inv, opts.Now)
	got := map[string]refDecision{}
	for _, list := range [][]Decision{plan.Expired, plan.Transitioned} {
		for _, dec := range list {
			got[dec.Digest] = refDecision{dec.RulePriority, dec.Action}
		}
	}
	protected := map[string]bool{}
	for _, d := range opts.Protected {
		protected[d] = true
	}
	for _, n := range plan.Protected {
		if n.RulePriority > 0 {
			got[n.Digest] = refDecision{n.RulePriority, n.Action}
		}
	}
	for d, w := range want {
		if g, ok := got[d]; !ok || g != w {
			return fmt.Sprintf("(c) reference: %s acted on by rule %d (%s); engine: %+v (present %v)", d, w.priority, w.action, g, ok)
		}
	}
	for d := range got {
		if _, ok := want[d]; !ok {
			return fmt.Sprintf("(c) engine acts on %s, the reference does not", d)
		}
	}
	for _, dec := range plan.Expired {
		if protected[dec.Digest] {
			return "(b) protected " + dec.Digest + " is in the expired list"
		}
	}

	// Every deletion is explained: an expired candidate, a deleted orphan,
	// or a descendant of one of them.
	explained := map[string]bool{}
	for _, dec := range plan.Expired {
		explained[dec.Digest] = true
		for d := range descendants(dec.Digest) {
			explained[d] = true
		}
	}
	for _, o := range plan.Orphans {
		if o.Deleted {
			if !opts.DeleteOrphans {
				return "orphan deleted without DeleteOrphans"
			}
			explained[o.Digest] = true
			for d := range descendants(o.Digest) {
				explained[d] = true
			}
		}
	}
	direct := map[string]bool{}
	for _, dec := range plan.Expired {
		direct[dec.Digest] = true
	}
	for _, o := range plan.Orphans {
		direct[o.Digest] = o.Deleted
	}
	for d := range deleted {
		if !explained[d] {
			return "deletes " + d + " for no reason"
		}
		// A child or referrer with a tag of its own is released, not
		// cascaded.
		if a := byDigest[d]; !direct[d] && len(a.Tags) > len(subjectTags(a)) {
			return "cascades " + d + ", which has tags of its own"
		}
	}
	// Parents before children in the deletion order.
	pos := map[string]int{}
	for i, d := range plan.Delete {
		pos[d] = i
	}
	for parent, list := range refs {
		for _, child := range list {
			if deleted[parent] && deleted[child] && pos[parent] > pos[child] && !descendants(child)[parent] {
				return fmt.Sprintf("deletes %s before %s, which references it", child, parent)
			}
		}
	}
	c := plan.Counts
	if c.Artifacts != len(inv) || c.Deleted != len(plan.Delete) || c.Retained != len(inv)-len(plan.Delete) ||
		c.Candidates != c.Expired+c.Transitioned+c.Kept || c.Candidates+c.Descendants+c.Orphans != c.Artifacts {
		return fmt.Sprintf("inconsistent counts %+v", c)
	}
	return ""
}

// subjectTags lists the subjects an artifact's tags name and its content
// proves (AttachedTo, or its OCI subject); other tags are its own.
func subjectTags(a Artifact) []string {
	var out []string
	for _, t := range a.Tags {
		if d, _, ok := SubjectFromCosignTag(t); ok && d != a.Digest && (d == a.AttachedTo || d == a.Subject) {
			out = append(out, d)
		}
	}
	return out
}

type refDecision struct {
	priority int
	action   string
}

// referenceAWS transcribes AWS's documented evaluation, slowly and plainly:
// the candidates are the artifacts no other artifact references and which
// name no subject; rules run by priority; a rule sees the images of its
// storage class whose tags match; it marks, by count (newest first, ties by
// digest) or by age; a marked image is acted on unless an earlier rule saw
// it.
func referenceAWS(p *Policy, inv []Artifact, now time.Time) map[string]refDecision {
	present := map[string]bool{}
	for _, a := range inv {
		present[a.Digest] = true
	}
	referenced := map[string]bool{}
	for _, a := range inv {
		for _, c := range a.Children {
			if present[c] {
				referenced[c] = true
			}
		}
	}
	var candidates []Artifact
	for _, a := range inv {
		if !referenced[a.Digest] && a.Subject == "" && len(subjectTags(a)) == 0 {
			candidates = append(candidates, a)
		}
	}
	rules := slices.Clone(p.Rules)
	for i := range rules { // insertion sort by priority
		for j := i; j > 0 && rules[j].RulePriority < rules[j-1].RulePriority; j-- {
			rules[j], rules[j-1] = rules[j-1], rules[j]
		}
	}
	// AWS ranks and ages by imagePushedAt, a restore from archive aside.
	pushed := func(a Artifact) time.Time { return a.PushedAt }
	olderThan := func(t time.Time, days int) bool {
		return !t.IsZero() && now.Sub(t) > time.Duration(days)*24*time.Hour
	}
	var seen []string // every digest some earlier rule selected
	decided := map[string]refDecision{}
	for _, r := range rules {
		class := r.Selection.StorageClass
		if class == "" {
			class = StorageClassStandard
		}
		var matching []Artifact
		for _, a := range candidates {
			ac := a.StorageClass
			if ac == "" {
				ac = StorageClassStandard
			}
			if ac == class && referenceMatch(r.Selection, a.Tags) {
				matching = append(matching, a)
			}
		}
		newer := func(x, y Artifact) bool { // x sorts before y
			if !pushed(x).Equal(pushed(y)) {
				return pushed(x).After(pushed(y))
			}
			return x.Digest < y.Digest
		}
		for i := 0; i < len(matching); i++ { // bubble sort, newest first
			for j := 0; j < len(matching)-1-i; j++ {
				if newer(matching[j+1], matching[j]) {
					matching[j], matching[j+1] = matching[j+1], matching[j]
				}
			}
		}
		for k, a := range matching {
			var marked bool
			switch r.Selection.CountType {
			case CountTypeImageCountMoreThan:
				marked = k >= r.Selection.CountNumber
			case CountTypeSinceImagePushed:
				marked = olderThan(pushed(a), r.Selection.CountNumber)
			case CountTypeSinceImagePulled:
				last := pushed(a)
				if a.LastPulledAt.After(last) {
					last = a.LastPulledAt
				}
				marked = olderThan(last, r.Selection.CountNumber)
			case CountTypeSinceImageTransitioned:
				marked = olderThan(a.ArchivedAt, r.Selection.CountNumber)
			}
			if marked && !slices.Contains(seen, a.Digest) {
				decided[a.Digest] = refDecision{r.RulePriority, r.Action.Type}
			}
		}
		for _, a := range matching {
			seen = append(seen, a.Digest)
		}
	}
	return decided
}

// referenceMatch: every list entry must match one of the tags; patterns are
// turned into anchored regular expressions.
func referenceMatch(s Selection, tags []string) bool {
	switch s.TagStatus {
	case TagStatusAny:
		return true
	case TagStatusUntagged:
		return len(tags) == 0
	}
	if len(tags) == 0 {
		return false
	}
	for _, prefix := range s.TagPrefixList {
		if !slices.ContainsFunc(tags, func(t string) bool { return strings.HasPrefix(t, prefix) }) {
			return false
		}
	}
	for _, pattern := range s.TagPatternList {
		parts := strings.Split(pattern, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		if !slices.ContainsFunc(tags, re.MatchString) {
			return false
		}
	}
	return true
}
