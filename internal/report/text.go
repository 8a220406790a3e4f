package report

import (
	"strings"
	"unicode/utf8"
)

// OneLine folds a multi-line message (library errors carry response bodies
// and stack-like chains) into one line: lines are trimmed, blank ones
// dropped, runs of whitespace collapsed and the rest joined with "; ".
// Control characters that would survive as invisible bytes are spelled out,
// so the result is safe to print as one log line or annotation.
func OneLine(s string) string {
	var parts []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			parts = append(parts, escapeControls(line))
		}
	}
	return strings.Join(parts, "; ")
}

// Clip shortens s to at most n bytes on a character boundary, marking the cut
// with an ellipsis.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := s[:n]
	for len(cut) > 0 && !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return cut + "…"
}
