// Package fakegithub is a local server speaking the GitHub REST API's shapes
// for container packages, so that the real HTTP client can be tested against
// paging, permissions, refusals and rate limits without GitHub.
//
// Endpoints:
//
//	GET    /users/{owner}                                   type User or Organization
//	GET    /user                                            the token's user (403 for installation tokens)
//	GET    /orgs/{org}/packages/container/{pkg}             the package, with version_count
//	GET    /users/{user}/packages/container/{pkg}           (likewise for a user's package)
//	GET    /user/packages/container/{pkg}                   (likewise for the token user's package)
//	GET    …/versions                                       per_page (≤100), page, state=active|deleted
//	GET    …/versions/{id}                                  one version
//	DELETE …/versions/{id}                                  204
//	GET    /organizations/{id}/packages/container/{pkg}/versions and
//	GET    /user/{id}/packages/container/{pkg}/versions     where GitHub's Link headers point
//
// Package names containing '/' arrive percent-encoded (%2F). Lists are newest
// first, with Link headers (rel next/last/first/prev) that point, as GitHub's
// do, at /organizations/{id}/… or /user/{id}/… paths. Every response carries
// x-ratelimit-limit/remaining/reset/used/resource; the primary limit is
// counted down per authenticated request and answered with 403 until its
// reset time; the secondary limit (900 points a minute, a GET costing 1 and a
// DELETE 5) is answered with 403 and Retry-After.
//
// GitHub's refusals, worded as GitHub words them: deleting the last tagged
// version of a package (400), deleting a version of a public package with
// more than 5,000 downloads (400), deleting with a token whose repository
// lacks the Admin role on the package (404 "Package not found.", not 403),
// and deleting a user's package with a workflow token (404 likewise: the
// package is listable but not deletable). Tests inject faults (FailNext),
// hide a package (HidePackage), and change the package while a client reads
// it (Before, then DeleteVersions, SetTags or AddVersions).
package fakegithub

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultToken is the token a new server accepts.
const DefaultToken = "ghs_fakeGitHubToken0000000000000000000"

// Route patterns, as used by Count and Before.
const (
	GetOwner            = "GET /users/{owner}"
	GetViewer           = "GET /user"
	GetOrgPackage       = "GET /orgs/{owner}/packages/container/{pkg}"
	GetUserPackage      = "GET /users/{owner}/packages/container/{pkg}"
	GetViewerPackage    = "GET /user/packages/container/{pkg}"
	ListOrgVersions     = "GET /orgs/{owner}/packages/container/{pkg}/versions"
	ListUserVersions    = "GET /users/{owner}/packages/container/{pkg}/versions"
	ListViewerVersions  = "GET /user/packages/container/{pkg}/versions"
	ListOrgVersionsByID = "GET /organizations/{ownerid}/packages/container/{pkg}/versions"
	ListUserVersionsID  = "GET /user/{ownerid}/packages/container/{pkg}/versions"
	GetOrgVersion       = "GET /orgs/{owner}/packages/container/{pkg}/versions/{id}"
	GetUserVersion      = "GET /users/{owner}/packages/container/{pkg}/versions/{id}"
	GetViewerVersion    = "GET /user/packages/container/{pkg}/versions/{id}"
	DeleteOrgVersion    = "DELETE /orgs/{owner}/packages/container/{pkg}/versions/{id}"
	DeleteUserVersion   = "DELETE /users/{owner}/packages/container/{pkg}/versions/{id}"
	DeleteViewerVersion = "DELETE /user/packages/container/{pkg}/versions/{id}"
)

