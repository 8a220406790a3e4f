package lifecycle

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// EvalOptions are the inputs of Evaluate besides the policy and inventory.
type EvalOptions struct {
	// Now is the instant ages are measured from. Required: the engine never
	// reads the clock, so plans are reproducible.
	Now time.Time
	// Protected digests are never deleted or transitioned, nor anything they
	// reach (their children and referrers): typically the digest pushed
	// earlier in the same run.
	Protected []string
	// DeleteOrphans also deletes referrers whose subject is no longer in the
	// repository (signatures and attestations of deleted images).
	DeleteOrphans bool
	// Held digests are kept like protected ones, each for the reason given
	// (shown in the plan).
	Held []Hold
	// UntaggedGrace holds every untagged artifact pushed less than this
	// long before Now: a push in progress writes platform manifests before
	// the index that lists them, and they must not look like leftovers.
	// Artifacts without a push time are not affected.
	UntaggedGrace time.Duration
	// KeepLastTagged never lets the plan delete every tagged artifact: if
	// it would, the newest expired tagged image is kept (GitHub refuses to
	// delete the last tagged version of a package).
	KeepLastTagged bool
	// Finish lists artifacts an earlier run meant to delete with an image
	// it did delete, and left behind when it stopped: each is deleted now,
	// with what it references, if nothing present references it, it has no
	// tag of its own and it is not protected or held. Others are ignored.
	Finish []string
}

// Hold keeps one digest, and what it reaches, for a reason.
type Hold struct {
	Digest string `json:"digest"`
	Reason string `json:"reason"`
}

// Reasons of the holds Evaluate adds itself.
const (
	ReasonLastTagged = "GitHub refuses to delete the last tagged version of a package, so the newest tagged image the policy expires is kept"
	ReasonRestoring  = "being restored from archive (ACTIVATING): no rule selects it until ECR has finished"
)

// Kinds of cascaded artifacts.
const (
	CascadeChild    = "child"    // referenced by an index's manifests
	CascadeReferrer = "referrer" // names the parent as its subject
)

// Plan is the outcome of Evaluate. Every list is in a deterministic order,
// and the JSON form is the plan file the clean stage writes.
type Plan struct {
	EvaluatedAt time.Time `json:"evaluatedAt"`
	// Expired are the top-level artifacts a rule expires, oldest first.
	Expired []Decision `json:"expired"`
	// Transitioned are the top-level artifacts a rule moves to archive
	// storage (ECR only); nothing of theirs is deleted.
	Transitioned []Decision `json:"transitioned,omitempty"`
	// Orphans are referrers whose subject is absent from the repository.
	Orphans []Orphan `json:"orphans,omitempty"`
	// Protected records protected artifacts the policy would otherwise have
	// removed.
	Protected []ProtectedNote `json:"protected,omitempty"`
	// Released are tagged children or referrers kept although the artifact
	// referencing them is deleted.
	Released []Released `json:"released,omitempty"`
	// Kept says, for every top-level artifact no rule acts on, which rule
	// selected it first (and so keeps it), if any.
	Kept []Kept `json:"kept,omitempty"`
	// Finished are artifacts left behind by an earlier, interrupted run
	// (EvalOptions.Finish) and deleted now with what they reference.
	Finished []Orphan `json:"finished,omitempty"`
	// Delete is every digest to delete, each once, an index or subject before
	// the artifacts it references (ECR refuses to delete a manifest an index
	// still lists).
	Delete []string `json:"delete"`
	Counts Counts   `json:"counts"`
	// BytesReclaimed sums the sizes of the deleted artifacts whose size is
	// known; UnknownSizes counts the others.
	BytesReclaimed int64 `json:"bytesReclaimed"`
	UnknownSizes   int   `json:"unknownSizes,omitempty"`
}

// Decision is one top-level artifact a rule acts on.
type Decision struct {
	Digest          string     `json:"digest"`
	Tags            []string   `json:"tags"`
	PushedAt        time.Time  `json:"pushedAt"`
	AgeDays         int        `json:"ageDays"`
	Size            int64      `json:"size,omitempty"`
	MediaType       string     `json:"mediaType,omitempty"`
	RulePriority    int        `json:"rulePriority"`
	RuleDescription string     `json:"ruleDescription,omitempty"`
	Action          string     `json:"action"`
	Cascade         []Cascaded `json:"cascade,omitempty"`
}

