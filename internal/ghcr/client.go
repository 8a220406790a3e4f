// Package ghcr is the clean stage's client for the GitHub Packages REST API
// as ghcr.io needs it: list a container package's versions (each version is
// one manifest: its name is the digest, its tags are the image tags), check
// that the listing is consistent, and delete versions by ID.
//
// The HTTP work is google/go-github's (the Packages services of the
// Organizations and Users APIs, Link paging, primary and secondary rate-limit
// errors with their reset and retry times). What stays here is what
// go-github leaves to its callers: finding which API path serves a package
// (organisation, user, or the token's own user), retrying server errors and
// waiting out rate limits within a bound, pacing requests under GitHub's
// secondary limit, telling a missing permission from a missing version, and
// one-line errors that say what to grant.
package ghcr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v93/github"
)

// DefaultAPIURL is GitHub.com's REST API. In Actions the caller passes
// GITHUB_API_URL, which differs on GitHub Enterprise Server.
const DefaultAPIURL = "https://api.github.com"

const (
	defaultMaxRateLimitWait = 5 * time.Minute
	defaultMaxRetries       = 4
	defaultRetryBaseDelay   = time.Second
	maxRetryDelay           = 30 * time.Second
	// GitHub asks clients hitting a secondary rate limit without
	// Retry-After to wait at least a minute, then longer.
	secondaryLimitWait = time.Minute
	// Bounds the rate-limit loop even when GitHub keeps answering
	// "Retry-After: 0".
	maxRateLimitRetries = 10
	perPage             = 100
	// A listing that changes while it is read is read again this many
	// times before the run gives up.
	listingAttempts = 3
	packageType     = "container"
)

// Options configures a Client.
type Options struct {
	// APIURL is the REST API root; default DefaultAPIURL.
	APIURL string
	// Token authenticates every request (the github-token input). It is
	// sent as a Bearer token and never appears in errors.
	Token      string
	HTTPClient *http.Client
	// MaxRateLimitWait bounds the total time one request may spend waiting
	// for a rate limit to pass (default 5m). Beyond it the request fails
	// with an error saying when the limit resets.
	MaxRateLimitWait time.Duration
	// MaxRetries bounds retries of server errors and network failures
	// (default 4); RetryBaseDelay is the first backoff (default 1s),
	// doubling with jitter.
	MaxRetries     int
	RetryBaseDelay time.Duration
	// PointsPerWindow and PointsWindow pace requests under GitHub's
	// secondary rate limit: 900 points a minute, a GET costing 1 point and
	// a DELETE 5 (the defaults).
	PointsPerWindow int
	PointsWindow    time.Duration
	// UserAgent names the tool; GitHub requires one.
	UserAgent string
}

// Client talks to the GitHub Packages REST API. It is safe for concurrent use.
type Client struct {
	gh         *github.Client
	token      string
	maxWait    time.Duration
	maxRetries int
	baseDelay  time.Duration

	mu        sync.Mutex
	owners    map[string]ownerKind // by lower-cased owner
	paths     map[string]path      // package key -> path that answered
	viewer    string               // login of the token's user, once known
	viewerErr error
}

type ownerKind int

const (
	ownerUnknown ownerKind = iota
	ownerOrganization
	ownerUser
)

// path is where a package is served: /orgs/{owner}/…, /users/{owner}/… or
// the token user's own /user/….
type path int

const (
	pathOrg path = iota
	pathUser
	pathViewer
)

