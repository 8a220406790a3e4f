// Package ghcr is a client for the GitHub Packages REST API as the clean stage
// needs it for ghcr.io: list a container package's versions (each version is
// one manifest: its name is the digest, its tags are the image tags) and
// delete versions by ID. It follows Link pagination, works for organisation-
// and user-owned packages, waits out rate limits within a bound, retries
// server errors, and turns GitHub's answers into one-line errors that name
// the permission to grant.
package ghcr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/registry-actions/registry/internal/report"
)

// DefaultAPIURL is GitHub.com's REST API. In Actions the caller passes
// GITHUB_API_URL, which differs on GitHub Enterprise Server.
const DefaultAPIURL = "https://api.github.com"

const (
	defaultMaxRateLimitWait = 5 * time.Minute
	defaultMaxRetries       = 4
	defaultRetryBaseDelay   = time.Second
	maxRetryDelay           = 30 * time.Second
	// GitHub asks clients hitting a secondary rate limit without Retry-After
	// to wait at least a minute, then longer.
	secondaryLimitWait = time.Minute
	// Bounds the rate-limit loop even when GitHub keeps answering
	// "Retry-After: 0".
	maxRateLimitRetries = 10
	maxBodyBytes        = 32 << 20
	perPage             = 100
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
	// UserAgent names the tool; GitHub requires one.
	UserAgent string
}

// Client talks to the GitHub Packages REST API. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	token      string
	http       *http.Client
	maxWait    time.Duration
	maxRetries int
	baseDelay  time.Duration
	userAgent  string

	mu        sync.Mutex
	owners    map[string]ownerKind // by lower-cased owner
	prefixes  map[string]string    // package key -> path prefix that answered
	viewer    string               // login of the token's user, once known
	viewerErr error
}

type ownerKind int