// Cascaded is an artifact that goes with the decision above it.
type Cascaded struct {
	Digest    string   `json:"digest"`
	Kind      string   `json:"kind"`   // CascadeChild or CascadeReferrer
	Parent    string   `json:"parent"` // the digest that references it
	Tags      []string `json:"tags,omitempty"`
	Size      int64    `json:"size,omitempty"`
	MediaType string   `json:"mediaType,omitempty"`
}

// Orphan is a referrer whose subject is gone.
type Orphan struct {
	Digest   string     `json:"digest"`
	Tags     []string   `json:"tags,omitempty"`
	Subjects []string   `json:"subjects"`
	Size     int64      `json:"size,omitempty"`
	Deleted  bool       `json:"deleted"`
	Cascade  []Cascaded `json:"cascade,omitempty"`
}

// ProtectedNote says why a protected artifact survived.
type ProtectedNote struct {
	Digest       string   `json:"digest"`
	Tags         []string `json:"tags,omitempty"`
	RulePriority int      `json:"rulePriority,omitempty"` // the rule that would have acted on it
	Action       string   `json:"action,omitempty"`       // what that rule would have done
	Reason       string   `json:"reason"`
}

// Kept is a top-level artifact the rules leave in place. RulePriority is the
// first rule that selected it (0 when none did): ECR never lets a later rule
// expire an image an earlier one selected.
type Kept struct {
	Digest       string `json:"digest"`
	RulePriority int    `json:"rulePriority,omitempty"`
}

// Released is a tagged descendant kept while an artifact referencing it is
// deleted: the tag says someone uses it on its own, so it is left for the
// policy to judge once it stands alone.
type Released struct {
	Digest  string   `json:"digest"`
	Tags    []string `json:"tags"`
	Parents []string `json:"parents"` // the deleted artifacts that referenced it
}

// Counts summarises a plan.
type Counts struct {
	Artifacts    int `json:"artifacts"`    // everything in the inventory
	Candidates   int `json:"candidates"`   // top-level artifacts the rules judged
	Expired      int `json:"expired"`      // candidates expired
	Transitioned int `json:"transitioned"` // candidates transitioned
	Kept         int `json:"kept"`         // candidates neither expired nor transitioned (protected ones included)
	Descendants  int `json:"descendants"`  // children and referrers, never judged alone
	Orphans      int `json:"orphans"`
	Deleted      int `json:"deleted"`  // len(Delete)
	Retained     int `json:"retained"` // artifacts not deleted
}

// node is an artifact with its place in the reference graph.
type node struct {
	a        *Artifact
	out      []edge // children and referrers
	parents  int    // edges into this node from artifacts in the inventory
	subjects []string
	ownTag   bool // carries a tag that is not derived from a subject
	// Time keys (see timeKey) and a digest key, so that sorting and age
	// checks compare integers.
	pushKey   int64 // pushed_at
	pullKey   int64 // last pull, or pushKey if later or never pulled
	ageKey    int64 // pushed_at, for the order of the plan's lists
	digestKey uint64
}

// timeKey maps an instant to nanoseconds since 1970, clamping instants
// before 1678 or after 2262 to the ends of the range, where they tie.
func timeKey(t time.Time) int64 {
	const maxSeconds = math.MaxInt64/int64(time.Second) - 1
	switch sec := t.Unix(); {
	case sec > maxSeconds:
		return math.MaxInt64
	case sec < -maxSeconds:
		return math.MinInt64
	default:
		return sec*int64(time.Second) + int64(t.Nanosecond())
	}
}

// digestKey packs the first eight bytes of the digest's hex part, so most
// digest comparisons are one integer comparison; equal keys fall back to
// comparing the strings.
func digestKey(d string) uint64 {
	if _, hex, ok := strings.Cut(d, ":"); ok {
		d = hex
	}
	var k uint64
	for i := 0; i < 8; i++ {
		k <<= 8
		if i < len(d) {
			k |= uint64(d[i])
		}
	}
	return k
}

func (n *node) compareDigest(m *node) int {
	if c := cmp.Compare(n.digestKey, m.digestKey); c != 0 {
		return c
	}
	return strings.Compare(n.a.Digest, m.a.Digest)
}

type edge struct {
	to   int
	kind string
}

type role int

const (
	roleCandidate role = iota
	roleDescendant
	roleOrphan
)