// New returns a client. It makes no request.
func New(opts Options) (*Client, error) {
	raw := opts.APIURL
	if raw == "" {
		raw = DefaultAPIURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not an http(s) URL", raw)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	paced := *hc
	next := paced.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	paced.Transport = &pacer{next: next, budget: opts.PointsPerWindow, window: opts.PointsWindow}
	userAgent := opts.UserAgent
	if userAgent == "" {
		userAgent = "registry-actions"
	}
	apiURL := base.String() + "/"
	ghOpts := []github.ClientOptionsFunc{github.WithHTTPClient(&paced), github.WithURLs(&apiURL, &apiURL), github.WithUserAgent(userAgent)}
	if opts.Token != "" {
		ghOpts = append(ghOpts, github.WithAuthToken(opts.Token))
	}
	gh, err := github.NewClient(ghOpts...)
	if err != nil {
		return nil, fmt.Errorf("GitHub API client: %w", err)
	}
	c := &Client{
		gh:         gh,
		token:      opts.Token,
		maxWait:    opts.MaxRateLimitWait,
		maxRetries: opts.MaxRetries,
		baseDelay:  opts.RetryBaseDelay,
		owners:     map[string]ownerKind{},
		paths:      map[string]path{},
	}
	if c.maxWait <= 0 {
		c.maxWait = defaultMaxRateLimitWait
	}
	if c.maxRetries <= 0 {
		c.maxRetries = defaultMaxRetries
	}
	if c.baseDelay <= 0 {
		c.baseDelay = defaultRetryBaseDelay
	}
	return c, nil
}

// Version is one version of a container package: one manifest in ghcr.io.
type Version struct {
	ID        int64
	Digest    string // the version's name, e.g. sha256:…
	Tags      []string
	CreatedAt time.Time
	UpdatedAt time.Time
	HTMLURL   string
}

// Listing is a package's versions, read consistently.
type Listing struct {
	Versions []Version
	// VersionCount is the package's version_count, equal before and after
	// the pages were read.
	VersionCount int64
	// Warnings are facts about the listing a reader should know.
	Warnings []string
}

// ListVersions returns every active version of a container package, 100 per
// request following the Link pages, and checks that the package held still
// while it was read: its version_count is read before and after, and must
// equal the number of distinct versions listed, with no version listed twice
// (a deletion during the listing shifts later pages and skips versions; a
// push shifts them the other way and repeats one). A listing that changed is
// read again; one that keeps changing is an ErrInconsistent error, so that
// nothing is planned from it. pkg is the package name, i.e. the image path
// after ghcr.io/<owner>/ (it may contain '/').
func (c *Client) ListVersions(ctx context.Context, owner, pkg string) (*Listing, error) {
	var previous []int64
	var problem string
	for attempt := 1; attempt <= listingAttempts; attempt++ {
		before, err := c.versionCount(ctx, owner, pkg)
		if err != nil {
			return nil, err
		}
		versions, repeated, err := c.listPages(ctx, owner, pkg)
		if err != nil {
			return nil, err
		}
		after, err := c.versionCount(ctx, owner, pkg)
		if err != nil {
			return nil, err
		}
		ids := make([]int64, len(versions))
		for i, v := range versions {
			ids[i] = v.ID
		}
		slices.Sort(ids)
		stable := before == after && repeated == 0
		switch {
		case stable && int64(len(versions)) == before:
			return &Listing{Versions: versions, VersionCount: before}, nil
		case stable && slices.Equal(ids, previous):
			// Two identical listings with a steady count that is not
			// theirs: GitHub counts differently, the listing stands.
			return &Listing{Versions: versions, VersionCount: before, Warnings: []string{fmt.Sprintf(
				"GitHub reports version_count %d for the package but lists %d versions, the same twice in a row: the listing is used", before, len(versions))}}, nil
		}
		previous = ids
		problem = fmt.Sprintf("version_count %d before and %d after, %d distinct versions listed", before, after, len(versions))
		if repeated > 0 {
			problem += fmt.Sprintf(", %d listed twice", repeated)
		}
	}
	return nil, &Error{Op: opList, Owner: owner, Package: pkg, Kind: ErrInconsistent, Message: fmt.Sprintf(
		"GitHub's listing of container package %q changed while it was read, %d times in a row (%s): a push or a deletion is in progress; nothing was deleted: run again when it has finished",
		owner+"/"+pkg, listingAttempts, problem)}
}

// listPages reads every page of the versions list and counts the versions
// a shifting list showed twice (kept once).
func (c *Client) listPages(ctx context.Context, owner, pkg string) ([]Version, int, error) {
	var versions []Version
	seen := map[int64]bool{}
	repeated := 0
	err := c.withPackage(ctx, owner, pkg, opList, 0, func(p path) (*github.Response, error) {
		versions, seen, repeated = nil, map[int64]bool{}, 0
		opt := &github.PackageListOptions{State: github.Ptr("active"), ListOptions: github.ListOptions{PerPage: perPage}}
		pages := map[int]bool{}
		for {
			if pages[opt.Page] {
				return nil, fmt.Errorf("GitHub API: the versions of container package %q link back to page %d, already read", owner+"/"+pkg, opt.Page)
			}
			pages[opt.Page] = true
			var page []*github.PackageVersion
			resp, err := c.call(ctx, func(ctx context.Context) (*github.Response, error) {
				var resp *github.Response
				var err error
				switch p {
				case pathOrg:
					page, resp, err = c.gh.Organizations.PackageGetAllVersions(ctx, owner, packageType, pkg, opt)
				case pathUser:
					page, resp, err = c.userPackageVersions(ctx, owner, pkg, opt)
				default:
					page, resp, err = c.gh.Users.ListPackageVersions(ctx, packageType, pkg, &github.ListPackageVersionsOptions{State: "active", ListOptions: opt.ListOptions})
				}
				return resp, err
			})
			if err != nil {
				return resp, err
			}
			for _, v := range page {
				if seen[v.GetID()] {
					repeated++
					continue
				}
				seen[v.GetID()] = true
				versions = append(versions, versionFrom(v))
			}
			if resp.NextPage == 0 {
				return nil, nil
			}
			opt.Page = resp.NextPage
		}
	})
	return versions, repeated, err
}

// userPackageVersions lists a page of another user's package versions.
// go-github's UsersService.ListUserPackageVersions takes no list options, so
// it would read the first 30 versions only; the request is built here and
// sent through go-github's client (errors, rate limits, Link pages).
func (c *Client) userPackageVersions(ctx context.Context, owner, pkg string, opt *github.PackageListOptions) ([]*github.PackageVersion, *github.Response, error) {
	u := fmt.Sprintf("users/%s/packages/%s/%s/versions?state=active&per_page=%d", url.PathEscape(owner), packageType, url.PathEscape(pkg), opt.PerPage)
	if opt.Page > 0 {
		u += fmt.Sprintf("&page=%d", opt.Page)
	}
	req, err := c.gh.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	var page []*github.PackageVersion
	resp, err := c.gh.Do(req, &page)
	return page, resp, err
}

func versionFrom(v *github.PackageVersion) Version {
	out := Version{ID: v.GetID(), Digest: v.GetName(), CreatedAt: v.GetCreatedAt().Time, UpdatedAt: v.GetUpdatedAt().Time, HTMLURL: v.GetHTMLURL()}
	if m, ok := v.GetMetadata(); ok && m.Container != nil {
		out.Tags = slices.Clone(m.Container.Tags)
	}
	return out
}

// versionCount reads the package's version_count.
func (c *Client) versionCount(ctx context.Context, owner, pkg string) (int64, error) {
	var count int64
	err := c.withPackage(ctx, owner, pkg, opList, 0, func(p path) (*github.Response, error) {
		return c.call(ctx, func(ctx context.Context) (*github.Response, error) {
			var pk *github.Package
			var resp *github.Response
			var err error
			switch p {
			case pathOrg:
				pk, resp, err = c.gh.Organizations.GetPackage(ctx, owner, packageType, pkg)
			case pathUser:
				pk, resp, err = c.gh.Users.GetPackage(ctx, owner, packageType, pkg)
			default:
				pk, resp, err = c.gh.Users.GetPackage(ctx, "", packageType, pkg)
			}
			if err == nil {
				count = pk.GetVersionCount()
			}
			return resp, err
		})
	})
	return count, err
}

// DeleteVersion deletes one version by ID (GitHub keeps it restorable for
// 30 days). A version already gone is not an error. GitHub answers 404 both
// for a version that is gone and for a token whose repository lacks the
// Admin role on the package; the version is then read back: if it is still
// there, the token may not delete it (ErrNoAdmin).
func (c *Client) DeleteVersion(ctx context.Context, owner, pkg string, id int64) error {
	return c.withPackage(ctx, owner, pkg, opDelete, id, func(p path) (*github.Response, error) {
		resp, err := c.call(ctx, func(ctx context.Context) (*github.Response, error) {
			switch p {
			case pathOrg:
				return c.gh.Organizations.PackageDeleteVersion(ctx, owner, packageType, pkg, id)
			case pathUser:
				return c.gh.Users.PackageDeleteVersion(ctx, owner, packageType, pkg, id)
			default:
				return c.gh.Users.PackageDeleteVersion(ctx, "", packageType, pkg, id)
			}
		})
		if statusOf(resp) != http.StatusNotFound {
			return resp, err
		}
		exists, gerr := c.versionExists(ctx, owner, pkg, p, id)
		switch {
		case gerr != nil:
			return nil, gerr
		case exists:
			return nil, c.noAdminError(ctx, owner, pkg, p, id, err)
		default:
			return nil, nil // gone already, or deleted by an attempt whose answer was lost
		}
	})
}

// versionExists reads one version back.
func (c *Client) versionExists(ctx context.Context, owner, pkg string, p path, id int64) (bool, error) {
	resp, err := c.call(ctx, func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		switch p {
		case pathOrg:
			_, resp, err = c.gh.Organizations.PackageGetVersion(ctx, owner, packageType, pkg, id)
		case pathUser:
			_, resp, err = c.gh.Users.PackageGetVersion(ctx, owner, packageType, pkg, id)
		default:
			_, resp, err = c.gh.Users.PackageGetVersion(ctx, "", packageType, pkg, id)
		}
		return resp, err
	})
	switch {
	case err == nil:
		return true, nil
	case statusOf(resp) == http.StatusNotFound:
		return false, nil
	}
	return false, c.explain(opDelete, owner, pkg, id, resp, err)
}

