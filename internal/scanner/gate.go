package scanner

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// FailOnNone disables the gate.
const FailOnNone = "none"

// Threshold is a parsed fail-on: the least severe rated severity that fails
// (everything more severe fails too) and whether UNKNOWN fails. UNKNOWN is
// not on the ladder LOW < MEDIUM < HIGH < CRITICAL: an unrated finding is not
// "less severe than LOW", so it fails only when listed.
type Threshold struct {
	// Min is the least severe rated severity that fails, "" when only
	// UNKNOWN (or nothing) is listed.
	Min string
	// Unknown is true when UNKNOWN is listed.
	Unknown bool
	// Disabled is true for fail-on: none.
	Disabled bool
}

// ParseFailOn reads fail-on: severity names (any case, comma-separated
// entries accepted) or "none". A list such as CRITICAL,HIGH means the same as
// HIGH: the gate never passes a finding worse than one it fails on.
func ParseFailOn(failOn []string) (Threshold, error) {
	if len(failOn) == 1 && strings.EqualFold(strings.TrimSpace(failOn[0]), FailOnNone) {
		return Threshold{Disabled: true}, nil
	}
	sevs, err := ParseSeverities(failOn)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Msg = "fail-on: " + e.Msg + ", or none"
		}
		return Threshold{}, err
	}
	if len(sevs) == 0 {
		return Threshold{}, invalid("fail-on is empty: list a severity (e.g. HIGH fails on HIGH and CRITICAL) or none")
	}
	var t Threshold
	for _, s := range sevs {
		if s == "UNKNOWN" {
			t.Unknown = true
			continue
		}
		if t.Min == "" || severityRank(s) > severityRank(t.Min) {
			t.Min = s
		}
	}
	return t, nil
}

// Fails reports whether a finding of this severity fails the gate.
func (t Threshold) Fails(severity string) bool {
	switch {
	case t.Disabled:
		return false
	case severity == "UNKNOWN" || !slices.Contains(SeverityNames, severity):
		return t.Unknown
	}
	return t.Min != "" && severityRank(severity) <= severityRank(t.Min)
}

// Severities lists the severities that fail, most severe first.
func (t Threshold) Severities() []string {
	var out []string
	for _, s := range SeverityNames {
		if t.Fails(s) {
			out = append(out, s)
		}
	}
	return out
}

// String is the threshold as the verdict states it: "CRITICAL",
// "HIGH or worse", "HIGH or worse, UNKNOWN", "UNKNOWN" or "none".
func (t Threshold) String() string {
	if t.Disabled {
		return FailOnNone
	}
	var parts []string
	switch t.Min {
	case "":
	case SeverityNames[0]:
		parts = append(parts, t.Min)
	default:
		parts = append(parts, t.Min+" or worse")
	}
	if t.Unknown {
		parts = append(parts, "UNKNOWN")
	}
	return strings.Join(parts, ", ")
}

// Gate decides whether a scan fails, independently of what is reported.
//
// failOn is parsed by ParseFailOn: the gate fails on findings whose severity
// is listed or more severe than the least severe listed one (UNKNOWN only
// when listed), so fail-on: HIGH also fails on CRITICAL. The gate counts
// findings after ignore-unfixed, the ignore file and VEX, but regardless of
// the severity option: with severity=CRITICAL,HIGH and fail-on=MEDIUM a
// MEDIUM finding fails the gate even though no report lists it, and the
// verdict says so.
//
// The verdict is one line, e.g. "failed: 2 CRITICAL, 1 HIGH (fail-on: HIGH or worse)".
func Gate(r *Result, failOn []string) (failed bool, verdict string, err error) {
	t, err := ParseFailOn(failOn)
	if err != nil {
		return false, "", err
	}
	return GateThreshold(r, t)
}

// GateThreshold is Gate with fail-on already parsed.
func GateThreshold(r *Result, t Threshold) (failed bool, verdict string, err error) {
	if t.Disabled {
		return false, fmt.Sprintf("passed: gate disabled (fail-on: %s)", FailOnNone), nil
	}
	label := t.String()
	var counts SeverityCounts
	if r != nil {
		counts, _ = countFindings(r.findings(true))
	}
	var parts, hidden []string
	for _, s := range t.Severities() {
		if c := counts.Get(s); c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, s))
			if r != nil && !slices.Contains(r.Severities, s) {
				hidden = append(hidden, s)
			}
		}
	}
	if len(parts) == 0 {
		return false, fmt.Sprintf("passed: no %s findings (fail-on: %s)", joinOr(t.Severities()), label), nil
	}
	verdict = fmt.Sprintf("failed: %s (fail-on: %s)", strings.Join(parts, ", "), label)
	if len(hidden) > 0 {
		verdict = fmt.Sprintf("failed: %s (fail-on: %s; %s not listed because severity excludes it)",
			strings.Join(parts, ", "), label, strings.Join(hidden, ","))
	}
	return true, verdict, nil
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
