package inputs

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/registry-actions/registry/internal/failure"
)

func TestSplitListAcceptsNewlinesCommasAndBlanks(t *testing.T) {
	got := SplitList("  a, b\n\nc ,\r\n d ,,\n")
	want := []string{"a", "b", "c", "d"}
	if !slices.Equal(got, want) {
		t.Fatalf("SplitList = %q, want %q", got, want)
	}
	if got := SplitLines("A=1,2\n B=x \n\n"); !slices.Equal(got, []string{"A=1,2", "B=x"}) {
		t.Fatalf("SplitLines = %q", got)
	}
}

func TestMetadataActionTagsAcceptedVerbatim(t *testing.T) {
	// docker/metadata-action's tags output: newline-separated full references.
	out := "ghcr.io/acme/app:1.2.3\nghcr.io/acme/app:1.2\nghcr.io/acme/app:latest\n"
	v := NewValues(map[string]string{"tags": out})
	if got := v.List("tags"); len(got) != 3 || got[2] != "ghcr.io/acme/app:latest" {
		t.Fatalf("tags = %q", got)
	}
}

func TestParseDuration(t *testing.T) {
	cases := map[string]time.Duration{
		"30d":   30 * 24 * time.Hour,
		"12h":   12 * time.Hour,
		"90m":   90 * time.Minute,
		"1h30m": 90 * time.Minute,
		"1d12h": 36 * time.Hour,
		"2w":    14 * 24 * time.Hour,
		" 7D ":  7 * 24 * time.Hour,
	}
	for in, want := range cases {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "7days", "-3d", "d7", "1.5.3h"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want error", bad)
		}
	}
	if got := FormatDuration(7 * 24 * time.Hour); got != "7d" {
		t.Errorf("FormatDuration(7d) = %q", got)
	}
}

func TestBadValuesAreQuotedInOneError(t *testing.T) {
	v := NewValues(map[string]string{"ignore-unfixed": "maybe", "untagged-older-than": "a week", "max-deletions": "lots"})
	v.Bool("ignore-unfixed")
	v.Duration("untagged-older-than")
	v.Int("max-deletions")
	err := v.Err()
	if err == nil {
		t.Fatal("no error for three bad values")
	}
	for _, want := range []string{`input "ignore-unfixed": "maybe" is not a boolean`, `input "untagged-older-than": "a week" is not a duration`, `input "max-deletions": "lots" is not a whole number`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestDefaultsApplyWhenEmpty(t *testing.T) {
	v := NewValues(map[string]string{"fail-on": "  ", "recursive": ""})
	if got := v.List("fail-on"); !slices.Equal(got, []string{"CRITICAL"}) {
		t.Errorf("fail-on default = %q", got)
	}
	if !v.Bool("recursive") {
		t.Error("recursive should default to true")
	}
	if n, ok := v.Int("max-deletions"); !ok || n != 100 {
		t.Errorf("max-deletions default = %d, %v", n, ok)
	}
	if _, ok := v.Int("keep-tagged"); ok {
		t.Error("keep-tagged has no default and must read as unset")
	}
	if v.Err() != nil {
		t.Fatal(v.Err())
	}
}

func TestParseChain(t *testing.T) {
	chain, err := ParseChain("push, scan\nsign")
	if err != nil || !slices.Equal(chain, []Stage{Push, Scan, Sign}) {
		t.Fatalf("ParseChain = %v, %v", chain, err)
	}
	_, err = ParseChain("push,deploy")
	if err == nil || err.Error() != `unknown stage "deploy": valid stages are push, scan, sign, verify, clean` {
		t.Fatalf("unknown stage error = %v", err)
	}
	if _, err := ParseChain("push,push"); err == nil {
		t.Fatal("a repeated stage must be refused")
	}
	if _, err := ParseChain(" "); err == nil {
		t.Fatal("an empty chain must be refused")
	}
}

func TestTableIsWellFormed(t *testing.T) {
	kebab := regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, in := range All() {
		if !kebab.MatchString(in.Name) {
			t.Errorf("input %q is not kebab-case", in.Name)
		}
		if seen[in.Name] {
			t.Errorf("input %q declared twice", in.Name)
		}
		seen[in.Name] = true
		if in.Description == "" || len(in.Stages) == 0 || in.Example == "" {
			t.Errorf("input %q needs a description, stages and an example", in.Name)
		}
		if strings.Contains(in.Description, "|") {
			t.Errorf("input %q: description contains |, which breaks the README table", in.Name)
		}
		v := NewValues(nil)
		switch in.Kind {
		case Bool:
			v.Bool(in.Name)
		case Int:
			v.Int(in.Name)
		case Duration:
			v.Duration(in.Name)
		}
		if err := v.Err(); err != nil {
			t.Errorf("default of %q does not parse: %v", in.Name, err)
		}
	}
	outs := map[string]bool{}
	for _, o := range AllOutputs() {
		if outs[o.Name] || !kebab.MatchString(o.Name) || o.Description == "" || len(o.Stages) == 0 {
			t.Errorf("output %q is malformed or duplicated", o.Name)
		}
		outs[o.Name] = true
	}
}

func TestAnInputMissingFromTheTableIsTheProgramsFailureNotTheCallers(t *testing.T) {
	v := NewValues(map[string]string{"not-an-input": "x"})
	if got := v.String("not-an-input"); got != "" {
		t.Fatalf("unknown input read as %q", got)
	}
	v.Fail(errors.New("input \"timeout\": bad"))
	err := v.Err()
	if err == nil || failure.Code(err) != failure.ExitFailed || !strings.Contains(err.Error(), "bug") {
		t.Fatalf("want a failure (exit 1) reporting a bug, got %v (exit %d)", err, failure.Code(err))
	}
}
