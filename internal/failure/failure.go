// Package failure is the program's one error taxonomy: what the caller got
// wrong (exit 2), what a gate the caller set refused (exit 3), and everything
// else, which is a failure to do the work (exit 1) — a registry outage or a
// 5xx is never the caller's input.
package failure

import (
	"errors"
	"fmt"
)

// Exit codes, documented in the README.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the work could not be done
	ExitInvalid = 2 // bad input or usage
	ExitGate    = 3 // the work ran and a gate said no (scan fail-on, verify, clean max-deletions)
)

// InvalidError marks a problem with what the user gave (exit code 2), as
// opposed to a failure of the work itself.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Invalid wraps err as an input problem; nil stays nil.
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return &InvalidError{Err: err}
}

// Invalidf formats an input problem.
func Invalidf(format string, args ...any) error {
	return &InvalidError{Err: fmt.Errorf(format, args...)}
}

// GateError means the stage ran and a gate the user set said no (scan's
// fail-on, a failed verification, clean's max-deletions). It exits
// differently from "could not run".
type GateError struct{ Verdict string }

func (e *GateError) Error() string { return e.Verdict }

// Gate returns a gate refusal with the verdict a person reads.
func Gate(verdict string) error { return &GateError{Verdict: verdict} }

// Code is the process exit code for err. A gate wins over an input problem
// when both are wrapped, since the work ran.
func Code(err error) int {
	var invalid *InvalidError
	var gate *GateError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &gate):
		return ExitGate
	case errors.As(err, &invalid):
		return ExitInvalid
	}
	return ExitFailed
}

// IsInvalid reports whether err is the caller's input problem.
func IsInvalid(err error) bool {
	var invalid *InvalidError
	return errors.As(err, &invalid)
}