const (
	opList   = "list"
	opDelete = "delete"
	opLookup = "look up owner"
)

// withPackage runs call against the package's API path. Where the owner's
// kind is unknown, or a user's private package is only reachable through
// /user, candidates are tried in turn while GitHub answers 404; the path
// that answers is remembered for the package. call's error with an HTTP
// answer becomes this package's one-line error.
func (c *Client) withPackage(ctx context.Context, owner, pkg, op string, id int64, call func(p path) (*github.Response, error)) error {
	if owner == "" || pkg == "" {
		return fmt.Errorf("GitHub package owner and name are required (got %q and %q)", owner, pkg)
	}
	key := strings.ToLower(owner) + "/" + strings.ToLower(pkg)
	c.mu.Lock()
	known, ok := c.paths[key]
	c.mu.Unlock()
	var candidates []path
	if ok {
		candidates = []path{known}
	} else {
		kind, err := c.ownerKind(ctx, owner)
		if err != nil {
			return c.explain(op, owner, pkg, id, nil, err)
		}
		if kind != ownerUser {
			candidates = append(candidates, pathOrg)
		}
		if kind != ownerOrganization {
			candidates = append(candidates, pathUser, pathViewer)
		}
	}
	var resp *github.Response
	var err error
	for _, p := range candidates {
		if p == pathViewer && !c.isViewer(ctx, owner) {
			// /user/… names the token's own packages: never use it for
			// another owner, whose same-named package it would reach.
			continue
		}
		resp, err = call(p)
		if err == nil {
			c.mu.Lock()
			c.paths[key] = p
			c.mu.Unlock()
			return nil
		}
		if statusOf(resp) != http.StatusNotFound || ok {
			break
		}
	}
	if err == nil {
		// Every path was skipped: only /user could serve it, for another user.
		resp = &github.Response{Response: &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}}}
		err = errors.New("not found")
	}
	return c.explain(op, owner, pkg, id, resp, err)
}

