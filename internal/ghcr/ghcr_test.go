package ghcr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registry-actions/registry/internal/ghcr"
	"github.com/registry-actions/registry/test/fakegithub"
)

// recorder is an http.RoundTripper that keeps the headers of every request
// and can drop the answer to one request after the server handled it.
type recorder struct {
	mu       sync.Mutex
	headers  []http.Header
	dropOnce string // method whose first answer is lost
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	drop := r.dropOnce != "" && req.Method == r.dropOnce
	if drop {
		r.dropOnce = ""
	}
	r.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if drop && err == nil {
		resp.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return resp, err
}

func newClient(t *testing.T, srv *fakegithub.Server, mod ...func(*ghcr.Options)) (*ghcr.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts := ghcr.Options{
		APIURL:         srv.URL(),
		Token:          fakegithub.DefaultToken,
		HTTPClient:     &http.Client{Transport: rec},
		RetryBaseDelay: time.Millisecond,
	}
	for _, f := range mod {
		f(&opts)
	}
	c, err := ghcr.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func wantError(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %q, got nil", msg)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	if err.Error() != msg {
		t.Errorf("error message\n got: %s\nwant: %s", err, msg)
	}
	if strings.Contains(err.Error(), fakegithub.DefaultToken) {
		t.Errorf("error reveals the token: %s", err)
	}
}

func digest(i int) string { return fmt.Sprintf("sha256:%064x", i) }

// seedOrg creates org "acme" with package "team/app" holding n versions,
// version i created i minutes after a base time.
func seedOrg(t *testing.T, srv *fakegithub.Server, n int) []int64 {
	srv.AddOwner("acme", fakegithub.Organization)
	srv.AddPackage("acme", "team/app", false)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var vs []fakegithub.Version
	for i := range n {
		v := fakegithub.Version{Digest: digest(i), CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if i%2 == 0 {
			v.Tags = []string{fmt.Sprintf("v%d", i)}
		}
		vs = append(vs, v)
	}
	return srv.AddVersions("acme", "team/app", vs...)
}

func list(t *testing.T, c *ghcr.Client, owner, pkg string) []ghcr.Version {
	t.Helper()
	l, err := c.ListVersions(context.Background(), owner, pkg)
	if err != nil {
		t.Fatal(err)
	}
	return l.Versions
}

func TestListVersionsFollowsLinks(t *testing.T) {
	srv := fakegithub.Start(t)
	ids := seedOrg(t, srv, 250)
	c, rec := newClient(t, srv)

	versions := list(t, c, "acme", "team/app")
	// GitHub's Link headers name /organizations/{id}/… paths: the page
	// number is read from them and asked of the package's own path.
	if n, m := srv.Count(fakegithub.ListOrgVersions), srv.Count(fakegithub.ListOrgVersionsByID); n != 3 || m != 0 {
		t.Errorf("list calls = %d (and %d by id), want 3", n, m)
	}
	if n := srv.Count(fakegithub.GetOrgPackage); n != 2 {
		t.Errorf("package reads = %d, want 2 (version_count before and after)", n)
	}
	if n := srv.Count(fakegithub.GetOwner); n != 1 {
		t.Errorf("owner lookups = %d, want 1", n)
	}
	if len(versions) != 250 {
		t.Fatalf("got %d versions, want 250", len(versions))
	}
	// Newest first, as GitHub lists them.
	first, last := versions[0], versions[249]
	if first.ID != ids[249] || first.Digest != digest(249) || len(first.Tags) != 0 ||
		!first.CreatedAt.Equal(time.Date(2025, 1, 1, 4, 9, 0, 0, time.UTC)) || !first.UpdatedAt.Equal(first.CreatedAt) {
		t.Errorf("first version = %+v", first)
	}
	if last.ID != ids[0] || last.Digest != digest(0) || len(last.Tags) != 1 || last.Tags[0] != "v0" {
		t.Errorf("last version = %+v", last)
	}
	if want := fmt.Sprintf("https://github.com/orgs/acme/packages/container/team%%2Fapp/%d", ids[0]); last.HTMLURL != want {
		t.Errorf("html url = %s, want %s", last.HTMLURL, want)
	}
	for _, h := range rec.headers {
		if h.Get("X-GitHub-Api-Version") != "2022-11-28" || h.Get("Authorization") != "Bearer "+fakegithub.DefaultToken || h.Get("User-Agent") != "registry-actions" {
			t.Fatalf("request headers = %v", h)
		}
	}
}

func TestListingThatShiftsIsReadAgain(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 250)
	// Someone deletes ten versions of the first page while page 2 is
	// requested: page 2 then starts ten versions later and ten are never
	// seen. version_count tells, and the listing is read again.
	srv.Before(fakegithub.ListOrgVersions, 2, func() {
		var gone []string
		for i := 240; i < 250; i++ {
			gone = append(gone, digest(i))
		}
		srv.DeleteVersions("acme", "team/app", gone...)
	})
	c, _ := newClient(t, srv)
	versions := list(t, c, "acme", "team/app")
	if len(versions) != 240 {
		t.Fatalf("got %d versions, want the 240 left", len(versions))
	}
	got := map[string]bool{}
	for _, v := range versions {
		got[v.Digest] = true
	}
	for i := range 240 {
		if !got[digest(i)] {
			t.Fatalf("%s was skipped by a shifted page", digest(i))
		}
	}
	if n := srv.Count(fakegithub.ListOrgVersions); n != 6 {
		t.Errorf("list calls = %d, want 3 + 3 (read again)", n)
	}
}

func TestListingThatKeepsChangingIsAnError(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 150)
	// A push lands during every listing: the newest version shifts the
	// list, and page 2 repeats the last version of page 1.
	for n := 2; n <= 6; n += 2 {
		srv.Before(fakegithub.ListOrgVersions, n, func() {
			srv.AddVersions("acme", "team/app", fakegithub.Version{Digest: digest(1000 + n), CreatedAt: time.Now()})
		})
	}
	c, _ := newClient(t, srv)
	_, err := c.ListVersions(context.Background(), "acme", "team/app")
	wantError(t, err, ghcr.ErrInconsistent, `GitHub's listing of container package "acme/team/app" changed while it was read, 3 times in a row (version_count 152 before and 153 after, 152 distinct versions listed, 1 listed twice): a push or a deletion is in progress; nothing was deleted: run again when it has finished`)
}

