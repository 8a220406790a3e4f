// Package report translates between the runner and plain Go values: stage
// results become step outputs, job-summary markdown, log groups, annotations
// and the CLI's text or JSON. Stages never touch GitHub's environment files;
// they return results implementing Result and log through a Logger.
package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Output is one step output.
type Output struct {
	Name  string
	Value string
}

// Result is what every stage returns.
type Result interface {
	// Outputs are the step outputs, in a stable order.
	Outputs() []Output
	// Summary appends the stage's section of the job summary.
	Summary(md *Markdown)
	// Text writes the CLI's human-readable rendering.
	Text(w io.Writer)
}

// Logger is how stages speak to the person reading the log.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	// Group opens a collapsible log section; call the returned func to close it.
	Group(title string) (end func())
}

// Discard is a Logger that drops everything, for tests and library callers.
type Discard struct{}

func (Discard) Infof(string, ...any) {}
func (Discard) Warnf(string, ...any) {}
func (Discard) Group(string) func()  { return func() {} }

// Redactor replaces registered secrets in everything written through it. It
// is the last line of defence behind masking: even text that reaches a
// writer by mistake never shows a credential.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers a secret, with its base64 and base64url encodings at every
// alignment (a token inside a basic-auth header or a config file is base64),
// as GitHub's runner does for the values it masks. Short values are ignored:
// masking "a" would destroy every log line without protecting anything.
func (r *Redactor) Add(secret string) bool {
	secret = strings.TrimSpace(secret)
	if len(secret) < 4 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.secrets, secret) {
		return false
	}
	// Longest first, so a secret is replaced before a fragment of it.
	for _, s := range append([]string{secret}, EncodedForms(secret)...) {
		if !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	return true
}

// EncodedForms returns the base64 and base64url text that stands for secret
// wherever it sits inside encoded data: for each of the three alignments,
// the characters that depend on the secret's bytes alone. Forms shorter than
// 8 characters are left out (they would match ordinary text).
func EncodedForms(secret string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		// The whole value encoded on its own, padding included.
		if full := enc.EncodeToString([]byte(secret)); len(full) >= 8 && !slices.Contains(out, full) {
			out = append(out, full)
		}
		for shift := range 3 {
			data := append(make([]byte, shift), secret...)
			text := enc.EncodeToString(data)
			// Leading characters hold bits of the bytes before the
			// secret; trailing ones those after it.
			start := (shift*8 + 5) / 6
			end := len(data) / 3 * 4
			if end-start >= 8 && !slices.Contains(out, text[start:end]) {
				out = append(out, text[start:end])
			}
		}
	}
	return out
}

// Redact returns s with every secret replaced by ***.
func (r *Redactor) Redact(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// Writer wraps w so that whatever passes through is redacted. Writes are
// line-buffered so a secret split across two writes is still caught.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &redactingWriter{r: r, w: w} }

type redactingWriter struct {
	mu  sync.Mutex
	r   *Redactor
	w   io.Writer
	buf bytes.Buffer
}

func (rw *redactingWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.buf.Write(p)
	for {
		i := bytes.IndexByte(rw.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := rw.buf.Next(i + 1)
		if _, err := io.WriteString(rw.w, rw.r.Redact(string(line))); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes a pending partial line.
func (rw *redactingWriter) Flush() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.buf.Len() == 0 {
		return nil
	}
	_, err := io.WriteString(rw.w, rw.r.Redact(rw.buf.String()))
	rw.buf.Reset()
	return err
}

// Flush writes out what a writer of this package (redacting, line-guarding)
// still holds of an unfinished line; other writers are left alone.
func Flush(w io.Writer) error {
	switch fw := w.(type) {
	case *redactingWriter:
		return fw.Flush()
	case *lineGuard:
		return fw.Flush()
	}
	return nil
}

// HumanBytes renders a byte count the way people read sizes.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// DisplayPath shows a file the step wrote relative to the working directory
// when it lies inside it, so that an output path resolves the same in the
// Action's container (/github/workspace) and in the steps after it.
func DisplayPath(workDir, p string) string {
	if workDir == "" || p == "" {
		return p
	}
	rel, err := filepath.Rel(workDir, p)
	if err != nil || !filepath.IsLocal(rel) {
		return p
	}
	return rel
}