// ownerKind asks GET /users/{owner} whether owner is a user or an
// organisation, once per owner. When GitHub cannot say (other than for a bad
// token), every API path is tried instead.
func (c *Client) ownerKind(ctx context.Context, owner string) (ownerKind, error) {
	key := strings.ToLower(owner)
	c.mu.Lock()
	kind, ok := c.owners[key]
	c.mu.Unlock()
	if ok {
		return kind, nil
	}
	var user *github.User
	resp, err := c.call(ctx, func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		user, resp, err = c.gh.Users.Get(ctx, owner)
		return resp, err
	})
	switch {
	case err == nil:
		switch user.GetType() {
		case "Organization":
			kind = ownerOrganization
		case "User":
			kind = ownerUser
		}
	case errors.Is(err, ErrRateLimited) || ctx.Err() != nil:
		return ownerUnknown, err // the operation it was for names it
	case statusOf(resp) == http.StatusUnauthorized:
		return ownerUnknown, c.explain(opLookup, owner, "", 0, resp, err)
	case statusOf(resp) == http.StatusNotFound:
		return ownerUnknown, &Error{Op: opLookup, Owner: owner, Status: http.StatusNotFound, Kind: ErrNotFound, GitHubMessage: githubMessage(err),
			Message: fmt.Sprintf("GitHub user or organization %q not found: check the owner of the package (the first path segment after ghcr.io/)", owner)}
	}
	c.mu.Lock()
	c.owners[key] = kind
	c.mu.Unlock()
	return kind, nil
}