func TestUserPackage(t *testing.T) {
	srv := fakegithub.Start(t)
	srv.SetViewer("octo") // the owner's personal access token
	srv.AddOwner("octo", fakegithub.User)
	srv.AddPackage("octo", "tool", false)
	ids := srv.AddVersions("octo", "tool", fakegithub.Version{Digest: digest(1), Tags: []string{"latest"}}, fakegithub.Version{Digest: digest(2)})
	c, _ := newClient(t, srv)

	if versions := list(t, c, "octo", "tool"); len(versions) != 2 {
		t.Fatalf("got %d versions", len(versions))
	}
	if err := c.DeleteVersion(context.Background(), "octo", "tool", ids[1]); err != nil {
		t.Fatal(err)
	}
	if left := srv.Versions("octo", "tool"); len(left) != 1 || left[0].ID != ids[0] {
		t.Errorf("left: %+v", left)
	}
	want := map[string]int{fakegithub.GetOwner: 1, fakegithub.GetUserPackage: 2, fakegithub.ListUserVersions: 1, fakegithub.DeleteUserVersion: 1}
	if got := srv.Counts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

func TestUserPackageListsButAWorkflowTokenCannotDelete(t *testing.T) {
	srv := fakegithub.Start(t)
	srv.AddOwner("octo", fakegithub.User)
	srv.AddPackage("octo", "secret", true)
	ids := srv.AddVersions("octo", "secret", fakegithub.Version{Digest: digest(1), Tags: []string{"v1"}}, fakegithub.Version{Digest: digest(2)})
	c, _ := newClient(t, srv)
	if versions := list(t, c, "octo", "secret"); len(versions) != 2 {
		t.Fatalf("got %d versions", len(versions))
	}
	err := c.DeleteVersion(context.Background(), "octo", "secret", ids[1])
	wantError(t, err, ghcr.ErrNoAdmin, fmt.Sprintf(`GitHub answered 404 (Package not found.) to deleting version %d of container package "octo/secret", which it lists: a workflow token cannot delete versions of a user's package unless the repository has the Admin role on it: grant the workflow Admin on the package: in the package settings under "Manage Actions access" give this repository the Admin role (and permissions: packages: write), or set github-token to a personal access token with delete:packages`, ids[1]))
	if n := len(srv.Versions("octo", "secret")); n != 2 {
		t.Errorf("%d versions left", n)
	}
}

func TestNeverReachesAnotherUsersPackageThroughUser(t *testing.T) {
	srv := fakegithub.Start(t)
	srv.SetViewer("mallory")
	srv.AddOwner("octo", fakegithub.User)
	srv.AddOwner("mallory", fakegithub.User)
	srv.AddPackage("octo", "app", true)
	srv.HidePackage("octo", "app")
	srv.AddPackage("mallory", "app", true)
	srv.AddVersions("mallory", "app", fakegithub.Version{Digest: digest(1)})
	c, _ := newClient(t, srv)

	_, err := c.ListVersions(context.Background(), "octo", "app")
	wantError(t, err, ghcr.ErrNotFound, `GitHub container package "octo/app" not found (GitHub: Package not found.): check the package name (the image path after ghcr.io/octo/) and its visibility; a private package needs a token with packages: read and access to it`)
	if n := srv.Count(fakegithub.GetViewerPackage) + srv.Count(fakegithub.ListViewerVersions); n != 0 {
		t.Errorf("/user/packages was called %d times for another user's package", n)
	}
}

func TestOwnerKindIsCached(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	srv.AddPackage("acme", "other", false)
	srv.AddVersions("acme", "other", fakegithub.Version{Digest: digest(9)})
	c, _ := newClient(t, srv)
	for _, pkg := range []string{"team/app", "other", "team/app"} {
		list(t, c, "ACME", pkg)
	}
	if n := srv.Count(fakegithub.GetOwner); n != 1 {
		t.Errorf("owner lookups = %d, want 1", n)
	}
}

func TestPackageNotFound(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 3)
	srv.HidePackage("acme", "team/app")
	c, _ := newClient(t, srv)
	_, err := c.ListVersions(context.Background(), "acme", "team/app")
	wantError(t, err, ghcr.ErrNotFound, `GitHub container package "acme/team/app" not found (GitHub: Package not found.): check the package name (the image path after ghcr.io/acme/) and its visibility; a private package needs a token with packages: read and access to it`)
	var e *ghcr.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Owner != "acme" || e.Package != "team/app" || e.Op != "list" {
		t.Errorf("error details = %+v", e)
	}
	if n := srv.Count(fakegithub.GetOrgPackage); n != 1 {
		t.Errorf("package reads = %d, want 1 (an organization has one path)", n)
	}
}