// Evaluate applies the policy to a repository's inventory.
//
// The rules judge top-level artifacts only, exactly as AWS judges the images
// of a plain repository: rules run in priority order; each selects the
// images of its storage class that match its tag criteria; imageCountMoreThan
// keeps the newest N of them (by push time, ties broken by digest) and marks
// the rest; since* marks those older than N days of 24 hours before Now,
// counting from the push (or the restore from archive), the last pull, or
// the archiving; a marked image is acted on unless a higher-priority rule
// already selected it, so an image is acted on by at most one rule, while
// later rules still count it.
//
// Children of an index and referrers of a subject are never candidates: a
// platform manifest is "untagged" to a registry but an index still needs it.
// They live and die with what references them: everything a kept artifact
// reaches is kept; what an expired artifact reaches is deleted with it unless
// a kept artifact reaches it too (a child shared by two indexes). A child or
// referrer that carries a tag of its own (not a cosign "sha256-<hex>.sig"
// style tag) is still not a candidate while referenced, but it is not
// cascaded either: it is kept and reported as Released, and judged alone once
// nothing references it. Referrers whose subject is absent are orphans, kept
// unless opts.DeleteOrphans. Referrers that only name each other (a cycle no
// candidate reaches) are never judged and stay. Protected digests, and
// everything they reach, are never deleted or transitioned.
//
// The policy is validated with ECR's capabilities (the whole language);
// check it against the target registry's with Validate first.
func Evaluate(p *Policy, inventory []Artifact, opts EvalOptions) (*Plan, error) {
	caps, _ := CapabilitiesFor(RegistryECR)
	if err := p.Validate(caps); err != nil {
		return nil, err
	}
	if opts.Now.IsZero() {
		return nil, errors.New("evaluate lifecycle policy: EvalOptions.Now is not set")
	}
	g, err := buildGraph(inventory)
	if err != nil {
		return nil, err
	}
	e := &evaluation{p: p, g: g, opts: opts}
	if err := e.classify(); err != nil {
		return nil, err
	}
	e.applyRules()
	plan := e.plan()
	if opts.KeepLastTagged {
		if keep, ok := e.lastTagged(plan); ok {
			e.protected[keep] = true
			e.reason[keep] = ReasonLastTagged
			plan = e.plan()
		}
	}
	return plan, nil
}

// lastTagged returns the artifact to keep when the plan deletes every
// tagged artifact of the repository: the newest expired image that has a
// tag or takes a tagged artifact with it.
func (e *evaluation) lastTagged(plan *Plan) (int, bool) {
	deleted := map[string]bool{}
	for _, d := range plan.Delete {
		deleted[d] = true
	}
	for i := range e.g.nodes {
		if a := e.g.nodes[i].a; len(a.Tags) > 0 && !deleted[a.Digest] {
			return 0, false
		}
	}
	best, found := 0, false
	for _, d := range plan.Expired {
		tagged := len(d.Tags) > 0
		for _, c := range d.Cascade {
			tagged = tagged || len(c.Tags) > 0
		}
		i := e.g.index[d.Digest]
		if tagged && (!found || e.g.nodes[i].pushKey > e.g.nodes[best].pushKey ||
			e.g.nodes[i].pushKey == e.g.nodes[best].pushKey && e.g.nodes[i].compareDigest(&e.g.nodes[best]) > 0) {
			best, found = i, true
		}
	}
	return best, found
}

type graph struct {
	nodes []node
	index map[string]int
}

func buildGraph(inventory []Artifact) (*graph, error) {
	g := &graph{nodes: make([]node, len(inventory)), index: make(map[string]int, len(inventory))}
	for i := range inventory {
		a := &inventory[i]
		if a.Digest == "" {
			return nil, fmt.Errorf("evaluate lifecycle policy: artifact %d in the inventory has no digest", i)
		}
		before := len(g.index)
		g.index[a.Digest] = i // one hash instead of a lookup and an insert
		if len(g.index) == before {
			return nil, fmt.Errorf("evaluate lifecycle policy: digest %s appears twice in the inventory", a.Digest)
		}
		switch a.StorageClass {
		case "", StorageClassStandard, StorageClassArchive:
		default:
			return nil, fmt.Errorf("evaluate lifecycle policy: artifact %s has unknown storage class %q", a.Digest, a.StorageClass)
		}
		n := node{a: a, ageKey: timeKey(a.PushedAt), digestKey: digestKey(a.Digest)}
		// Ranks and ages count from the push, as AWS's preview reports
		// imagePushedAt; a restore from archive does not make an image new.
		n.pushKey = n.ageKey
		n.pullKey = max(n.pushKey, timeKey(a.LastPulledAt))
		g.nodes[i] = n
	}
	for i := range g.nodes {
		n := &g.nodes[i]
		for _, c := range n.a.Children {
			if j, ok := g.index[c]; ok {
				n.out = append(n.out, edge{to: j, kind: CascadeChild})
				g.nodes[j].parents++ // a child listed twice counts twice; only > 0 matters
			}
		}
		n.subjects, n.ownTag = subjectsOf(n.a)
		for _, s := range n.subjects {
			if j, ok := g.index[s]; ok {
				g.nodes[j].out = append(g.nodes[j].out, edge{to: i, kind: CascadeReferrer})
				n.parents++
			}
		}
	}
	for i := range g.nodes {
		out := g.nodes[i].out
		if len(out) < 2 {
			continue
		}
		slices.SortFunc(out, func(x, y edge) int {
			return cmp.Or(strings.Compare(g.nodes[x.to].a.Digest, g.nodes[y.to].a.Digest), strings.Compare(x.kind, y.kind))
		})
		g.nodes[i].out = slices.CompactFunc(out, func(x, y edge) bool { return x.to == y.to })
	}
	return g, nil
}