// isViewer reports whether owner is the user the token belongs to
// (GET /user; installation tokens such as GITHUB_TOKEN have no user).
func (c *Client) isViewer(ctx context.Context, owner string) bool {
	c.mu.Lock()
	viewer, verr := c.viewer, c.viewerErr
	c.mu.Unlock()
	if viewer == "" && verr == nil {
		var user *github.User
		_, err := c.call(ctx, func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			user, resp, err = c.gh.Users.Get(ctx, "")
			return resp, err
		})
		switch {
		case err != nil:
			verr = err
		case user.GetLogin() == "":
			verr = errors.New("no login")
		default:
			viewer = user.GetLogin()
		}
		c.mu.Lock()
		c.viewer, c.viewerErr = viewer, verr
		c.mu.Unlock()
	}
	return verr == nil && strings.EqualFold(viewer, owner)
}

// call runs one go-github request, retrying network failures and server
// errors with backoff and waiting out rate limits (primary: until the
// reset; secondary: Retry-After, else a minute and longer) within
// MaxRateLimitWait. It returns the last answer and error.
func (c *Client) call(ctx context.Context, do func(ctx context.Context) (*github.Response, error)) (*github.Response, error) {
	var waited time.Duration
	retries, limited := 0, 0
	for {
		resp, err := do(ctx)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		if wait, resetAt, ok := rateLimitWait(resp, err, limited, time.Now()); ok {
			limited++
			if limited > maxRateLimitRetries || waited+wait > c.maxWait {
				return resp, rateLimitError(err, wait, resetAt, c.maxWait)
			}
			if err := sleep(ctx, wait); err != nil {
				return resp, err
			}
			waited += wait
			continue
		}
		transient := resp == nil || resp.StatusCode >= 500
		if !transient || retries >= c.maxRetries {
			if transient {
				return resp, &retriesError{err: err, attempts: retries + 1}
			}
			return resp, err
		}
		retries++
		if err := sleep(ctx, c.backoff(retries)); err != nil {
			return resp, err
		}
	}
}

// retriesError is a transient failure that outlasted the retries.
type retriesError struct {
	err      error
	attempts int
}

func (e *retriesError) Error() string { return e.err.Error() }
func (e *retriesError) Unwrap() error { return e.err }

// rateLimitWait decides whether an error is a rate-limit refusal and how
// long to wait before trying again.
func rateLimitWait(resp *github.Response, err error, previous int, now time.Time) (wait time.Duration, resetAt time.Time, limited bool) {
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		resetAt = primary.Rate.Reset.Time
		// The reset time has one-second resolution: wait past it.
		return max(resetAt.Sub(now), 0) + time.Second, resetAt, true
	}
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &secondary) {
		if secondary.RetryAfter != nil {
			return max(*secondary.RetryAfter, 0), time.Time{}, true
		}
		return secondaryLimitWait << min(previous, 4), time.Time{}, true
	}
	// A 429, or a 403 that says so, without the headers go-github reads.
	if s := statusOf(resp); s == http.StatusTooManyRequests || s == http.StatusForbidden && strings.Contains(strings.ToLower(githubMessage(err)), "rate limit") {
		if after, ok := retryAfter(resp.Header, now); ok {
			return after, time.Time{}, true
		}
		return secondaryLimitWait << min(previous, 4), time.Time{}, true
	}
	return 0, time.Time{}, false
}

// retryAfter parses Retry-After, in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 && fmt.Sprint(secs) == v {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func (c *Client) backoff(retry int) time.Duration {
	d := c.baseDelay << min(retry-1, 10)
	d = min(d, maxRetryDelay)
	// Full jitter in [d/2, d): spreads retries of concurrent requests.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func statusOf(resp *github.Response) int {
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}