// GitHub's words for its refusals.
const (
	MessageLastTagged     = "You cannot delete the last tagged version of a package. You must delete the package instead."
	MessageTooManyPulls   = "Publicly visible package versions with more than 5000 downloads cannot be deleted. Contact GitHub support for further assistance."
	MessagePackageMissing = "Package not found."
	MessageSecondaryLimit = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID."
	docSecondaryLimit     = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

// Owner kinds, as GitHub's "type" field spells them.
const (
	User         = "User"
	Organization = "Organization"
)

// Version seeds a package version (one manifest).
type Version struct {
	ID        int64 // assigned when zero
	Digest    string
	Tags      []string
	CreatedAt time.Time // default: now
	UpdatedAt time.Time // default: CreatedAt
	Downloads int
}

// Fault is a response the server gives instead of handling a request.
type Fault struct {
	Status     int
	Message    string
	RetryAfter int // seconds; < 0 for no Retry-After header
	// DocumentationURL is the error's documentation_url (GitHub's clients
	// recognise a secondary rate limit by it).
	DocumentationURL string
}

// TooManyRequests is GitHub's 429 for a secondary rate limit, with Retry-After.
func TooManyRequests(retryAfter int) Fault {
	return Fault{Status: http.StatusTooManyRequests, Message: MessageSecondaryLimit, RetryAfter: retryAfter, DocumentationURL: docSecondaryLimit}
}

// SecondaryRateLimit is GitHub's 403 for the secondary (abuse) limits.
func SecondaryRateLimit(retryAfter int) Fault {
	return Fault{Status: http.StatusForbidden, RetryAfter: retryAfter, Message: MessageSecondaryLimit, DocumentationURL: docSecondaryLimit}
}

// ServerError is a 502 as GitHub's front end gives it.
func ServerError() Fault {
	return Fault{Status: http.StatusBadGateway, Message: "Server Error", RetryAfter: -1}
}

type owner struct {
	id       int64
	login    string
	kind     string
	packages map[string]*pkg // by lower-cased name
}

type pkg struct {
	id      int64
	name    string
	private bool
	active  []*Version
	deleted []*Version
	hidden  bool
	noAdmin bool
}

type hook struct {
	route string
	n     int
	fn    func()
}

type spent struct {
	at     time.Time
	points int
}

type pendingFault struct {
	route     string
	fault     Fault
	remaining int
}

// Server is a running fake GitHub API.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	token     string
	viewer    string
	owners    map[string]*owner
	nextID    int64
	counts    map[string]int
	faults    []*pendingFault
	limit     int
	used      int
	resetAt   time.Time
	authTypes map[string]int
	hooks     []hook
	// The secondary limit: points spent in the last window.
	points      int
	pointWindow time.Duration
	spent       []spent
	secondary   int // requests refused by the secondary limit
}

// Start starts a server on 127.0.0.1 and stops it when the test ends. It
// accepts DefaultToken, has no authenticated user (like GITHUB_TOKEN) and a
// primary rate limit of 5,000 requests per hour.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:           t,
		token:       DefaultToken,
		owners:      map[string]*owner{},
		nextID:      1000,
		counts:      map[string]int{},
		limit:       5000,
		resetAt:     time.Now().Add(time.Hour).Truncate(time.Second),
		authTypes:   map[string]int{},
		points:      900,
		pointWindow: time.Minute,
	}
	mux := http.NewServeMux()
	mux.HandleFunc(GetOwner, s.getOwner)
	mux.HandleFunc(GetViewer, s.getViewer)
	for _, route := range []string{GetOrgPackage, GetUserPackage, GetViewerPackage} {
		mux.HandleFunc(route, s.getPackage)
	}
	for _, route := range []string{ListOrgVersions, ListUserVersions, ListViewerVersions, ListOrgVersionsByID, ListUserVersionsID} {
		mux.HandleFunc(route, s.listVersions)
	}
	for _, route := range []string{GetOrgVersion, GetUserVersion, GetViewerVersion} {
		mux.HandleFunc(route, s.getVersion)
	}
	for _, route := range []string{DeleteOrgVersion, DeleteUserVersion, DeleteViewerVersion} {
		mux.HandleFunc(route, s.deleteVersion)
	}
	s.srv = httptest.NewServer(s.middleware(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API root to pass as the API URL (GITHUB_API_URL).
func (s *Server) URL() string { return s.srv.URL }

// SetToken sets the only token the server accepts.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// SetViewer makes the token belong to a user (a personal access token):
// GET /user answers with that login and /user/packages reaches their packages.
func (s *Server) SetViewer(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.viewer = login
}

// SetSecondaryLimit sets the secondary rate limit: points a window (a GET
// costs 1, any other method 5). GitHub's is 900 points a minute.
func (s *Server) SetSecondaryLimit(points int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.points, s.pointWindow = points, window
}

// SecondaryRefusals counts requests answered with a secondary rate limit
// because the client spent too many points (injected faults aside).
func (s *Server) SecondaryRefusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secondary
}

// Before runs fn just before the server handles the n-th request (from 1)
// matching route, e.g. to change the package between two pages of a
// listing. fn runs without the server's lock and may call any method.
func (s *Server) Before(route string, n int, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, hook{route: route, n: n, fn: fn})
}