// subjectsOf returns the subject digests an artifact names (its OCI subject,
// and what a proven cosign-style tag names), and whether it also has a tag
// of its own.
func subjectsOf(a *Artifact) (subjects []string, ownTag bool) {
	for _, t := range a.Tags {
		if !a.Attachment(t) {
			ownTag = true
			break
		}
	}
	return a.Subjects(), ownTag
}

type evaluation struct {
	p    *Policy
	g    *graph
	opts EvalOptions

	roles     []role
	ruleOf    []int // index into sorted rules of the rule acting on a candidate; -1 if none
	selectBy  []int // index into sorted rules of the first rule selecting a candidate; -1 if none
	rules     []Rule
	protected []bool
	// reason says why a protected artifact is kept, when it is not simply
	// protected (held, in grace, being restored).
	reason map[int]string
	// byAge lists the candidates and orphans oldest push first, ties by
	// digest: the order of the plan's lists, computed once so they need no
	// sorting of their own.
	byAge []int
	// stamp and generation mark visited nodes without a map per walk.
	stamp      []uint32
	generation uint32
	queue      []int
}

func (e *evaluation) classify() error {
	nodes := e.g.nodes
	e.roles = make([]role, len(nodes))
	e.ruleOf = make([]int, len(nodes))
	e.selectBy = make([]int, len(nodes))
	e.protected = make([]bool, len(nodes))
	for i := range nodes {
		e.ruleOf[i], e.selectBy[i] = -1, -1
		n := &nodes[i]
		switch {
		case n.parents > 0:
			// Referenced by an index or naming a present subject. This holds
			// for a tagged platform manifest too: while an index lists it,
			// deleting it breaks the index (and ECR refuses to), so its tag
			// does not make it a candidate. If every index listing it
			// expires, it is released rather than cascaded (see plan), and
			// judged alone on the next run.
			e.roles[i] = roleDescendant
		case len(n.subjects) > 0:
			e.roles[i] = roleOrphan
		default:
			e.roles[i] = roleCandidate
			if n.a.PushedAt.IsZero() {
				return fmt.Errorf("evaluate lifecycle policy: artifact %s%s has no push time, so its age is unknown; the registry listing must supply it",
					n.a.Digest, DescribeTags(n.a.Tags))
			}
		}
	}
	e.reason = map[int]string{}
	for _, d := range e.opts.Protected {
		if i, ok := e.g.index[d]; ok {
			e.protected[i] = true
		}
	}
	for _, h := range e.opts.Held {
		if i, ok := e.g.index[h.Digest]; ok && !e.protected[i] {
			e.protected[i] = true
			e.reason[i] = h.Reason
		}
	}
	for i := range nodes {
		a := nodes[i].a
		switch {
		case e.protected[i]:
		case a.Restoring:
			e.protected[i] = true
			e.reason[i] = ReasonRestoring
		case e.opts.UntaggedGrace > 0 && len(a.Tags) == 0 && !a.PushedAt.IsZero() && e.opts.Now.Sub(a.PushedAt) < e.opts.UntaggedGrace:
			e.protected[i] = true
			e.reason[i] = fmt.Sprintf("untagged and pushed %s ago, within the untagged grace period of %s: a push may still be writing the index that lists it",
				e.opts.Now.Sub(a.PushedAt).Round(time.Second), e.opts.UntaggedGrace)
		}
	}
	// Only candidates and orphans head the plan's lists.
	var heads []int
	for i := range nodes {
		if e.roles[i] != roleDescendant {
			heads = append(heads, i)
		}
	}
	e.byAge = e.sortByTime(heads, func(n *node) int64 { return n.ageKey }, false)
	e.stamp = make([]uint32, len(nodes))
	return nil
}

