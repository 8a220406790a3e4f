package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// hostile is what an image's platform variant, a tag listed from a registry
// or a package title from a vulnerability DB could carry.
const hostile = "v8\n::add-mask::hunter2\n  ::error title=pwned::owned\r\n##[set-output name=digest]sha256:evil\x1b[2J\u202eexe.txt"

// startsCommand reports whether the runner would read line as a workflow
// command.
func startsCommand(line string) bool {
	t := strings.TrimLeft(line, " \t")
	return strings.HasPrefix(t, "::") || strings.Contains(line, "##[")
}

func TestLineNeutralisesWorkflowCommandsAndControls(t *testing.T) {
	got := Line(hostile)
	if strings.ContainsAny(got, "\n\r\x1b\u202e") {
		t.Fatalf("Line left a control character: %q", got)
	}
	if startsCommand(got) {
		t.Fatalf("Line left a command: %q", got)
	}
	for _, want := range []string{`v8\n::add-mask::hunter2`, `\x1b[2J`, `\u202e`} {
		if !strings.Contains(got, want) {
			t.Errorf("Line(%q) = %q: the escaped text %q should stay readable", hostile, got, want)
		}
	}
	if Line("::error::x") != `\::error::x` || Line("  ::warning::x") != `  \::warning::x` {
		t.Errorf("a leading :: must be broken: %q %q", Line("::error::x"), Line("  ::warning::x"))
	}
	if Line("linux/arm64/v8") != "linux/arm64/v8" || Line("tab\there") != "tab\there" {
		t.Error("ordinary text must pass unchanged")
	}
}

func TestSinksNeverPrintAWorkflowCommandFromData(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GITHUB_OUTPUT": filepath.Join(dir, "out"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "sum")}
	var actionsOut, consoleOut bytes.Buffer
	a := NewActions(&actionsOut, func(k string) string { return env[k] }, &Redactor{})
	c := NewConsole(&consoleOut, &Redactor{})
	for _, l := range []Logger{a, c} {
		l.Infof("pushing platform %s", hostile)
		l.Infof("%s", hostile)
		l.Warnf("platform %s is odd", hostile)
		end := l.Group("push " + hostile)
		end()
	}
	c.Close()
	for name, out := range map[string]string{"actions": actionsOut.String(), "console": consoleOut.String()} {
		for _, line := range strings.Split(out, "\n") {
			if !startsCommand(line) {
				continue
			}
			// The sink's own commands are allowed, with data escaped inside.
			if strings.HasPrefix(line, "::warning::") || strings.HasPrefix(line, "::group::") || line == "::endgroup::" {
				if strings.Contains(line, "##[") && !strings.Contains(line, "%0A") {
					t.Errorf("%s: %q", name, line)
				}
				continue
			}
			t.Errorf("%s sink printed a workflow command from data: %q\nfull output:\n%s", name, line, out)
		}
	}
}

func TestOutputValuesCannotForgeLinesOrItems(t *testing.T) {
	if v := OutputValue("sha256:abc\nevil=1"); strings.Contains(v, "\n") {
		t.Fatalf("single-line output kept a newline: %q", v)
	}
	list := OutputList([]string{"ghcr.io/a/b:v1", "ghcr.io/a/b:v2\nghcr.io/evil/x:1"})
	if n := strings.Count(list, "\n"); n != 1 {
		t.Fatalf("a two-item list became %d lines: %q", n+1, list)
	}
}

func TestMarkdownCellsNeutraliseControls(t *testing.T) {
	var md Markdown
	md.Table([]string{"Platform"}, [][]string{{Escape(hostile)}, {Code(hostile)}})
	md.Details(hostile, func(b *Markdown) { b.Paragraph("x") })
	out := md.String()
	if strings.ContainsAny(out, "\r\x1b\u202e") {
		t.Fatalf("markdown kept a control character: %q", out)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) < 4 || !strings.HasPrefix(rows[2], "| ") || !strings.HasPrefix(rows[3], "| ") {
		t.Fatalf("a cell broke its row:\n%s", out)
	}
}

func TestStopCommandsWrapsThirdPartyOutput(t *testing.T) {
	var out bytes.Buffer
	w, end := StopCommands(&out)
	w.Write([]byte("#1 building\n::error::from the build\npartial"))
	if err := end(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("want start, three lines of output and the resume command, got %q", out.String())
	}
	token, ok := strings.CutPrefix(lines[0], "::stop-commands::")
	if !ok || len(token) < 32 {
		t.Fatalf("no stop-commands with a random token: %q", lines[0])
	}
	if lines[4] != "::"+token+"::" || lines[3] != "partial" {
		t.Fatalf("resume command missing or glued to partial output: %q", out.String())
	}
	// Each call gets its own token.
	var other bytes.Buffer
	StopCommands(&other)
	if strings.Contains(other.String(), token) {
		t.Fatal("stop-commands token reused")
	}
}

func TestOneLineAndClip(t *testing.T) {
	if got := OneLine("GET https://r/v2/x: 500\n  body line one\n\n\tbody   two\r\n"); got != "GET https://r/v2/x: 500 body line one body two" {
		t.Errorf("OneLine = %q", got)
	}
	if got := OneLine("a\x1b[31mred"); got != `a\x1b[31mred` {
		t.Errorf("OneLine kept an escape sequence: %q", got)
	}
	if got := Clip("héllo", 2); got != "h…" {
		t.Errorf("Clip cut inside a character: %q", got)
	}
}

func TestDeferredReplaysLinesAndGroupsInOrder(t *testing.T) {
	var d Deferred
	d.Infof("scanning %d platforms", 2)
	end := d.Group("linux/amd64")
	d.Warnf("old DB")
	end()
	d.Group("left open")
	d.Infof("inside")
	var out bytes.Buffer
	c := NewConsole(&out, &Redactor{})
	d.Replay(c)
	c.Close()
	want := "scanning 2 platforms\nlinux/amd64\n  warning: old DB\nleft open\n  inside\n"
	if out.String() != want {
		t.Fatalf("replayed:\n%q\nwant:\n%q", out.String(), want)
	}
	out.Reset()
	d.Replay(c)
	if out.Len() != 0 {
		t.Fatal("a replay must empty the record")
	}
}