// SetRateLimit sets the primary rate limit window: limit per window,
// requests remaining now, and when the window resets.
func (s *Server) SetRateLimit(limit, remaining int, resetIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit, s.used = limit, limit-remaining
	s.resetAt = time.Now().Add(resetIn)
}

// AddOwner seeds a user or organization.
func (s *Server) AddOwner(login, kind string) {
	s.t.Helper()
	if kind != User && kind != Organization {
		s.t.Fatalf("fakegithub: owner kind %q (want User or Organization)", kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.owners[strings.ToLower(login)] = &owner{id: 9000 + s.nextID, login: login, kind: kind, packages: map[string]*pkg{}}
}

// AddPackage seeds a container package of an existing owner.
func (s *Server) AddPackage(ownerLogin, name string, private bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.mustOwner(ownerLogin)
	s.nextID++
	o.packages[strings.ToLower(name)] = &pkg{id: 5000 + s.nextID, name: name, private: private}
}

// AddVersions seeds versions of a package and returns their IDs.
func (s *Server) AddVersions(ownerLogin, name string, versions ...Version) []int64 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPackage(ownerLogin, name)
	var ids []int64
	for _, v := range versions {
		if v.ID == 0 {
			s.nextID++
			v.ID = s.nextID
		}
		if v.CreatedAt.IsZero() {
			v.CreatedAt = time.Now()
		}
		if v.UpdatedAt.IsZero() {
			v.UpdatedAt = v.CreatedAt
		}
		v.Tags = slices.Clone(v.Tags)
		stored := v
		p.active = append(p.active, &stored)
		ids = append(ids, v.ID)
	}
	return ids
}

// Versions returns a package's active versions, newest first.
func (s *Server) Versions(ownerLogin, name string) []Version {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneVersions(sortedNewestFirst(s.mustPackage(ownerLogin, name).active))
}

// DeletedVersions returns a package's deleted (restorable) versions.
func (s *Server) DeletedVersions(ownerLogin, name string) []Version {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneVersions(s.mustPackage(ownerLogin, name).deleted)
}

// HidePackage makes every request for the package answer 404, as GitHub does
// when the token may not see it.
func (s *Server) HidePackage(ownerLogin, name string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustPackage(ownerLogin, name).hidden = true
}

// WithoutAdmin makes deletions in the package answer as GitHub does when
// the workflow's repository lacks the Admin role on the package: 404
// "Package not found.", although the package lists fine.
func (s *Server) WithoutAdmin(ownerLogin, name string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustPackage(ownerLogin, name).noAdmin = true
}

// DeleteVersions deletes versions by digest, as someone else would.
func (s *Server) DeleteVersions(ownerLogin, name string, digests ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPackage(ownerLogin, name)
	for _, d := range digests {
		if i := slices.IndexFunc(p.active, func(v *Version) bool { return v.Digest == d }); i >= 0 {
			p.deleted = append(p.deleted, p.active[i])
			p.active = slices.Delete(p.active, i, i+1)
		}
	}
}

// SetTags sets the tags of the version of a digest (a tag moved onto it or
// away from it), as a push would.
func (s *Server) SetTags(ownerLogin, name, digest string, tags ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPackage(ownerLogin, name)
	for _, v := range p.active {
		if v.Digest == digest {
			v.Tags = slices.Clone(tags)
			v.UpdatedAt = time.Now()
		}
	}
}

// FailNext answers the next n requests matching route (a route constant,
// "" for any) with f; n < 0 means all of them. Faults queue in order.
func (s *Server) FailNext(route string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &pendingFault{route: route, fault: f, remaining: n})
}

// Count is the number of requests received for a route (faulted ones included).
func (s *Server) Count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[route]
}