// sortByTime orders nodes by a time key, oldest first or newest first,
// equal times by digest, so no outcome depends on the order of the
// inventory. It sorts a compact copy of the keys: comparisons then touch
// contiguous memory instead of the nodes.
func (e *evaluation) sortByTime(list []int, key func(*node) int64, newestFirst bool) []int {
	type keyed struct {
		time   int64
		digest uint64
		node   int
	}
	keys := make([]keyed, len(list))
	for k, i := range list {
		n := &e.g.nodes[i]
		t := key(n)
		if newestFirst {
			t = -1 - t // reverses the order without overflowing
		}
		keys[k] = keyed{t, n.digestKey, i}
	}
	slices.SortFunc(keys, func(x, y keyed) int {
		if x.time != y.time {
			return cmp.Compare(x.time, y.time)
		}
		if x.digest != y.digest {
			return cmp.Compare(x.digest, y.digest)
		}
		return strings.Compare(e.g.nodes[x.node].a.Digest, e.g.nodes[y.node].a.Digest)
	})
	out := make([]int, len(keys))
	for k := range keys {
		out[k] = keys[k].node
	}
	return out
}

// DescribeTags renders tags for a message: " (a, b)" or " (untagged)".
func DescribeTags(tags []string) string {
	if len(tags) == 0 {
		return " (untagged)"
	}
	return " (" + strings.Join(tags, ", ") + ")"
}

// applyRules runs AWS's algorithm over the candidates. Candidates are sorted
// newest first once; each rule is then two linear passes, so a policy of r
// rules over n images costs O(n log n + r·n).
func (e *evaluation) applyRules() {
	e.rules = e.p.canonical().Rules
	nodes := e.g.nodes
	byClass := map[string][]int{}
	for i := range nodes {
		if e.roles[i] == roleCandidate && !nodes[i].a.Restoring {
			class := nodes[i].a.StorageClass
			if class == "" {
				class = StorageClassStandard
			}
			byClass[class] = append(byClass[class], i)
		}
	}
	newest := map[string][]int{}
	// Each rule reads every candidate's tags: gather them once in a compact
	// array instead of reaching through each artifact ten times.
	tagsOf := map[string][][]string{}
	for class, list := range byClass {
		newest[class] = e.sortByTime(list, func(n *node) int64 { return n.pushKey }, true)
		tags := make([][]string, len(list))
		for k, i := range list {
			tags[k] = nodes[i].a.Tags
		}
		tagsOf[class] = tags
	}

	now := e.opts.Now.UTC()
	claimed := make([]bool, len(nodes))
	matched := make([]bool, len(nodes))
	for ri, r := range e.rules {
		sel := newSelector(r.Selection)
		class := r.Selection.storageClass()
		// Match tags in inventory order, which reads the artifacts
		// sequentially; then walk the candidates newest first.
		tags := tagsOf[class]
		for k, i := range byClass[class] {
			matched[i] = sel.matches(tags[k])
		}
		// "Older than N days": before now minus N days of 24 hours (days in
		// UTC have no daylight-saving jumps). AddDate, unlike a Duration,
		// cannot overflow for large N.
		cutoff := timeKey(now.AddDate(0, 0, -r.Selection.CountNumber))
		selected := 0
		for _, i := range newest[class] {
			if !matched[i] {
				continue
			}
			selected++
			n := &nodes[i]
			var marked bool
			switch r.Selection.CountType {
			case CountTypeImageCountMoreThan:
				marked = selected > r.Selection.CountNumber
			case CountTypeSinceImagePushed:
				marked = n.pushKey < cutoff
			case CountTypeSinceImagePulled:
				marked = n.pullKey < cutoff
			case CountTypeSinceImageTransitioned:
				// An archived image with no recorded archive time is never
				// judged old: a missing field must not delete anything.
				marked = !n.a.ArchivedAt.IsZero() && timeKey(n.a.ArchivedAt) < cutoff
			}
			if marked && !claimed[i] {
				e.ruleOf[i] = ri
			}
			if !claimed[i] {
				e.selectBy[i] = ri
			}
			claimed[i] = true
		}
	}
}