func TestUnknownOwner(t *testing.T) {
	srv := fakegithub.Start(t)
	c, _ := newClient(t, srv)
	_, err := c.ListVersions(context.Background(), "nobody", "app")
	wantError(t, err, ghcr.ErrNotFound, `GitHub user or organization "nobody" not found: check the owner of the package (the first path segment after ghcr.io/)`)
}

func TestDeleteWithoutAdminIsRecognised(t *testing.T) {
	srv := fakegithub.Start(t)
	ids := seedOrg(t, srv, 3)
	srv.WithoutAdmin("acme", "team/app")
	c, _ := newClient(t, srv)
	err := c.DeleteVersion(context.Background(), "acme", "team/app", ids[1])
	wantError(t, err, ghcr.ErrNoAdmin, fmt.Sprintf(`GitHub answered 404 (Package not found.) to deleting version %d of container package "acme/team/app", which it lists: the workflow's repository lacks the Admin role on the package: grant the workflow Admin on the package: in the package settings under "Manage Actions access" give this repository the Admin role (and permissions: packages: write), or set github-token to a personal access token with delete:packages`, ids[1]))
	if n := len(srv.Versions("acme", "team/app")); n != 3 {
		t.Errorf("%d versions left, want 3", n)
	}
	if d, g := srv.Count(fakegithub.DeleteOrgVersion), srv.Count(fakegithub.GetOrgVersion); d != 1 || g != 1 {
		t.Errorf("%d DELETEs and %d version reads, want 1 and 1", d, g)
	}
}

