// Package mdcheck finds what untrusted text did to a job summary: table rows
// whose cells were split by a | from data, raw HTML from data outside code,
// lines that data started, and code fences left open.
package mdcheck

import "strings"

// Problems lists what is wrong with md. A line outside code that starts
// with one of lineStarts (text only data carries) is reported too.
func Problems(md string, lineStarts ...string) []string {
	var bad []string
	cells := -1
	fence := ""
	for _, line := range strings.Split(md, "\n") {
		if f := strings.TrimLeft(line, " "); strings.HasPrefix(f, "```") {
			ticks := f[:len(f)-len(strings.TrimLeft(f, "`"))]
			switch {
			case fence == "":
				fence = ticks
			case ticks == fence && strings.TrimSpace(f) == ticks:
				fence = ""
			}
			continue
		}
		if fence != "" {
			// A fenced block shows its content literally.
			continue
		}
		for _, p := range lineStarts {
			if strings.HasPrefix(line, p) {
				bad = append(bad, "data started a line: "+line)
			}
		}
		plain := withoutCodeSpans(line)
		for _, html := range []string{"<img", "<script"} {
			if strings.Contains(plain, html) {
				bad = append(bad, "raw HTML from data: "+line)
			}
		}
		switch {
		case !strings.HasPrefix(line, "|"):
			cells = -1
		case cells < 0:
			cells = borders(line)
		case borders(line) != cells:
			bad = append(bad, "a row's cells differ from its header's: "+line)
		}
	}
	if fence != "" {
		bad = append(bad, "a fenced block never closed")
	}
	return bad
}

// withoutCodeSpans drops inline code spans (their content is shown
// literally, HTML included), so what remains is what markdown interprets.
func withoutCodeSpans(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' || (i > 0 && line[i-1] == '\\') {
			b.WriteByte(line[i])
			i++
			continue
		}
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		end := strings.Index(line[i+n:], strings.Repeat("`", n))
		if end < 0 {
			b.WriteString(line[i:])
			break
		}
		i += 2*n + end
	}
	return b.String()
}

// borders counts the | that split a table row into cells (a | after an odd
// number of backslashes is escaped).
func borders(row string) int {
	n := 0
	for i := range len(row) {
		if row[i] != '|' {
			continue
		}
		slashes := 0
		for j := i - 1; j >= 0 && row[j] == '\\'; j-- {
			slashes++
		}
		if slashes%2 == 0 {
			n++
		}
	}
	return n
}