func (e *evaluation) plan() *Plan {
	nodes := e.g.nodes
	plan := &Plan{EvaluatedAt: e.opts.Now, Expired: []Decision{}, Delete: []string{}}

	// Sort out what the rules decided, minus what is protected.
	var expired, transitioned, deletedOrphans []int
	for i := range nodes {
		switch e.roles[i] {
		case roleCandidate:
			ri := e.ruleOf[i]
			if ri < 0 {
				if nodes[i].a.Restoring {
					plan.Protected = append(plan.Protected, ProtectedNote{Digest: nodes[i].a.Digest, Tags: nodes[i].a.Tags, Reason: ReasonRestoring})
				}
				continue
			}
			r := e.rules[ri]
			if e.protected[i] {
				plan.Protected = append(plan.Protected, ProtectedNote{
					Digest: nodes[i].a.Digest, Tags: nodes[i].a.Tags, RulePriority: r.RulePriority, Action: r.Action.Type,
					Reason: fmt.Sprintf("%s; rule %d would %s it", e.why(i), r.RulePriority, r.Action.Type),
				})
				e.ruleOf[i] = -1
				continue
			}
			if r.Action.Type == ActionTransition {
				transitioned = append(transitioned, i)
			} else {
				expired = append(expired, i)
			}
		case roleOrphan:
			if e.opts.DeleteOrphans && !e.protected[i] {
				deletedOrphans = append(deletedOrphans, i)
			} else if e.opts.DeleteOrphans {
				plan.Protected = append(plan.Protected, ProtectedNote{
					Digest: nodes[i].a.Digest, Tags: nodes[i].a.Tags, Reason: e.why(i) + "; kept although its subject is gone",
				})
			}
		}
	}

	// Leftovers of an earlier run go like deleted orphans: they head the
	// deletion of what they reference.
	var finished []int
	isFinish := map[string]bool{}
	for _, d := range e.opts.Finish {
		isFinish[d] = true
	}
	for i := range nodes {
		if isFinish[nodes[i].a.Digest] && e.roles[i] != roleDescendant && !e.protected[i] && e.ruleOf[i] < 0 && !nodes[i].ownTag &&
			!(e.roles[i] == roleOrphan && e.opts.DeleteOrphans) {
			finished = append(finished, i)
		}
	}
	deletedOrphans = append(deletedOrphans, finished...)

	// Keep everything reachable from what stays. Tagged descendants stay:
	// they are released, not cascaded.
	isExpired := make([]bool, len(nodes))
	for _, i := range expired {
		isExpired[i] = true
	}
	for _, i := range deletedOrphans {
		isExpired[i] = true
	}
	isTransitioned := make([]bool, len(nodes))
	for _, i := range transitioned {
		isTransitioned[i] = true
	}
	// Descendants no candidate or orphan reaches (referrers naming each
	// other as subjects) are never judged; they stay, and so does what they
	// reference.
	var judged []int
	for i := range nodes {
		if e.roles[i] != roleDescendant {
			judged = append(judged, i)
		}
	}
	reachable := e.reach(judged, nil)
	var activeRoots []int
	for i := range nodes {
		stays := false
		switch e.roles[i] {
		case roleCandidate:
			stays = !isExpired[i] && !isTransitioned[i]
		case roleOrphan:
			stays = !isExpired[i]
		case roleDescendant:
			stays = nodes[i].ownTag || !reachable[i]
		}
		if stays || e.protected[i] {
			activeRoots = append(activeRoots, i)
		}
	}
	keptActive := e.reach(activeRoots, nil)
	keptAtAll := e.reach(transitioned, keptActive) // transitioned artifacts are not deleted either
	for i, ok := range keptActive {
		if ok {
			keptAtAll[i] = true
		}
	}

	// Delete what expired artifacts reach and nothing kept reaches.
	var roots []int
	roots = append(roots, expired...)
	roots = append(roots, deletedOrphans...)
	deleted := e.reach(roots, keptAtAll)

	// Transition what transitioned artifacts reach, unless something active
	// (or something deleted) reaches it.
	blocked := slices.Clone(keptActive)
	for i, ok := range deleted {
		if ok {
			blocked[i] = true
		}
	}

	expired, transitioned = e.inAgeOrder(expired), e.inAgeOrder(transitioned)
	plan.Expired = make([]Decision, 0, len(expired))
	for _, i := range expired {
		plan.Expired = append(plan.Expired, e.decision(i, e.cascade(i, deleted)))
	}
	archived := e.reach(transitioned, blocked)
	for _, i := range transitioned {
		plan.Transitioned = append(plan.Transitioned, e.decision(i, e.cascade(i, archived)))
	}

	isFinished := make([]bool, len(nodes))
	for _, i := range finished {
		isFinished[i] = true
	}
	e.orphans(plan, deletedOrphans, deleted)
	// A leftover that is an orphan too is listed once, as finished.
	plan.Orphans = slices.DeleteFunc(plan.Orphans, func(o Orphan) bool { return isFinished[e.g.index[o.Digest]] })
	for _, i := range e.inAgeOrder(finished) {
		a := nodes[i].a
		plan.Finished = append(plan.Finished, Orphan{Digest: a.Digest, Tags: a.Tags, Subjects: nodes[i].subjects, Size: a.Size, Deleted: true, Cascade: e.cascade(i, deleted)})
	}
	e.notes(plan, deleted, keptActive)
	for _, i := range e.byAge {
		if e.roles[i] == roleCandidate && !deleted[i] && !isTransitioned[i] {
			k := Kept{Digest: nodes[i].a.Digest}
			if ri := e.selectBy[i]; ri >= 0 {
				k.RulePriority = e.rules[ri].RulePriority
			}
			plan.Kept = append(plan.Kept, k)
		}
	}

	order := e.deletionOrder(deleted)
	plan.Delete = make([]string, len(order))
	// An index whose size ECR reports already stands for its platform
	// images: their sizes are not counted a second time.
	covered := make([]bool, len(nodes))
	for _, i := range order {
		if nodes[i].a.SizeIncludesChildren {
			for _, ed := range nodes[i].out {
				if ed.kind == CascadeChild {
					covered[ed.to] = true
				}
			}
		}
	}
	for k, i := range order {
		plan.Delete[k] = nodes[i].a.Digest
		if covered[i] {
			continue
		}
		if size := nodes[i].a.Size; size > 0 {
			plan.BytesReclaimed += size
		} else {
			plan.UnknownSizes++
		}
	}

	c := &plan.Counts
	c.Artifacts = len(nodes)
	for i := range nodes {
		switch e.roles[i] {
		case roleCandidate:
			c.Candidates++
		case roleDescendant:
			c.Descendants++
		case roleOrphan:
			c.Orphans++
		}
	}
	c.Expired, c.Transitioned = len(plan.Expired), len(plan.Transitioned)
	c.Kept = c.Candidates - c.Expired - c.Transitioned
	c.Deleted = len(plan.Delete)
	c.Retained = c.Artifacts - c.Deleted
	return plan
}