func TestDeleteForbidden(t *testing.T) {
	srv := fakegithub.Start(t)
	ids := seedOrg(t, srv, 3)
	srv.FailNext(fakegithub.DeleteOrgVersion, 1, fakegithub.Fault{Status: 403, Message: "Resource not accessible by integration", RetryAfter: -1})
	c, _ := newClient(t, srv)
	err := c.DeleteVersion(context.Background(), "acme", "team/app", ids[0])
	wantError(t, err, ghcr.ErrForbidden, fmt.Sprintf(`GitHub refused to delete version %d of container package "acme/team/app" (GitHub: Resource not accessible by integration): grant the workflow Admin on the package: in the package settings under "Manage Actions access" give this repository the Admin role (and permissions: packages: write), or set github-token to a personal access token with delete:packages`, ids[0]))
}

func TestListForbidden(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	srv.FailNext(fakegithub.ListOrgVersions, 1, fakegithub.Fault{Status: 403, Message: "Resource not accessible by integration", RetryAfter: -1})
	c, _ := newClient(t, srv)
	_, err := c.ListVersions(context.Background(), "acme", "team/app")
	wantError(t, err, ghcr.ErrForbidden, `GitHub denied listing the versions of container package "acme/team/app" (GitHub: Resource not accessible by integration): the token needs packages: read (workflow permissions) and access to the package`)
	if n := srv.Count(fakegithub.ListOrgVersions); n != 1 {
		t.Errorf("list calls = %d, want 1 (a permission error is not retried)", n)
	}
}

func TestUnauthorized(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	c, _ := newClient(t, srv, func(o *ghcr.Options) { o.Token = "ghp_wrong" })
	_, err := c.ListVersions(context.Background(), "acme", "team/app")
	wantError(t, err, ghcr.ErrUnauthorized, "GitHub rejected the token (GitHub: Bad credentials): set the github-token input to a valid token")

	c, rec := newClient(t, srv, func(o *ghcr.Options) { o.Token = "" })
	_, err = c.ListVersions(context.Background(), "acme", "team/app")
	wantError(t, err, ghcr.ErrUnauthorized, "no GitHub token: set the github-token input (its default is ${{ github.token }})")
	for _, h := range rec.headers {
		if h.Get("Authorization") != "" {
			t.Errorf("sent Authorization %q without a token", h.Get("Authorization"))
		}
	}
}

func TestPopularPublicVersionCannotBeDeleted(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	ids := srv.AddVersions("acme", "team/app", fakegithub.Version{Digest: digest(7), Downloads: 5001})
	c, _ := newClient(t, srv)
	err := c.DeleteVersion(context.Background(), "acme", "team/app", ids[0])
	wantError(t, err, ghcr.ErrNotDeletable, fmt.Sprintf(`GitHub refused to delete version %d of container package "acme/team/app": public versions downloaded more than 5,000 times can only be deleted by GitHub Support (GitHub: %s)`, ids[0], fakegithub.MessageTooManyPulls))
}

func TestLastTaggedVersionCannotBeDeleted(t *testing.T) {
	srv := fakegithub.Start(t)
	ids := seedOrg(t, srv, 2) // v0 is the only tagged version
	c, _ := newClient(t, srv)
	err := c.DeleteVersion(context.Background(), "acme", "team/app", ids[0])
	wantError(t, err, ghcr.ErrNotDeletable, fmt.Sprintf(`GitHub refused to delete version %d of container package "acme/team/app": it is the package's last tagged version (GitHub: %s)`, ids[0], fakegithub.MessageLastTagged))
}

func TestDeletingAVersionAlreadyGoneIsNotAnError(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 2)
	c, _ := newClient(t, srv)
	if err := c.DeleteVersion(context.Background(), "acme", "team/app", 42); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(fakegithub.GetOrgVersion); n != 1 {
		t.Errorf("version reads = %d, want 1 (the 404 is checked)", n)
	}
}

func TestDeleteWhoseAnswerWasLostIsNotAnError(t *testing.T) {
	srv := fakegithub.Start(t)
	ids := seedOrg(t, srv, 2)
	c, rec := newClient(t, srv)
	rec.dropOnce = http.MethodDelete
	if err := c.DeleteVersion(context.Background(), "acme", "team/app", ids[1]); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(fakegithub.DeleteOrgVersion); n != 2 {
		t.Errorf("delete calls = %d, want 2 (lost answer, then 404)", n)
	}
	if left := srv.Versions("acme", "team/app"); len(left) != 1 || left[0].ID != ids[0] {
		t.Errorf("left: %+v", left)
	}
}

