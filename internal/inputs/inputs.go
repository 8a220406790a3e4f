// Package inputs holds the one table of everything a user can set, for the
// Action (action.yml inputs) and the CLI (flags) alike, and parses raw values
// the way docker/* actions do.
//
// The table is the single source of truth: action.yml, the CLI flags and the
// README's tables are generated from or checked against it.
package inputs

import (
	"fmt"
	"slices"
	"strings"
)

// Stage names a unit of work the program can run. Stages chain in the order
// the user gives them.
type Stage string

const (
	Push   Stage = "push"
	Scan   Stage = "scan"
	Sign   Stage = "sign"
	Verify Stage = "verify"
	Clean  Stage = "clean"
)

// Stages lists every stage in the order a chain usually runs them.
func Stages() []Stage { return []Stage{Push, Scan, Sign, Verify, Clean} }

// ParseStage accepts a stage name as a user typed it.
func ParseStage(s string) (Stage, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	for _, st := range Stages() {
		if string(st) == name {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown stage %q: valid stages are %s", s, stageList())
}

// ParseChain parses a comma- or newline-separated list of stages. Each stage
// may appear once; the order is kept.
func ParseChain(s string) ([]Stage, error) {
	items := SplitList(s)
	if len(items) == 0 {
		return nil, fmt.Errorf("input \"stage\" is empty: set it to one of %s, or a comma-separated chain like push,scan,sign", stageList())
	}
	var chain []Stage
	for _, item := range items {
		st, err := ParseStage(item)
		if err != nil {
			return nil, err
		}
		if slices.Contains(chain, st) {
			return nil, fmt.Errorf("stage %q appears twice in %q: list each stage once", st, s)
		}
		chain = append(chain, st)
	}
	return chain, nil
}

func stageList() string {
	var names []string
	for _, st := range Stages() {
		names = append(names, string(st))
	}
	return strings.Join(names, ", ")
}

// Kind is how a raw input string is interpreted.
type Kind int

const (
	String Kind = iota
	List        // newline- or comma-separated
	Lines       // newline-separated only (values may contain commas, e.g. build-args)
	Bool        // "true" / "false"
	Int
	Duration // "30d", "12h", "90m", "1h30m"
)

func (k Kind) String() string {
	switch k {
	case List:
		return "list"
	case Lines:
		return "lines"
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Duration:
		return "duration"
	default:
		return "string"
	}
}

// Input is one row of the table.
type Input struct {
	Name        string
	Description string
	// Default applies when the input is absent or empty, in both front doors.
	Default string
	// ActionDefault, when set, is the default written to action.yml instead
	// of Default, for values only a workflow can supply (e.g. ${{ github.token }}).
	ActionDefault string
	Kind          Kind
	Stages        []Stage
	// Secret values are masked in logs before anything can print them.
	Secret bool
	// Example is a value a user could paste; the README shows it.
	Example string
	// Min and Max bound an Int input (inclusive).
	Min, Max int
}

// UsedBy reports whether the input matters to the given stage.
func (in Input) UsedBy(st Stage) bool { return slices.Contains(in.Stages, st) }

// Lookup returns the table row for name.
func Lookup(name string) (Input, bool) {
	for _, in := range All() {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// ForStages returns the inputs used by any of the given stages, in table order.
func ForStages(stages ...Stage) []Input {
	var out []Input
	for _, in := range All() {
		for _, st := range stages {
			if in.UsedBy(st) {
				out = append(out, in)
				break
			}
		}
	}
	return out
}