// inAgeOrder returns the nodes of list, oldest first.
func (e *evaluation) inAgeOrder(list []int) []int {
	member := make([]bool, len(e.g.nodes))
	for _, i := range list {
		member[i] = true
	}
	out := make([]int, 0, len(list))
	for _, i := range e.byAge {
		if member[i] {
			out = append(out, i)
		}
	}
	return out
}

// reach marks every node reachable from roots (roots included), never
// entering a node marked in stop.
func (e *evaluation) reach(roots []int, stop []bool) []bool {
	seen := make([]bool, len(e.g.nodes))
	stack := make([]int, 0, len(roots))
	for _, r := range roots {
		if !seen[r] && (stop == nil || !stop[r]) {
			seen[r] = true
			stack = append(stack, r)
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, ed := range e.g.nodes[i].out {
			if !seen[ed.to] && (stop == nil || !stop[ed.to]) {
				seen[ed.to] = true
				stack = append(stack, ed.to)
			}
		}
	}
	return seen
}

// cascade lists, breadth first, the descendants of root inside the set
// "within", each once, with the edge that reached it.
func (e *evaluation) cascade(root int, within []bool) []Cascaded {
	if len(e.g.nodes[root].out) == 0 {
		return nil
	}
	var out []Cascaded
	e.generation++
	e.stamp[root] = e.generation
	queue := append(e.queue[:0], root)
	for head := 0; head < len(queue); head++ {
		i := queue[head]
		for _, ed := range e.g.nodes[i].out {
			if e.stamp[ed.to] == e.generation || !within[ed.to] {
				continue
			}
			e.stamp[ed.to] = e.generation
			queue = append(queue, ed.to)
			a := e.g.nodes[ed.to].a
			out = append(out, Cascaded{
				Digest: a.Digest, Kind: ed.kind, Parent: e.g.nodes[i].a.Digest,
				Tags: a.Tags, Size: a.Size, MediaType: a.MediaType,
			})
		}
	}
	e.queue = queue
	return out
}

func (e *evaluation) decision(i int, cascade []Cascaded) Decision {
	a := e.g.nodes[i].a
	r := e.rules[e.ruleOf[i]]
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	return Decision{
		Digest: a.Digest, Tags: tags, PushedAt: a.PushedAt,
		AgeDays: int(e.opts.Now.Sub(a.PushedAt) / (24 * time.Hour)),
		Size:    a.Size, MediaType: a.MediaType,
		RulePriority: r.RulePriority, RuleDescription: r.Description, Action: r.Action.Type,
		Cascade: cascade,
	}
}

func (e *evaluation) orphans(plan *Plan, deletedOrphans []int, deleted []bool) {
	isDeleted := map[int]bool{}
	for _, i := range deletedOrphans {
		isDeleted[i] = true
	}
	for i := range e.g.nodes {
		if e.roles[i] != roleOrphan {
			continue
		}
		n := &e.g.nodes[i]
		o := Orphan{Digest: n.a.Digest, Tags: n.a.Tags, Subjects: n.subjects, Size: n.a.Size, Deleted: isDeleted[i]}
		if o.Deleted {
			o.Cascade = e.cascade(i, deleted)
		}
		plan.Orphans = append(plan.Orphans, o)
	}
	slices.SortFunc(plan.Orphans, func(a, b Orphan) int { return strings.Compare(a.Digest, b.Digest) })
}

// why is the reason a protected artifact is kept.
func (e *evaluation) why(i int) string {
	if r, ok := e.reason[i]; ok {
		return r
	}
	return "protected"
}

// notes records the protected and tagged descendants that survive although
// an artifact referencing them is deleted.
func (e *evaluation) notes(plan *Plan, deleted, keptActive []bool) {
	parentsDeleted := map[int][]string{}
	for i := range e.g.nodes {
		if !deleted[i] {
			continue
		}
		for _, ed := range e.g.nodes[i].out {
			if !deleted[ed.to] {
				parentsDeleted[ed.to] = append(parentsDeleted[ed.to], e.g.nodes[i].a.Digest)
			}
		}
	}
	for i, parents := range parentsDeleted {
		slices.Sort(parents)
		a := e.g.nodes[i].a
		switch {
		case e.protected[i]:
			plan.Protected = append(plan.Protected, ProtectedNote{
				Digest: a.Digest, Tags: a.Tags,
				Reason: e.why(i) + "; kept although " + strings.Join(parents, ", ") + " is deleted",
			})
		case e.roles[i] == roleDescendant && e.g.nodes[i].ownTag:
			plan.Released = append(plan.Released, Released{Digest: a.Digest, Tags: a.Tags, Parents: parents})
		}
	}
	slices.SortFunc(plan.Protected, func(a, b ProtectedNote) int { return strings.Compare(a.Digest, b.Digest) })
	slices.SortFunc(plan.Released, func(a, b Released) int { return strings.Compare(a.Digest, b.Digest) })
}

// deletionOrder lists the deleted digests image by image: a top-level
// artifact or orphan (oldest first), then at once its children and
// referrers, level by level, so that a run stopped midway leaves at most the
// descendants of one image behind. An artifact always comes after every
// deleted artifact referencing it (a child shared by two expired indexes
// goes with the second).
func (e *evaluation) deletionOrder(deleted []bool) []int {
	nodes := e.g.nodes
	indegree := make([]int, len(nodes))
	for i := range nodes {
		if !deleted[i] {
			continue
		}
		for _, ed := range nodes[i].out {
			if deleted[ed.to] {
				indegree[ed.to]++
			}
		}
	}
	var roots []int
	for _, i := range e.byAge {
		if deleted[i] && indegree[i] == 0 {
			roots = append(roots, i)
		}
	}
	out := make([]int, 0, len(roots))
	emitted := make([]bool, len(nodes))
	for _, r := range roots {
		group := []int{r}
		for len(group) > 0 {
			i := group[0]
			group = group[1:]
			emitted[i] = true
			out = append(out, i)
			for _, ed := range nodes[i].out {
				if deleted[ed.to] {
					indegree[ed.to]--
					if indegree[ed.to] == 0 {
						group = append(group, ed.to)
					}
				}
			}
		}
	}
	// Referrers that name each other as subjects form a cycle with no safe
	// order; delete them last, by digest.
	var rest []int
	for i := range nodes {
		if deleted[i] && !emitted[i] {
			rest = append(rest, i)
		}
	}
	slices.SortFunc(rest, func(x, y int) int { return nodes[x].compareDigest(&nodes[y]) })
	return append(out, rest...)
}