// Counts returns every route's request count; unmatched requests count under "".
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// AuthSchemes counts the Authorization schemes received ("Bearer", "token", "" for none).
func (s *Server) AuthSchemes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.authTypes))
	for k, v := range s.authTypes {
		out[k] = v
	}
	return out
}

func (s *Server) mustOwner(login string) *owner {
	s.t.Helper()
	o, ok := s.owners[strings.ToLower(login)]
	if !ok {
		s.t.Fatalf("fakegithub: no owner %q (AddOwner first)", login)
	}
	return o
}

func (s *Server) mustPackage(ownerLogin, name string) *pkg {
	s.t.Helper()
	p, ok := s.mustOwner(ownerLogin).packages[strings.ToLower(name)]
	if !ok {
		s.t.Fatalf("fakegithub: no package %q of %q (AddPackage first)", name, ownerLogin)
	}
	return p
}

// middleware counts requests, checks the token, applies the rate limit and
// injected faults, and sets the rate-limit headers every answer carries.
func (s *Server) middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, route := mux.Handler(r)
		s.mu.Lock()
		s.counts[route]++
		var run []func()
		for _, h := range s.hooks {
			if h.route == route && h.n == s.counts[route] {
				run = append(run, h.fn)
			}
		}
		if len(run) > 0 {
			s.mu.Unlock()
			for _, fn := range run {
				fn()
			}
			s.mu.Lock()
		}
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		s.authTypes[scheme]++
		now := time.Now()
		if !now.Before(s.resetAt) {
			s.used = 0
			s.resetAt = now.Add(time.Hour).Truncate(time.Second)
		}
		authenticated := token != "" && (scheme == "Bearer" || scheme == "token")
		if authenticated && token != s.token {
			s.setRateHeaders(w)
			s.mu.Unlock()
			writeJSONError(w, http.StatusUnauthorized, "Bad credentials", "https://docs.github.com/rest")
			return
		}
		if !authenticated && route != GetOwner {
			s.setRateHeaders(w)
			s.mu.Unlock()
			writeJSONError(w, http.StatusUnauthorized, "Requires authentication", "https://docs.github.com/rest")
			return
		}
		if f := s.takeFault(route); f != nil {
			s.setRateHeaders(w)
			s.mu.Unlock()
			if f.RetryAfter >= 0 {
				w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
			}
			doc := f.DocumentationURL
			if doc == "" {
				doc = "https://docs.github.com/rest"
			}
			writeJSONError(w, f.Status, f.Message, doc)
			return
		}
		if s.used >= s.limit {
			s.setRateHeaders(w)
			s.mu.Unlock()
			writeJSONError(w, http.StatusForbidden, "API rate limit exceeded for installation ID 1.", "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting")
			return
		}
		if wait, ok := s.spend(now, r.Method); !ok {
			s.secondary++
			s.setRateHeaders(w)
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeJSONError(w, http.StatusForbidden, MessageSecondaryLimit, docSecondaryLimit)
			return
		}
		s.used++
		s.setRateHeaders(w)
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

// spend charges a request's points to the secondary limit, or says how
// long until enough points are free.
func (s *Server) spend(now time.Time, method string) (time.Duration, bool) {
	if s.points <= 0 {
		return 0, true
	}
	cost := 5
	if method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions {
		cost = 1
	}
	keep := s.spent[:0]
	used := 0
	for _, sp := range s.spent {
		if now.Sub(sp.at) < s.pointWindow {
			keep = append(keep, sp)
			used += sp.points
		}
	}
	s.spent = keep
	if used+cost > s.points {
		return s.pointWindow - now.Sub(s.spent[0].at), false
	}
	s.spent = append(s.spent, spent{at: now, points: cost})
	return 0, true
}

func (s *Server) setRateHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.limit-s.used, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.resetAt.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.used))
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
}

