package ghcr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v93/github"

	"github.com/registry-actions/registry/internal/report"
)

// Kinds of failure a caller may branch on with errors.Is.
var (
	// ErrNotFound: the owner, package or version does not exist, or the
	// token may not see it (GitHub answers 404 for both).
	ErrNotFound = errors.New("GitHub package not found")
	// ErrForbidden: the token lacks a permission on the package.
	ErrForbidden = errors.New("GitHub denied access to the package")
	// ErrNoAdmin: GitHub answered 404 to deleting a version that exists:
	// the workflow's repository lacks the Admin role on the package (or,
	// for a user's package, the token is not that user's).
	ErrNoAdmin = errors.New("the token may not delete versions of the package")
	// ErrUnauthorized: no token, or GitHub rejected it.
	ErrUnauthorized = errors.New("GitHub token missing or invalid")
	// ErrRateLimited: a rate limit lasts longer than MaxRateLimitWait.
	ErrRateLimited = errors.New("GitHub API rate limit exceeded")
	// ErrNotDeletable: GitHub will not delete the version: a public version
	// with more than 5,000 downloads, or the package's last tagged version.
	ErrNotDeletable = errors.New("GitHub package version cannot be deleted")
	// ErrInconsistent: the package changed while it was listed, every time.
	ErrInconsistent = errors.New("GitHub package listing changed while it was read")
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

// githubMessage is GitHub's own message from an error answer.
func githubMessage(err error) string {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return report.OneLine(er.Message)
	}
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		return report.OneLine(rl.Message)
	}
	var ab *github.AbuseRateLimitError
	if errors.As(err, &ab) {
		return report.OneLine(ab.Message)
	}
	return ""
}

// explain turns a failed operation into this package's one-line error.
func (c *Client) explain(op, owner, pkg string, id int64, resp *github.Response, err error) error {
	var e *Error
	if errors.As(err, &e) {
		if e.Op == "" {
			e.Op, e.Owner, e.Package = op, owner, pkg
			if e.Kind == ErrRateLimited {
				subject := fmt.Sprintf("%q", owner)
				if pkg != "" {
					subject = fmt.Sprintf("container package %q", owner+"/"+pkg)
				}
				e.Message = strings.Replace(e.Message, "wait limit", fmt.Sprintf("wait limit to %s %s", opVerb(op), subject), 1)
			}
		}
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	status := statusOf(resp)
	ghMsg := githubMessage(err)
	e = &Error{Op: op, Owner: owner, Package: pkg, VersionID: id, Status: status, GitHubMessage: ghMsg}
	subject := fmt.Sprintf("container package %q", owner+"/"+pkg)
	said := ""
	if ghMsg != "" {
		said = " (GitHub: " + report.Clip(ghMsg, 200) + ")"
	}
	attempts := 1
	var re *retriesError
	if errors.As(err, &re) {
		attempts = re.attempts
	} else if status == 0 {
		return err // not GitHub's answer: already explained
	}
	switch {
	case status == 0:
		e.Message = fmt.Sprintf("GitHub API could not %s %s: %s after %d attempts: check the network and retry later", opVerb(op), subject, report.OneLine(unwrapURLError(err).Error()), attempts)
	case op == opDelete && status == http.StatusBadRequest && strings.Contains(ghMsg, "last tagged version"):
		e.Kind = ErrNotDeletable
		e.Message = fmt.Sprintf("GitHub refused to delete version %d of %s: it is the package's last tagged version (GitHub: %s)", id, subject, report.Clip(ghMsg, 200))
	case op == opDelete && (strings.Contains(ghMsg, "5000 downloads") || strings.Contains(ghMsg, "5,000 downloads")):
		e.Kind = ErrNotDeletable
		e.Message = fmt.Sprintf("GitHub refused to delete version %d of %s: public versions downloaded more than 5,000 times can only be deleted by GitHub Support (GitHub: %s)", id, subject, report.Clip(ghMsg, 200))
	case op == opDelete && strings.Contains(ghMsg, "last version of a package"):
		e.Kind = ErrNotDeletable
		e.Message = fmt.Sprintf("GitHub refused to delete version %d of %s: it is the package's last version (GitHub: %s)", id, subject, report.Clip(ghMsg, 200))
	case status == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
		if c.token == "" {
			e.Message = "no GitHub token: set the github-token input (its default is ${{ github.token }})"
		} else {
			e.Message = fmt.Sprintf("GitHub rejected the token%s: set the github-token input to a valid token", said)
		}
	case status == http.StatusNotFound && op == opDelete:
		e.Kind = ErrNotFound
		e.Message = fmt.Sprintf("GitHub found no version %d of %s%s: it may be deleted already", id, subject, said)
	case status == http.StatusNotFound:
		e.Kind = ErrNotFound
		e.Message = fmt.Sprintf("GitHub %s not found%s: check the package name (the image path after ghcr.io/%s/) and its visibility; a private package needs a token with packages: read and access to it", subject, said, owner)
	case status == http.StatusForbidden && op == opDelete:
		e.Kind = ErrForbidden
		e.Message = fmt.Sprintf("GitHub refused to delete version %d of %s%s: %s", id, subject, said, grantAdmin)
	case status == http.StatusForbidden:
		e.Kind = ErrForbidden
		e.Message = fmt.Sprintf("GitHub denied listing the versions of %s%s: the token needs packages: read (workflow permissions) and access to the package", subject, said)
	case status >= 500:
		e.Message = fmt.Sprintf("GitHub API could not %s %s: HTTP %d after %d attempts%s: retry later", opVerb(op), subject, status, attempts, said)
	default:
		e.Message = fmt.Sprintf("GitHub API could not %s %s: HTTP %d%s", opVerb(op), subject, status, said)
	}
	return e
}

// grantAdmin says how to let a workflow delete package versions.
const grantAdmin = "grant the workflow Admin on the package: in the package settings under \"Manage Actions access\" give this repository the Admin role (and permissions: packages: write), or set github-token to a personal access token with delete:packages"

// noAdminError explains a 404 to deleting a version that exists.
func (c *Client) noAdminError(ctx context.Context, owner, pkg string, p path, id int64, err error) error {
	subject := fmt.Sprintf("container package %q", owner+"/"+pkg)
	why := "the workflow's repository lacks the Admin role on the package"
	if p != pathOrg && !c.isViewer(ctx, owner) {
		why = "a workflow token cannot delete versions of a user's package unless the repository has the Admin role on it"
	}
	return &Error{Op: opDelete, Owner: owner, Package: pkg, VersionID: id, Status: http.StatusNotFound, GitHubMessage: githubMessage(err), Kind: ErrNoAdmin,
		Message: fmt.Sprintf("GitHub answered 404 (%s) to deleting version %d of %s, which it lists: %s: %s", orDefault(githubMessage(err), "Package not found."), id, subject, why, grantAdmin)}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
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
// operation and package are filled in by explain, which knows them.
func rateLimitError(err error, wait time.Duration, resetAt time.Time, bound time.Duration) *Error {
	e := &Error{GitHubMessage: githubMessage(err), ResetAt: resetAt, Kind: ErrRateLimited, Status: http.StatusForbidden}
	when := ""
	if !resetAt.IsZero() {
		when = fmt.Sprintf("; it resets at %s (in %s)", resetAt.UTC().Format("15:04:05 MST"), time.Until(resetAt).Round(time.Second))
	} else if wait > 0 {
		when = fmt.Sprintf("; GitHub asks to wait %s", wait.Round(time.Second))
	}
	e.Message = fmt.Sprintf("GitHub API rate limit outlasts the %s wait limit%s: run again after that", bound, when)
	return e
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
