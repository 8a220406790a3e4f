package report

import (
	"strings"
	"unicode/utf8"
)

// OneLine folds a multi-line message (library errors carry response bodies,
// advisories wrap their prose) into one line: every run of whitespace,
// newlines included, becomes one space.
// Control characters that would survive as invisible bytes are spelled out,
// so the result is safe to print as one log line or annotation.
func OneLine(s string) string {
	return escapeControls(strings.Join(strings.Fields(s), " "))
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