const (
	ownerUnknown ownerKind = iota
	ownerOrganization
	ownerUser
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
	c := &Client{
		base:       base,
		token:      opts.Token,
		http:       opts.HTTPClient,
		maxWait:    opts.MaxRateLimitWait,
		maxRetries: opts.MaxRetries,
		baseDelay:  opts.RetryBaseDelay,
		userAgent:  opts.UserAgent,
		owners:     map[string]ownerKind{},
		prefixes:   map[string]string{},
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 2 * time.Minute}
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
	if c.userAgent == "" {
		c.userAgent = "registry-actions"
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

type versionJSON struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	HTMLURL   string    `json:"html_url"`
	Metadata  struct {
		Container struct {
			Tags []string `json:"tags"`
		} `json:"container"`
	} `json:"metadata"`
}

// ListVersions returns every active version of a container package, 100 per
// request following Link rel="next". pkg is the package name, i.e. the image
// path after ghcr.io/<owner>/ (it may contain '/').
func (c *Client) ListVersions(ctx context.Context, owner, pkg string) ([]Version, error) {
	var versions []Version
	err := c.withPackage(ctx, owner, pkg, opList, func(prefix string) (*response, error) {
		versions = nil
		next := c.base.String() + prefix + "/versions?per_page=" + strconv.Itoa(perPage) + "&state=active"
		seen := map[string]bool{}
		for next != "" {
			if seen[next] {
				return nil, fmt.Errorf("GitHub API: the versions of container package %q link back to a page already read (%s)", owner+"/"+pkg, redact(next))
			}
			seen[next] = true
			resp, err := c.do(ctx, http.MethodGet, next)
			if err != nil || resp.status != http.StatusOK {
				return resp, err
			}
			var page []versionJSON
			if err := json.Unmarshal(resp.body, &page); err != nil {
				return nil, fmt.Errorf("GitHub API: decode versions of container package %q: %v", owner+"/"+pkg, err)
			}
			for _, v := range page {
				versions = append(versions, Version{
					ID: v.ID, Digest: v.Name, Tags: v.Metadata.Container.Tags,
					CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, HTMLURL: v.HTMLURL,
				})
			}
			if next, err = c.nextLink(resp.header); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return versions, nil
}

// DeleteVersion deletes one version by ID (GitHub keeps it restorable for 30
// days). Deleting a version that a retry already deleted is not an error.
func (c *Client) DeleteVersion(ctx context.Context, owner, pkg string, id int64) error {
	return c.withPackage(ctx, owner, pkg, opDelete, func(prefix string) (*response, error) {
		resp, err := c.do(ctx, http.MethodDelete, c.base.String()+prefix+"/versions/"+strconv.FormatInt(id, 10))
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusNoContent || resp.status == http.StatusOK {
			return nil, nil
		}
		if resp.status == http.StatusNotFound && resp.ambiguous {
			// An earlier attempt failed without an answer; it may well
			// have deleted the version.
			return nil, nil
		}
		resp.versionID = id
		return resp, nil
	})
}

const (
	opList   = "list"
	opDelete = "delete"
	opLookup = "look up owner"
)

// withPackage runs call against the package's API path. Where the owner's
// kind is unknown, or a user's private package is only reachable through
// /user, candidates are tried in turn while GitHub answers 404; the path that
// answers is remembered for the package. call returns a non-nil response for
// an unexpected HTTP status, which becomes the error.
func (c *Client) withPackage(ctx context.Context, owner, pkg, op string, call func(prefix string) (*response, error)) error {
	return withContext(c.tryPackagePaths(ctx, owner, pkg, op, call), op, owner, pkg)
}

func (c *Client) tryPackagePaths(ctx context.Context, owner, pkg, op string, call func(prefix string) (*response, error)) error {
	if owner == "" || pkg == "" {
		return fmt.Errorf("GitHub package owner and name are required (got %q and %q)", owner, pkg)
	}
	key := strings.ToLower(owner) + "/" + strings.ToLower(pkg)
	pkgPath := "/packages/container/" + url.PathEscape(pkg)

	c.mu.Lock()
	known, ok := c.prefixes[key]
	c.mu.Unlock()
	var candidates []string
	if ok {
		candidates = []string{known}
	} else {
		kind, err := c.ownerKind(ctx, owner)
		if err != nil {
			return err
		}
		if kind != ownerUser {
			candidates = append(candidates, "/orgs/"+url.PathEscape(owner)+pkgPath)
		}
		if kind != ownerOrganization {
			candidates = append(candidates, "/users/"+url.PathEscape(owner)+pkgPath, "/user"+pkgPath)
		}
	}

	var last *response
	for _, prefix := range candidates {
		if strings.HasPrefix(prefix, "/user/") && !c.isViewer(ctx, owner) {
			// /user/... names the token's own packages: never use it for
			// another owner, whose same-named package it would reach.
			continue
		}
		resp, err := call(prefix)
		if err != nil {
			return err
		}
		if resp == nil {
			c.mu.Lock()
			c.prefixes[key] = prefix
			c.mu.Unlock()
			return nil
		}
		last = resp
		if resp.status != http.StatusNotFound {
			break
		}
	}
	if last == nil {
		last = &response{status: http.StatusNotFound}
	}
	return c.statusError(op, owner, pkg, last)
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
	resp, err := c.do(ctx, http.MethodGet, c.base.String()+"/users/"+url.PathEscape(owner))
	if err != nil {
		var rateErr *Error
		if errors.As(err, &rateErr) || ctx.Err() != nil {
			return ownerUnknown, err
		}
		return ownerUnknown, nil
	}
	switch resp.status {
	case http.StatusOK:
		var u struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(resp.body, &u) == nil {
			switch u.Type {
			case "Organization":
				kind = ownerOrganization
			case "User":
				kind = ownerUser
			}
		}
	case http.StatusUnauthorized:
		return ownerUnknown, c.statusError(opLookup, owner, "", resp)
	case http.StatusNotFound:
		return ownerUnknown, &Error{Op: opLookup, Owner: owner, Status: resp.status, Kind: ErrNotFound, GitHubMessage: resp.message(),
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
		resp, err := c.do(ctx, http.MethodGet, c.base.String()+"/user")
		switch {
		case err != nil:
			verr = err
		case resp.status != http.StatusOK:
			verr = fmt.Errorf("HTTP %d", resp.status)
		default:
			var u struct {
				Login string `json:"login"`
			}
			if err := json.Unmarshal(resp.body, &u); err != nil || u.Login == "" {
				verr = errors.New("no login")
			}
			viewer = u.Login
		}
		c.mu.Lock()
		c.viewer, c.viewerErr = viewer, verr
		c.mu.Unlock()
	}
	return verr == nil && strings.EqualFold(viewer, owner)
}

// nextLink returns the rel="next" URL of a Link header, "" on the last page.
// It refuses to follow a link to another host, which would receive the token.
func (c *Client) nextLink(h http.Header) (string, error) {
	for _, link := range h.Values("Link") {
		for _, part := range strings.Split(link, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			isNext := false
			for _, p := range strings.Split(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "rel" && strings.Trim(v, `"`) == "next" {
					isNext = true
				}
			}
			if !isNext {
				continue
			}
			next, err := c.base.Parse(strings.Trim(target, "<>"))
			if err != nil {
				return "", fmt.Errorf("GitHub API returned an invalid next-page link: %v", err)
			}
			if next.Scheme != c.base.Scheme || next.Host != c.base.Host {
				return "", fmt.Errorf("GitHub API next-page link points to another host (%s); not following it", next.Host)
			}
			return next.String(), nil
		}
	}
	return "", nil
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
	// ambiguous: an earlier attempt of this request failed without a
	// usable answer (network error, 5xx), so it may have taken effect.
	ambiguous bool
	attempts  int
	versionID int64
}

// message is GitHub's error message from a JSON error body.
func (r *response) message() string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(r.body, &e) == nil {
		return report.OneLine(e.Message)
	}
	return ""
}

// do sends one request, retrying network failures and 5xx with backoff and
// waiting out rate limits (429, or 403 with rate-limit headers) within
// MaxRateLimitWait. Other statuses are returned to the caller.
func (c *Client) do(ctx context.Context, method, target string) (*response, error) {
	var waited time.Duration
	ambiguous := false
	retries, rateLimited := 0, 0
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, target, nil)
		if err != nil {
			return nil, fmt.Errorf("GitHub API request %s %s: %v", method, redact(target), err)
		}
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
		req.Header.Set("User-Agent", c.userAgent)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if retries >= c.maxRetries {
				return nil, fmt.Errorf("GitHub API %s %s failed after %d attempts: %s", method, redact(target), attempt, report.OneLine(unwrapURLError(err).Error()))
			}
			retries++
			ambiguous = true
			if err := sleep(ctx, c.backoff(retries)); err != nil {
				return nil, err
			}
			continue
		}
		body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
		resp.Body.Close()
		r := &response{status: resp.StatusCode, header: resp.Header, body: body, ambiguous: ambiguous, attempts: attempt}
		if readErr != nil && resp.StatusCode < 300 {
			if retries >= c.maxRetries {
				return nil, fmt.Errorf("GitHub API %s %s: reading the answer failed after %d attempts: %v", method, redact(target), attempt, readErr)
			}
			retries++
			ambiguous = true
			if err := sleep(ctx, c.backoff(retries)); err != nil {
				return nil, err
			}
			continue
		}

		if wait, resetAt, limited := rateLimit(r, rateLimited, time.Now()); limited {
			rateLimited++
			if rateLimited > maxRateLimitRetries || waited+wait > c.maxWait {
				return nil, rateLimitError(r, wait, resetAt, c.maxWait)
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			waited += wait
			continue
		}
		if r.status >= 500 && retries < c.maxRetries {
			retries++
			ambiguous = true
			delay := c.backoff(retries)
			if after, ok := retryAfter(r.header, time.Now()); ok && after < maxRetryDelay {
				delay = max(delay, after)
			}
			if err := sleep(ctx, delay); err != nil {
				return nil, err
			}
			continue
		}
		return r, nil
	}
}

// rateLimit decides whether a response is a rate-limit refusal and how long
// to wait before trying again.
func rateLimit(r *response, previous int, now time.Time) (wait time.Duration, resetAt time.Time, limited bool) {
	if r.status != http.StatusTooManyRequests && r.status != http.StatusForbidden {
		return 0, time.Time{}, false
	}
	// Retry-After rules when present (secondary limits, 429); the primary
	// limit's reset time only when the primary limit is what ran out.
	if after, ok := retryAfter(r.header, now); ok {
		return after, time.Time{}, true
	}
	reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
	if r.header.Get("X-RateLimit-Remaining") == "0" && err == nil {
		resetAt = time.Unix(reset, 0)
		// The reset time has one-second resolution: wait past it.
		return max(resetAt.Sub(now), 0) + time.Second, resetAt, true
	}
	if r.status == http.StatusTooManyRequests || strings.Contains(strings.ToLower(r.message()), "rate limit") {
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
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
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

// redact drops the query string: it never holds the token, but keeps messages short.
func redact(target string) string {
	if u, err := url.Parse(target); err == nil {
		u.RawQuery = ""
		return u.String()
	}
	return target
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
