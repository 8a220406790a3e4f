package report

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
)

// Everything printed that did not come from the workflow file — image
// content, registry listings, API and database text, server errors — is
// untrusted. A runner reads every line a step prints and obeys any line that
// starts with "::" (after leading spaces) or "##[" as a workflow command, so a
// platform string or package title carrying "\n::add-mask::…" or
// "\n::error::…" would act on the job. The functions here neutralise such
// strings for each place they end up: a log line, a markdown cell, a step
// output. The sinks in this package apply them to every line they write, so a
// stage that forgets cannot open a hole.

// Line makes an untrusted string safe inside one log line: control and
// bidirectional-override characters are spelled out (a newline becomes the
// two characters \n), and text that could open a workflow command is broken.
func Line(s string) string { return guardCommand(escapeControls(s)) }

// OutputValue makes an untrusted string safe as a single-line step output.
func OutputValue(s string) string { return escapeControls(s) }

// OutputList joins untrusted items into a one-item-per-line step output; an
// item holding a newline cannot forge a second item.
func OutputList(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = escapeControls(it)
	}
	return strings.Join(out, "\n")
}

// guardLines applies guardCommand to every line of a block the program is
// about to print, escaping control characters within each line.
func guardLines(s string) string {
	if !needsGuard(s) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = guardCommand(escapeControls(strings.TrimSuffix(l, "\r")))
	}
	return strings.Join(lines, "\n")
}

func needsGuard(s string) bool {
	if strings.Contains(s, "::") || strings.Contains(s, "##[") {
		return true
	}
	for _, r := range s {
		if r != '\n' && isHostileRune(r) {
			return true
		}
	}
	return false
}

// guardCommand stops a line from being read as a workflow command: a leading
// "::" (after spaces) gets a backslash in front, and "##[" anywhere becomes
// "##\[" (the older command syntax).
func guardCommand(line string) string {
	line = strings.ReplaceAll(line, "##[", `##\[`)
	trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
	if strings.HasPrefix(trimmed, "::") {
		return line[:len(line)-len(trimmed)] + `\` + trimmed
	}
	return line
}

// escapeControls spells out characters that would change how a line reads:
// C0 and C1 controls (newlines, escape sequences that move a terminal's
// cursor), DEL, and Unicode's bidirectional overrides and invisible
// separators. Tabs stay.
func escapeControls(s string) string {
	hostile := false
	for _, r := range s {
		if isHostileRune(r) {
			hostile = true
			break
		}
	}
	if !hostile {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case isHostileRune(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isHostileRune(r rune) bool {
	switch {
	case r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x2028, r == 0x2029, r == 0x200e, r == 0x200f:
		return true
	}
	return false
}

// StopCommands wraps raw third-party output (buildx's progress, Trivy's log)
// that this program passes through unread: the runner is told to ignore
// workflow commands until a token only this process knows, and told to
// resume when end is called. The token is random per call, so the wrapped
// output cannot guess it to resume early.
func StopCommands(w io.Writer) (wrapped io.Writer, end func() error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		// No randomness: fall back to neutralising each line instead.
		return &lineGuard{w: w}, func() error { return nil }
	}
	token := hex.EncodeToString(raw[:])
	fmt.Fprintf(w, "::stop-commands::%s\n", token)
	sw := &stopWriter{w: w, atLineStart: true}
	var once sync.Once
	return sw, func() error {
		var err error
		once.Do(func() {
			sw.mu.Lock()
			defer sw.mu.Unlock()
			if !sw.atLineStart {
				_, err = io.WriteString(w, "\n")
			}
			if _, werr := fmt.Fprintf(w, "::%s::\n", token); err == nil {
				err = werr
			}
		})
		return err
	}
}

// stopWriter passes bytes through and remembers whether the last one ended a
// line, so the resume command starts on a line of its own.
type stopWriter struct {
	mu          sync.Mutex
	w           io.Writer
	atLineStart bool
}

func (s *stopWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.w.Write(p)
	if n > 0 {
		s.atLineStart = p[n-1] == '\n'
	}
	return n, err
}

// lineGuard neutralises every complete line written through it.
type lineGuard struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (g *lineGuard) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.buf = append(g.buf, p...)
	for {
		i := strings.IndexByte(string(g.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := guardLines(string(g.buf[:i]))
		g.buf = g.buf[i+1:]
		if _, err := io.WriteString(g.w, line+"\n"); err != nil {
			return 0, err
		}
	}
}

// Flush writes a pending partial line, neutralised, and flushes the writer
// underneath when it is one of this package's.
func (g *lineGuard) Flush() error {
	g.mu.Lock()
	pending := g.buf
	g.buf = nil
	g.mu.Unlock()
	if len(pending) > 0 {
		if _, err := io.WriteString(g.w, guardLines(string(pending))); err != nil {
			return err
		}
	}
	return Flush(g.w)
}

// GuardLines returns a writer that neutralises every line written through
// it, for third-party output that cannot be wrapped in StopCommands (for
// example when it interleaves with this program's own workflow commands).
func GuardLines(w io.Writer) io.Writer { return &lineGuard{w: w} }
