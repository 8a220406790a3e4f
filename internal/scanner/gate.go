package scanner

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// FailOnNone disables the gate.
const FailOnNone = "none"

// Gate decides whether a scan fails, independently of what is reported.
//
// failOn lists the severities that fail (exact names, like severity: write
// CRITICAL,HIGH to fail on both), or "none". The gate counts findings after
// ignore-unfixed, the ignore file and VEX, but regardless of the severity
// option: with severity=CRITICAL,HIGH and fail-on=MEDIUM a MEDIUM finding
// fails the gate even though no report lists it, and the verdict says so.
//
// The verdict is one line, e.g. "failed: 2 CRITICAL (fail-on: CRITICAL)".
func Gate(r *Result, failOn []string) (failed bool, verdict string, err error) {
	if len(failOn) == 1 && strings.EqualFold(strings.TrimSpace(failOn[0]), FailOnNone) {
		return false, fmt.Sprintf("passed: gate disabled (fail-on: %s)", FailOnNone), nil
	}
	sevs, err := ParseSeverities(failOn)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Msg = "fail-on: " + e.Msg + ", or none"
		}
		return false, "", err
	}
	if len(sevs) == 0 {
		return false, "", invalid("fail-on is empty: list severities (e.g. CRITICAL,HIGH) or none")
	}
	slices.SortFunc(sevs, func(a, b string) int { return severityRank(a) - severityRank(b) })
	label := strings.Join(sevs, ",")

	var counts SeverityCounts
	if r != nil {
		counts, _ = countFindings(uniqueAcrossImages(r.Images, true))
	}
	var parts, hidden []string
	for _, s := range sevs {
		if c := counts.Get(s); c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, s))
			if r != nil && !slices.Contains(r.Severities, s) {
				hidden = append(hidden, s)
			}
		}
	}
	if len(parts) == 0 {
		return false, fmt.Sprintf("passed: no %s (fail-on: %s)", joinOr(sevs), label), nil
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