func (s *Server) takeFault(route string) *Fault {
	for i, pf := range s.faults {
		if pf.remaining == 0 || (pf.route != "" && pf.route != route) {
			continue
		}
		if pf.remaining > 0 {
			pf.remaining--
		}
		if pf.remaining == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		f := pf.fault
		return &f
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, message, doc string) {
	writeJSON(w, status, map[string]string{"message": message, "documentation_url": doc, "status": strconv.Itoa(status)})
}

func (s *Server) getOwner(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	o, ok := s.owners[strings.ToLower(r.PathValue("owner"))]
	s.mu.Unlock()
	if !ok {
		writeJSONError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/users/users#get-a-user")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": o.login, "id": len(o.login), "type": o.kind, "html_url": "https://github.com/" + o.login})
}

func (s *Server) getViewer(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	viewer := s.viewer
	s.mu.Unlock()
	if viewer == "" {
		writeJSONError(w, http.StatusForbidden, "Resource not accessible by integration", "https://docs.github.com/rest/users/users#get-the-authenticated-user")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": viewer, "id": len(viewer), "type": User})
}

// lookup resolves the package a request addresses, or answers 404. viaViewer
// is true for /user/… paths (the token user's own packages).
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (o *owner, p *pkg, viaViewer, ok bool) {
	route := r.Pattern
	login := r.PathValue("owner")
	viaViewer = strings.Contains(route, " /user/packages/")
	byID := r.PathValue("ownerid")
	switch {
	case viaViewer:
		login = s.viewer
		if login == "" {
			writeJSONError(w, http.StatusForbidden, "Resource not accessible by integration", "https://docs.github.com/rest/packages/packages")
			return nil, nil, false, false
		}
	case byID != "":
		for _, cand := range s.owners {
			if strconv.FormatInt(cand.id, 10) == byID {
				login = cand.login
			}
		}
	}
	o, found := s.owners[strings.ToLower(login)]
	wantKind := User
	if strings.Contains(route, " /orgs/") || strings.Contains(route, " /organizations/") {
		wantKind = Organization
	}
	if !found || o.kind != wantKind {
		writeJSONError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/packages/packages")
		return nil, nil, false, false
	}
	p, found = o.packages[strings.ToLower(r.PathValue("pkg"))]
	if !found || p.hidden {
		writeJSONError(w, http.StatusNotFound, MessagePackageMissing, "https://docs.github.com/rest/packages/packages")
		return nil, nil, false, false
	}
	return o, p, viaViewer, true
}

func (s *Server) getPackage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, p, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	visibility := "public"
	if p.private {
		visibility = "private"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": p.id, "name": p.name, "package_type": "container", "visibility": visibility,
		"version_count": len(p.active),
		"owner":         map[string]any{"login": o.login, "id": o.id, "type": o.kind},
		"url":           fmt.Sprintf("http://%s/%s/%s/packages/container/%s", r.Host, ownerPath(o), o.login, escape(p.name)),
		"html_url":      fmt.Sprintf("https://github.com/%s/%s/packages/container/package/%s", ownerPath(o), o.login, escape(p.name)),
	})
}

func ownerPath(o *owner) string {
	if o.kind == Organization {
		return "orgs"
	}
	return "users"
}

type versionJSON struct {
	ID             int64    `json:"id"`
	Name           string   `json:"name"`
	URL            string   `json:"url"`
	PackageHTMLURL string   `json:"package_html_url"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
	HTMLURL        string   `json:"html_url"`
	Metadata       metadata `json:"metadata"`
}

type metadata struct {
	PackageType string    `json:"package_type"`
	Container   container `json:"container"`
}

type container struct {
	Tags []string `json:"tags"`
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, p, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	perPage := 30
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSONError(w, http.StatusUnprocessableEntity, "Invalid per_page", "https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api")
			return
		}
		perPage = min(n, 100)
	}
	pageNo := 1
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSONError(w, http.StatusUnprocessableEntity, "Invalid page", "https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api")
			return
		}
		pageNo = n
	}
	source := p.active
	switch q.Get("state") {
	case "", "active":
	case "deleted":
		source = p.deleted
	default:
		writeJSONError(w, http.StatusUnprocessableEntity, "Invalid state", "https://docs.github.com/rest/packages/packages")
		return
	}
	all := sortedNewestFirst(source)
	last := max((len(all)+perPage-1)/perPage, 1)
	start := min((pageNo-1)*perPage, len(all))
	end := min(start+perPage, len(all))

	// GitHub's links name the owner by id: /organizations/{id}/… for an
	// organization, /user/{id}/… for a user.
	base := fmt.Sprintf("http://%s/user/%d/packages/container/%s/versions", r.Host, o.id, escape(p.name))
	if o.kind == Organization {
		base = fmt.Sprintf("http://%s/organizations/%d/packages/container/%s/versions", r.Host, o.id, escape(p.name))
	}
	link := func(n int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return fmt.Sprintf("<%s?%s>; rel=%q", base, q.Encode(), rel)
	}
	var links []string
	if pageNo > 1 {
		links = append(links, link(min(pageNo-1, last), "prev"))
	}
	if pageNo < last {
		links = append(links, link(pageNo+1, "next"), link(last, "last"))
	}
	if pageNo > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}

	out := make([]versionJSON, 0, end-start)
	for _, v := range all[start:end] {
		out = append(out, versionOf(r, o, p, v))
	}
	writeJSON(w, http.StatusOK, out)
}

func versionOf(r *http.Request, o *owner, p *pkg, v *Version) versionJSON {
	tags := v.Tags
	if tags == nil {
		tags = []string{}
	}
	return versionJSON{
		ID:             v.ID,
		Name:           v.Digest,
		URL:            fmt.Sprintf("http://%s/%s/%s/packages/container/%s/versions/%d", r.Host, ownerPath(o), o.login, escape(p.name), v.ID),
		PackageHTMLURL: fmt.Sprintf("https://github.com/%s/%s/packages/container/package/%s", ownerPath(o), o.login, escape(p.name)),
		CreatedAt:      v.CreatedAt.UTC().Format(time.RFC3339),
		UpdatedAt:      v.UpdatedAt.UTC().Format(time.RFC3339),
		HTMLURL:        fmt.Sprintf("https://github.com/%s/%s/packages/container/%s/%d", ownerPath(o), o.login, escape(p.name), v.ID),
		Metadata:       metadata{PackageType: "container", Container: container{Tags: tags}},
	}
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, p, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if i, ok := activeVersion(w, r, p); ok {
		writeJSON(w, http.StatusOK, versionOf(r, o, p, p.active[i]))
	}
}

// activeVersion finds the active version a request names, or answers 404.
func activeVersion(w http.ResponseWriter, r *http.Request, p *pkg) (int, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	i := slices.IndexFunc(p.active, func(v *Version) bool { return v.ID == id })
	if err != nil || i < 0 {
		writeJSONError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/packages/packages")
		return 0, false
	}
	return i, true
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, p, viaViewer, ok := s.lookup(w, r)
	if !ok {
		return
	}
	// Without the Admin role on the package, and for a user's package
	// with a token that is not that user's, GitHub hides the package from
	// DELETE: 404, as if it did not exist.
	if p.noAdmin || (o.kind == User && !viaViewer && !strings.EqualFold(s.viewer, o.login)) {
		writeJSONError(w, http.StatusNotFound, MessagePackageMissing, "https://docs.github.com/rest/packages/packages#delete-package-version-for-an-organization")
		return
	}
	i, ok := activeVersion(w, r, p)
	if !ok {
		return
	}
	v := p.active[i]
	if !p.private && v.Downloads > 5000 {
		writeJSONError(w, http.StatusBadRequest, MessageTooManyPulls, "https://docs.github.com/rest/packages/packages#delete-package-version-for-an-organization")
		return
	}
	if len(v.Tags) > 0 && !slices.ContainsFunc(p.active, func(o *Version) bool { return o != v && len(o.Tags) > 0 }) {
		writeJSONError(w, http.StatusBadRequest, MessageLastTagged, "https://docs.github.com/rest/packages/packages#delete-package-version-for-an-organization")
		return
	}
	p.active = slices.Delete(p.active, i, i+1)
	p.deleted = append(p.deleted, v)
	w.WriteHeader(http.StatusNoContent)
}

// escape percent-encodes a package name for a URL path ('/' included).
func escape(name string) string { return strings.ReplaceAll(name, "/", "%2F") }

func sortedNewestFirst(vs []*Version) []*Version {
	out := slices.Clone(vs)
	slices.SortStableFunc(out, func(a, b *Version) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out
}

func cloneVersions(vs []*Version) []Version {
	out := make([]Version, len(vs))
	for i, v := range vs {
		out[i] = *v
		out[i].Tags = slices.Clone(v.Tags)
	}
	return out
}
