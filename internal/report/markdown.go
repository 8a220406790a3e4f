package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// StepSummaryLimit is GitHub's limit on one step's job summary.
const StepSummaryLimit = 1 << 20

// Markdown builds GitHub-flavoured markdown for job summaries. Cell and text
// content is escaped so that data (tags, package names, error text) can never
// break a table or inject HTML.
type Markdown struct {
	b strings.Builder
}

// Heading writes a heading of the given level (1–6).
func (m *Markdown) Heading(level int, format string, args ...any) {
	level = max(1, min(level, 6))
	fmt.Fprintf(&m.b, "%s %s\n\n", strings.Repeat("#", level), Escape(fmt.Sprintf(format, args...)))
}

// Paragraph writes raw markdown (the caller escapes data with Escape or Code).
func (m *Markdown) Paragraph(format string, args ...any) {
	fmt.Fprintf(&m.b, format, args...)
	m.b.WriteString("\n\n")
}

// Bullets writes a list; items are raw markdown.
func (m *Markdown) Bullets(items ...string) {
	for _, it := range items {
		m.b.WriteString("- ")
		m.b.WriteString(strings.ReplaceAll(it, "\n", " "))
		m.b.WriteByte('\n')
	}
	m.b.WriteByte('\n')
}

// Table writes a table; cells are raw markdown (escape data with Escape or
// Code) and may not span lines.
func (m *Markdown) Table(header []string, rows [][]string) {
	m.row(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
	}
	m.row(seps)
	for _, r := range rows {
		m.row(r)
	}
	m.b.WriteByte('\n')
}

func (m *Markdown) row(cells []string) {
	m.b.WriteString("|")
	for _, c := range cells {
		c = strings.ReplaceAll(c, "\n", " ")
		m.b.WriteString(" ")
		m.b.WriteString(c)
		m.b.WriteString(" |")
	}
	m.b.WriteByte('\n')
}

// CodeBlock writes a fenced block; the fence grows when the content itself
// holds backticks.
func (m *Markdown) CodeBlock(lang, content string) {
	fence := "```"
	for strings.Contains(content, fence) {
		fence += "`"
	}
	fmt.Fprintf(&m.b, "%s%s\n%s\n%s\n\n", fence, lang, strings.TrimRight(content, "\n"), fence)
}

// Details writes a collapsible section whose body is built by fn.
func (m *Markdown) Details(summary string, fn func(body *Markdown)) {
	var body Markdown
	fn(&body)
	fmt.Fprintf(&m.b, "<details><summary>%s</summary>\n\n%s</details>\n\n", escapeHTML(escapeControls(summary)), body.String())
}

// Append adds another builder's content.
func (m *Markdown) Append(other *Markdown) { m.b.WriteString(other.String()) }

// String returns the markdown written so far.
func (m *Markdown) String() string { return m.b.String() }

// Len is the size in bytes.
func (m *Markdown) Len() int { return m.b.Len() }

// Escape makes text safe in markdown prose and table cells.
func Escape(s string) string {
	r := strings.NewReplacer(
		`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`",
		"[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "#", `\#`, "\n", " ",
	)
	return r.Replace(escapeControls(s))
}

// Code renders s as inline code, safe inside tables. An empty string renders
// as nothing (a pair of backticks with nothing between is no code span: it
// would show as two backticks).
func Code(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	s = escapeControls(strings.ReplaceAll(s, "\n", " "))
	s = strings.ReplaceAll(s, "|", `\|`)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// Link renders a markdown link to an http(s) URL; any other URL (empty,
// javascript:, data:) renders the text alone. URLs come from databases and
// servers: every character that could end the link, split a table cell or
// start HTML is percent-encoded.
func Link(text, url string) string {
	lower := strings.ToLower(url)
	if !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "http://") {
		return Escape(text)
	}
	var b strings.Builder
	for i := 0; i < len(url); i++ {
		c := url[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~:/?#@!$&'*+,;=%[]", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return "[" + Escape(text) + "](" + b.String() + ")"
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Truncate returns md cut to at most limit bytes at a line boundary, closing
// an open <details> and fenced block, with a note saying where the rest is.
func Truncate(md string, limit int, note string) string {
	if len(md) <= limit {
		return md
	}
	tail := "\n\n> [!WARNING]\n> " + note + "\n"
	// Room for closing an open fence and a few nested <details>.
	budget := max(0, limit-len(tail)-256)
	cut := md[:budget]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	if i := strings.LastIndexByte(cut, '\n'); i > 0 {
		cut = cut[:i+1]
	}
	var closing string
	if strings.Count(cut, "\n```")%2 == 1 {
		closing += "```\n"
	}
	if open := strings.Count(cut, "<details>") - strings.Count(cut, "</details>"); open > 0 {
		closing += strings.Repeat("</details>\n", open)
	}
	return cut + closing + tail
}
