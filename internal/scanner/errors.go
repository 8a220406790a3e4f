package scanner

import (
	"errors"
	"strings"
)

// Kinds of *Error. Test with errors.Is(err, scanner.ErrNoDB).
var (
	ErrInvalidOptions = errors.New("invalid scan options")
	ErrImageNotFound  = errors.New("image not found")
	ErrImageAccess    = errors.New("image cannot be read")
	ErrDBDownload     = errors.New("vulnerability DB download failed")
	ErrNoDB           = errors.New("no vulnerability DB")
	ErrCorruptDB      = errors.New("vulnerability DB is corrupt")
	ErrTimeout        = errors.New("scan timed out")
	ErrScanFailed     = errors.New("scan failed")
	ErrServer         = errors.New("trivy server error")
)

// Error means the scan could not run: no result exists, as opposed to a scan
// that ran and whose gate failed (see Gate). Callers map it to its own exit
// code. Error() is one line that names the fix.
type Error struct {
	Kind error
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	return oneLine(e.Msg)
}

func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// CouldNotRun reports whether err means no scan result exists.
func CouldNotRun(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// oneLine flattens multi-line library errors (registries put response bodies
// in them) so the message fits one log line and one annotation.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 1000
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
