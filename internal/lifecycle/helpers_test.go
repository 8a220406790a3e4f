package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"
)

// testNow is the evaluation instant of the table tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// digestOf gives each named test artifact a stable, realistic digest.
func digestOf(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// image is a top-level test image pushed age ago.
func image(name string, age time.Duration, tags ...string) Artifact {
	return Artifact{Digest: digestOf(name), Tags: tags, PushedAt: testNow.Add(-age), Size: 1000}
}

func mustParse(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func mustEvaluate(t testing.TB, p *Policy, inv []Artifact, opts EvalOptions) *Plan {
	t.Helper()
	if opts.Now.IsZero() {
		opts.Now = testNow
	}
	plan, err := Evaluate(p, inv, opts)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return plan
}

// names maps the digests of decisions back to the test names of inv.
func names(inv []Artifact, names []string, decisions []Decision) []string {
	byDigest := map[string]string{}
	for i, a := range inv {
		byDigest[a.Digest] = names[i]
	}
	var out []string
	for _, d := range decisions {
		out = append(out, byDigest[d.Digest])
	}
	slices.Sort(out)
	return out
}
