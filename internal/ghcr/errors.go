package ghcr

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/registry-actions/registry/internal/report"
)

// Kinds of failure a caller may branch on with errors.Is.
var (
	// ErrNotFound: the owner, package or version does not exist, or the
	// token may not see it (GitHub answers 404 for both).
	ErrNotFound = errors.New("GitHub package not found")
	// ErrForbidden: the token lacks a permission on the package.
	ErrForbidden = errors.New("GitHub denied access to the package")
	// ErrUnauthorized: no token, or GitHub rejected it.
	ErrUnauthorized = errors.New("GitHub token missing or invalid")
	// ErrRateLimited: a rate limit lasts longer than MaxRateLimitWait.
	ErrRateLimited = errors.New("GitHub API rate limit exceeded")
	// ErrNotDeletable: GitHub will not delete the version: a public version
	// with more than 5,000 downloads, or the package's last version.
	ErrNotDeletable = errors.New("GitHub package version cannot be deleted")
)

// Error is the error type of this package. Error() is one line naming what
// failed and what to do; Kind (matched by errors.Is) lets callers reword it.
type Error struct {
	Op        string // "list", "delete" or "look up owner"
	Owner     string
	Package   string
	VersionID int64 // for deletions
	Status    int   // HTTP status GitHub answered
	// GitHubMessage is GitHub's own message, if any.
	GitHubMessage string
	// ResetAt is when the rate limit resets, for ErrRateLimited.
	ResetAt time.Time
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is this error's Kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// statusError explains an unexpected HTTP status of an operation.
func (c *Client) statusError(op, owner, pkg string, r *response) error {
	ghMsg := r.message()
	e := &Error{Op: op, Owner: owner, Package: pkg, VersionID: r.versionID, Status: r.status, GitHubMessage: ghMsg}
	subject := fmt.Sprintf("container package %q", owner+"/"+pkg)
	said := ""
	if ghMsg != "" {
		said = " (GitHub: " + report.Clip(ghMsg, 200) + ")"
	}
	switch {
	case op == opDelete && (strings.Contains(ghMsg, "5000 downloads") || strings.Contains(ghMsg, "5,000 downloads") ||
		strings.Contains(ghMsg, "last version of a package")):
		e.Kind = ErrNotDeletable
		e.Message = fmt.Sprintf("GitHub refused to delete version %d of %s: %s", r.versionID, subject, ghMsg)
	case r.status == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
		if c.token == "" {
			e.Message = "no GitHub token: set the github-token input (its default is ${{ github.token }})"
		} else {
			e.Message = fmt.Sprintf("GitHub rejected the token%s: set the github-token input to a valid token", said)
		}
	case r.status == http.StatusNotFound && op == opDelete:
		e.Kind = ErrNotFound
		e.Message = fmt.Sprintf("GitHub found no version %d of %s%s: it may be deleted already, or the token lacks admin on the package (GitHub then answers 404)", r.versionID, subject, said)
	case r.status == http.StatusNotFound:
		e.Kind = ErrNotFound
		e.Message = fmt.Sprintf("GitHub %s not found%s: check the package name (the image path after ghcr.io/%s/) and its visibility; a private package needs a token with packages: read and access to it", subject, said, owner)
	case r.status == http.StatusForbidden && op == opDelete:
		e.Kind = ErrForbidden
		e.Message = fmt.Sprintf("GitHub refused to delete version %d of %s%s: the token needs admin on the package: in the package settings under \"Manage Actions access\" give this repository the Admin role, or use a personal access token with delete:packages", r.versionID, subject, said)
	case r.status == http.StatusForbidden:
		e.Kind = ErrForbidden
		e.Message = fmt.Sprintf("GitHub denied listing the versions of %s%s: the token needs packages: read (workflow permissions) and access to the package", subject, said)
	case r.status >= 500:
		e.Message = fmt.Sprintf("GitHub API could not %s %s: HTTP %d after %d attempts%s: retry later", opVerb(op), subject, r.status, r.attempts, said)
	default:
		e.Message = fmt.Sprintf("GitHub API could not %s %s: HTTP %d%s", opVerb(op), subject, r.status, said)
	}
	return e
}

func opVerb(op string) string {
	switch op {
	case opList:
		return "list the versions of"
	case opDelete:
		return "delete a version of"
	default:
		return op
	}
}

// rateLimitError reports a rate limit that outlasts the wait bound. The
// operation and package are filled in by withContext.
func rateLimitError(r *response, wait time.Duration, resetAt time.Time, bound time.Duration) *Error {
	e := &Error{Status: r.status, GitHubMessage: r.message(), ResetAt: resetAt, Kind: ErrRateLimited}
	when := ""
	if !resetAt.IsZero() {
		when = fmt.Sprintf("; it resets at %s (in %s)", resetAt.UTC().Format("15:04:05 MST"), time.Until(resetAt).Round(time.Second))
	} else if wait > 0 {
		when = fmt.Sprintf("; GitHub asks to wait %s", wait.Round(time.Second))
	}
	e.Message = fmt.Sprintf("GitHub API rate limit outlasts the %s wait limit%s: run again after that", bound, when)
	return e
}

// withContext names the operation and package in a rate-limit error that
// arose below withPackage, which knows them.
func withContext(err error, op, owner, pkg string) error {
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrRateLimited && e.Op == "" {
		e.Op, e.Owner, e.Package = op, owner, pkg
		subject := fmt.Sprintf("%q", owner)
		if pkg != "" {
			subject = fmt.Sprintf("container package %q", owner+"/"+pkg)
		}
		e.Message = strings.Replace(e.Message, "wait limit", fmt.Sprintf("wait limit to %s %s", opVerb(op), subject), 1)
	}
	return err
}