func TestRateLimitsAreWaitedOut(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 150)
	srv.FailNext(fakegithub.ListOrgVersions, 1, fakegithub.TooManyRequests(1))
	srv.FailNext(fakegithub.ListOrgVersions, 1, fakegithub.SecondaryRateLimit(0))
	c, _ := newClient(t, srv)
	if versions := list(t, c, "acme", "team/app"); len(versions) != 150 {
		t.Errorf("got %d versions", len(versions))
	}
	if n := srv.Count(fakegithub.ListOrgVersions); n != 4 {
		t.Errorf("list calls = %d, want 4 (429, 403 secondary, two pages)", n)
	}
}

func TestPrimaryRateLimitWaitsForReset(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	// One request left: the owner lookup spends it; go-github then knows
	// the limit is spent, and the next request waits for the reset
	// instead of being sent and refused.
	srv.SetRateLimit(5000, 1, 1500*time.Millisecond) // the reset header, in whole seconds, is still ahead
	c, _ := newClient(t, srv)
	list(t, c, "acme", "team/app")
	want := map[string]int{fakegithub.GetOwner: 1, fakegithub.GetOrgPackage: 2, fakegithub.ListOrgVersions: 1}
	if got := srv.Counts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

func TestRateLimitBeyondTheWaitBound(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	srv.FailNext(fakegithub.ListOrgVersions, -1, fakegithub.TooManyRequests(600))
	c, _ := newClient(t, srv, func(o *ghcr.Options) { o.MaxRateLimitWait = time.Second })
	_, err := c.ListVersions(context.Background(), "acme", "team/app")
	wantError(t, err, ghcr.ErrRateLimited, `GitHub API rate limit outlasts the 1s wait limit to list the versions of container package "acme/team/app"; GitHub asks to wait 10m0s: run again after that`)
	if n := srv.Count(fakegithub.ListOrgVersions); n != 1 {
		t.Errorf("list calls = %d, want 1", n)
	}
}

func TestPrimaryRateLimitBeyondTheWaitBound(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	srv.SetRateLimit(5000, 0, 30*time.Minute)
	c, _ := newClient(t, srv, func(o *ghcr.Options) { o.MaxRateLimitWait = time.Second })
	_, err := c.ListVersions(context.Background(), "acme", "team/app")
	var e *ghcr.Error
	if !errors.As(err, &e) || !errors.Is(err, ghcr.ErrRateLimited) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if e.Op != "list" || e.Owner != "acme" || e.Package != "team/app" {
		t.Errorf("error context = %q %q %q", e.Op, e.Owner, e.Package)
	}
	if until := time.Until(e.ResetAt); until < 29*time.Minute || until > 31*time.Minute {
		t.Errorf("ResetAt in %s, want about 30m", until)
	}
	prefix := `GitHub API rate limit outlasts the 1s wait limit to list the versions of container package "acme/team/app"; it resets at ` + e.ResetAt.UTC().Format("15:04:05 UTC") + " (in "
	if !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), "): run again after that") {
		t.Errorf("message = %q, want prefix %q", err, prefix)
	}
}

func TestRateLimitWaitHonoursContext(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 1)
	srv.FailNext(fakegithub.ListOrgVersions, -1, fakegithub.TooManyRequests(60))
	c, _ := newClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ListVersions(ctx, "acme", "team/app")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 5)
	srv.FailNext(fakegithub.ListOrgVersions, 2, fakegithub.ServerError())
	c, _ := newClient(t, srv)
	if versions := list(t, c, "acme", "team/app"); len(versions) != 5 {
		t.Fatalf("got %d versions", len(versions))
	}
	if n := srv.Count(fakegithub.ListOrgVersions); n != 3 {
		t.Errorf("list calls = %d, want 3", n)
	}
}

