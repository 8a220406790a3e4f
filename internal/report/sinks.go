package report

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/sethvargo/go-githubactions"
)

// Actions writes to a GitHub Actions runner: workflow commands on stdout,
// outputs to $GITHUB_OUTPUT, the job summary to $GITHUB_STEP_SUMMARY.
type Actions struct {
	gha     *githubactions.Action
	masker  *githubactions.Action
	out     io.Writer
	getenv  func(string) string
	red     *Redactor
	mu      sync.Mutex
	summary Markdown
}

// NewActions returns a sink writing workflow commands to stdout. getenv
// supplies GITHUB_OUTPUT and GITHUB_STEP_SUMMARY (os.Getenv in production).
func NewActions(stdout io.Writer, getenv func(string) string, red *Redactor) *Actions {
	out := red.Writer(stdout)
	return &Actions{
		gha:    githubactions.New(githubactions.WithWriter(out), githubactions.WithGetenv(getenv)),
		masker: githubactions.New(githubactions.WithWriter(stdout), githubactions.WithGetenv(getenv)),
		out:    out,
		getenv: getenv,
		red:    red,
	}
}

// Mask hides secret in the runner's log and in everything this process writes.
func (a *Actions) Mask(secret string) {
	if a.red.Add(secret) {
		// ::add-mask:: is written straight to the runner: through the
		// redacting writer the secret would already read ***.
		a.masker.AddMask(strings.TrimSpace(secret))
	}
}

// Infof prints a log line. Every line of it is neutralised: text from
// outside the workflow file cannot start a workflow command.
func (a *Actions) Infof(format string, args ...any) {
	io.WriteString(a.out, guardLines(strings.TrimRight(fmt.Sprintf(format, args...), "\n"))+"\n")
}

// Warnf writes a warning annotation. The toolkit escapes line breaks in the
// message; "##[" (the older command syntax, obeyed anywhere in a line) is
// broken here, so a server's error body quoted in it cannot start one.
func (a *Actions) Warnf(format string, args ...any) {
	a.gha.Warningf("%s", guardOldSyntax(fmt.Sprintf(format, args...)))
}

// Errorf writes an error annotation, shown on the run's page.
func (a *Actions) Errorf(format string, args ...any) {
	a.gha.Errorf("%s", guardOldSyntax(fmt.Sprintf(format, args...)))
}

func guardOldSyntax(s string) string { return strings.ReplaceAll(s, "##[", `##\[`) }

func (a *Actions) Group(title string) func() {
	a.gha.Group(title)
	return a.gha.EndGroup
}

// SetOutputs writes step outputs; without $GITHUB_OUTPUT (a local run) it
// says so once instead of failing.
func (a *Actions) SetOutputs(outs []Output) error {
	if a.getenv("GITHUB_OUTPUT") == "" {
		if len(outs) > 0 {
			a.Warnf("GITHUB_OUTPUT is not set: %d step outputs were not written", len(outs))
		}
		return nil
	}
	for _, o := range outs {
		if err := appendFileCommand(a.getenv("GITHUB_OUTPUT"), o.Name, a.red.Redact(o.Value)); err != nil {
			return fmt.Errorf("write step output %s: %w", o.Name, err)
		}
	}
	return nil
}

// AddSummary queues markdown for the job summary; FlushSummary writes it.
func (a *Actions) AddSummary(md *Markdown) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.summary.Append(md)
}

// FlushSummary writes the queued summary once, within GitHub's 1 MiB limit.
func (a *Actions) FlushSummary() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	path := a.getenv("GITHUB_STEP_SUMMARY")
	if path == "" || a.summary.Len() == 0 {
		return nil
	}
	note := "The summary was cut to fit GitHub's 1 MiB limit."
	md := Truncate(a.red.Redact(a.summary.String()), StepSummaryLimit, note)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write job summary: %w", err)
	}
	if _, err := io.WriteString(f, md); err != nil {
		f.Close()
		return fmt.Errorf("write job summary: %w", err)
	}
	a.summary = Markdown{}
	return f.Close()
}

// appendFileCommand appends name=value to a runner file command, choosing a
// heredoc delimiter that cannot occur in the value (the toolkit's fixed
// delimiter could be forged by a value that contains it).
func appendFileCommand(path, name, value string) error {
	delim := "ghadelimiter_registry"
	for i := 0; strings.Contains(value, delim); i++ {
		delim = fmt.Sprintf("ghadelimiter_registry_%d", i)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s<<%s\n%s\n%s\n", name, delim, value, delim)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Console writes for a person at a terminal: progress and warnings on
// stderr, results on stdout.
type Console struct {
	err   io.Writer
	red   *Redactor
	depth int
	mu    sync.Mutex
}

// NewConsole returns a console sink writing logs to stderr.
func NewConsole(stderr io.Writer, red *Redactor) *Console {
	return &Console{err: red.Writer(stderr), red: red}
}

// Mask registers a secret so it is never printed.
func (c *Console) Mask(secret string) { c.red.Add(secret) }

func (c *Console) Infof(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A CLI run inside a workflow's run: step is read by the runner too.
	msg := guardLines(strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
	io.WriteString(c.err, strings.Repeat("  ", c.depth)+msg+"\n")
}

func (c *Console) Warnf(format string, args ...any) {
	c.Infof("warning: "+format, args...)
}

func (c *Console) Group(title string) func() {
	c.Infof("%s", title)
	c.mu.Lock()
	c.depth++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.depth > 0 {
			c.depth--
		}
	}
}

// Close flushes any partial line.
func (c *Console) Close() error { return Flush(c.err) }
