package report

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// Deferred is a Logger for a stage that runs in the background while
// another stage owns the log (a chain's scan reading the local image while
// push uploads it): it keeps every line and group, and Replay writes them in
// order to the real log when the stage's turn comes, so the two stages'
// lines and groups never interleave.
type Deferred struct {
	mu      sync.Mutex
	entries []deferredEntry
}

type deferredEntry struct {
	kind byte // 'i' info, 'w' warning, 'g' group start, 'e' group end
	text string
}

func (d *Deferred) add(e deferredEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entries = append(d.entries, e)
}

func (d *Deferred) Infof(format string, args ...any) {
	d.add(deferredEntry{kind: 'i', text: fmt.Sprintf(format, args...)})
}

func (d *Deferred) Warnf(format string, args ...any) {
	d.add(deferredEntry{kind: 'w', text: fmt.Sprintf(format, args...)})
}

func (d *Deferred) Group(title string) func() {
	d.add(deferredEntry{kind: 'g', text: title})
	return func() { d.add(deferredEntry{kind: 'e'}) }
}

// Replay writes what was logged so far to l, and empties the record.
func (d *Deferred) Replay(l Logger) {
	d.mu.Lock()
	entries := d.entries
	d.entries = nil
	d.mu.Unlock()
	var ends []func()
	for _, e := range entries {
		switch e.kind {
		case 'i':
			l.Infof("%s", e.text)
		case 'w':
			l.Warnf("%s", e.text)
		case 'g':
			ends = append(ends, l.Group(e.text))
		case 'e':
			if n := len(ends); n > 0 {
				ends[n-1]()
				ends = ends[:n-1]
			}
		}
	}
	for i := len(ends) - 1; i >= 0; i-- {
		ends[i]()
	}
}

// Writer is a line writer into the record, for a library's raw log (Trivy's)
// that belongs to the deferred stage; each complete line becomes one line.
func (d *Deferred) Writer() io.Writer { return &deferredWriter{d: d} }

type deferredWriter struct {
	mu  sync.Mutex
	d   *Deferred
	buf []byte
}

func (w *deferredWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.d.add(deferredEntry{kind: 'i', text: string(w.buf[:i])})
		w.buf = w.buf[i+1:]
	}
}

// Redirect is a writer whose destination can change while it is in use:
// Trivy's log is configured once per process, and a scan running beside
// push sends it to that scan's deferred log until the scan's turn comes.
type Redirect struct {
	mu sync.Mutex
	w  io.Writer
}

// NewRedirect writes to w until told otherwise.
func NewRedirect(w io.Writer) *Redirect { return &Redirect{w: w} }

func (r *Redirect) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w.Write(p)
}

// To sends what follows to w; restore sends it back where it went before.
func (r *Redirect) To(w io.Writer) (restore func()) {
	r.mu.Lock()
	prev := r.w
	r.w = w
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.w = prev
			r.mu.Unlock()
		})
	}
}
