package scanner

import (
	"errors"

	"github.com/registry-actions/registry/internal/report"
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
	return report.Clip(report.OneLine(e.Msg), 1000)
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