func TestServerErrorsBeyondRetries(t *testing.T) {
	srv := fakegithub.Start(t)
	seedOrg(t, srv, 5)
	srv.FailNext(fakegithub.ListOrgVersions, -1, fakegithub.ServerError())
	c, _ := newClient(t, srv, func(o *ghcr.Options) { o.MaxRetries = 2 })
	_, err := c.ListVersions(context.Background(), "acme", "team/app")
	wantError(t, err, nil, `GitHub API could not list the versions of container package "acme/team/app": HTTP 502 after 3 attempts (GitHub: Server Error): retry later`)
}

// fakeAPI serves an organization "acme" with package "app" whose versions
// list answers with handler.
func fakeAPI(t *testing.T, versions http.HandlerFunc) *httptest.Server {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/users/acme":
			io.WriteString(w, `{"login":"acme","type":"Organization"}`)
		case "/orgs/acme/packages/container/app":
			io.WriteString(w, `{"name":"app","version_count":1}`)
		default:
			versions(w, r)
		}
	}))
	t.Cleanup(api.Close)
	return api
}

func TestTheTokenNeverFollowsALinkToAnotherHost(t *testing.T) {
	var hosts []string
	api := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		if r.URL.Query().Get("page") == "" {
			w.Header().Set("Link", `<https://elsewhere.example/orgs/acme/packages/container/app/versions?page=2>; rel="next"`)
			io.WriteString(w, `[{"id":1,"name":"sha256:aa","metadata":{"container":{"tags":[]}}}]`)
			return
		}
		io.WriteString(w, `[]`)
	})
	c, err := ghcr.New(ghcr.Options{APIURL: api.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.ListVersions(context.Background(), "acme", "app")
	if err != nil || len(l.Versions) != 1 {
		t.Fatalf("listing: %v", err)
	}
	for _, h := range hosts {
		if h != strings.TrimPrefix(api.URL, "http://") {
			t.Errorf("a request went to %s", h)
		}
	}
}

func TestNewRejectsBadAPIURL(t *testing.T) {
	_, err := ghcr.New(ghcr.Options{APIURL: "ftp://example.com"})
	wantError(t, err, nil, `GitHub API URL "ftp://example.com" is not an http(s) URL`)
}

func TestOwnerLookupRateLimited(t *testing.T) {
	srv := fakegithub.Start(t)
	srv.FailNext(fakegithub.GetOwner, -1, fakegithub.SecondaryRateLimit(120))
	c, _ := newClient(t, srv, func(o *ghcr.Options) { o.MaxRateLimitWait = time.Second })
	err := c.DeleteVersion(context.Background(), "acme", "app", 1)
	wantError(t, err, ghcr.ErrRateLimited, `GitHub API rate limit outlasts the 1s wait limit to delete a version of container package "acme/app"; GitHub asks to wait 2m0s: run again after that`)
}

func TestStopsOnALinkLoop(t *testing.T) {
	api := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "<http://"+r.Host+`/orgs/acme/packages/container/app/versions?page=2>; rel="next"`)
		io.WriteString(w, `[{"id":1,"name":"sha256:aa","metadata":{"container":{"tags":[]}}}]`)
	})
	c, err := ghcr.New(ghcr.Options{APIURL: api.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListVersions(context.Background(), "acme", "app")
	wantError(t, err, nil, `GitHub API: the versions of container package "acme/app" link back to page 2, already read`)
}

func TestDeletionsArePacedUnderTheSecondaryLimit(t *testing.T) {
	// The server allows 12 points in 300ms: two DELETEs and two GETs. The
	// client, paced at 12 points in 400ms (a margin for the network), is
	// never refused; unpaced, it is.
	for _, paced := range []bool{true, false} {
		srv := fakegithub.Start(t)
		ids := seedOrg(t, srv, 8)
		srv.SetSecondaryLimit(12, 300*time.Millisecond)
		c, _ := newClient(t, srv, func(o *ghcr.Options) {
			o.PointsPerWindow, o.PointsWindow = 12, 400*time.Millisecond
			if !paced {
				o.PointsPerWindow = 1000
			}
		})
		for _, id := range []int64{ids[1], ids[3], ids[5], ids[7]} { // untagged
			if err := c.DeleteVersion(context.Background(), "acme", "team/app", id); err != nil {
				t.Fatal(err)
			}
		}
		if got := srv.SecondaryRefusals(); paced && got != 0 || !paced && got == 0 {
			t.Errorf("paced %v: %d secondary-limit refusals", paced, got)
		}
	}
}
