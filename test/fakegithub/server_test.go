package fakegithub_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registry-actions/registry/test/fakegithub"
)

func get(t *testing.T, srv *fakegithub.Server, method, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("%s %s: no %s header", method, path, h)
		}
	}
	return resp, body
}

func seed(t *testing.T, n int) *fakegithub.Server {
	srv := fakegithub.Start(t)
	srv.AddOwner("acme", fakegithub.Organization)
	srv.AddPackage("acme", "team/app", false)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		srv.AddVersions("acme", "team/app", fakegithub.Version{ID: int64(i + 1), Digest: fmt.Sprintf("sha256:%064x", i), CreatedAt: base.Add(time.Duration(i) * time.Hour)})
	}
	return srv
}

func TestPagingAndLinks(t *testing.T) {
	srv := seed(t, 250)
	const path = "/orgs/acme/packages/container/team%2Fapp/versions"

	resp, body := get(t, srv, "GET", path, fakegithub.DefaultToken)
	var page []map[string]any
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(page) != 30 {
		t.Errorf("default page size = %d, want 30", len(page))
	}
	// Like GitHub's, the links name the organization by id.
	byID := "/organizations/10001/packages/container/team%2Fapp/versions"
	wantLink := fmt.Sprintf(`<%[1]s%[2]s?page=2>; rel="next", <%[1]s%[2]s?page=9>; rel="last"`, srv.URL(), byID)
	if got := resp.Header.Get("Link"); got != wantLink {
		t.Errorf("Link\n got: %s\nwant: %s", got, wantLink)
	}
	// And those paths answer.
	if resp, body := get(t, srv, "GET", byID+"?page=9", fakegithub.DefaultToken); resp.StatusCode != 200 || !strings.Contains(string(body), `"id":10`) {
		t.Errorf("the next link does not answer: %d %s", resp.StatusCode, body)
	}
	v := page[0]
	meta := v["metadata"].(map[string]any)
	if v["id"] != 250.0 || v["name"] != fmt.Sprintf("sha256:%064x", 249) || v["created_at"] != "2025-01-11T09:00:00Z" ||
		meta["package_type"] != "container" || meta["container"].(map[string]any)["tags"] == nil ||
		v["url"] != srv.URL()+"/orgs/acme/packages/container/team%2Fapp/versions/250" ||
		v["package_html_url"] != "https://github.com/orgs/acme/packages/container/package/team%2Fapp" {
		t.Errorf("version JSON = %v", v)
	}

	resp, body = get(t, srv, "GET", path+"?per_page=500&page=2", fakegithub.DefaultToken)
	_ = json.Unmarshal(body, &page)
	if len(page) != 100 {
		t.Errorf("per_page=500 gave %d versions, want the maximum of 100", len(page))
	}
	link := resp.Header.Get("Link")
	for _, rel := range []string{`page=1&per_page=500>; rel="prev"`, `page=3&per_page=500>; rel="next"`, `page=3&per_page=500>; rel="last"`, `page=1&per_page=500>; rel="first"`} {
		if !strings.Contains(link, rel) {
			t.Errorf("Link %s lacks %s", link, rel)
		}
	}
	resp, _ = get(t, srv, "GET", path+"?per_page=100&page=3", fakegithub.DefaultToken)
	if link := resp.Header.Get("Link"); strings.Contains(link, `rel="next"`) {
		t.Errorf("last page has a next link: %s", link)
	}
	if n := srv.Count(fakegithub.ListOrgVersions); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
}

func TestAuthentication(t *testing.T) {
	srv := seed(t, 1)
	const path = "/orgs/acme/packages/container/team%2Fapp/versions"
	resp, body := get(t, srv, "GET", path, "")
	if resp.StatusCode != 401 || !strings.Contains(string(body), "Requires authentication") {
		t.Errorf("no token: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, srv, "GET", path, "ghp_wrong")
	if resp.StatusCode != 401 || !strings.Contains(string(body), "Bad credentials") {
		t.Errorf("wrong token: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, srv, "GET", "/users/acme", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"type":"Organization"`) {
		t.Errorf("anonymous owner lookup: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, srv, "GET", "/user", fakegithub.DefaultToken)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "Resource not accessible by integration") {
		t.Errorf("installation token on /user: %d %s", resp.StatusCode, body)
	}
}

func TestPrimaryRateLimit(t *testing.T) {
	srv := seed(t, 1)
	srv.SetRateLimit(10, 1, time.Hour)
	resp, _ := get(t, srv, "GET", "/users/acme", fakegithub.DefaultToken)
	if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Used") != "10" {
		t.Errorf("last request: %d remaining %s", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	resp, body := get(t, srv, "GET", "/users/acme", fakegithub.DefaultToken)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "API rate limit exceeded") {
		t.Errorf("spent limit: %d %s", resp.StatusCode, body)
	}
}

func TestDeleteAndDeletedState(t *testing.T) {
	srv := seed(t, 3)
	resp, body := get(t, srv, "DELETE", "/orgs/acme/packages/container/team%2Fapp/versions/2", fakegithub.DefaultToken)
	if resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = get(t, srv, "DELETE", "/orgs/acme/packages/container/team%2Fapp/versions/2", fakegithub.DefaultToken)
	if resp.StatusCode != 404 {
		t.Errorf("second delete: %d %s", resp.StatusCode, body)
	}
	_, body = get(t, srv, "GET", "/orgs/acme/packages/container/team%2Fapp/versions?state=deleted", fakegithub.DefaultToken)
	var deleted []struct{ ID int64 }
	if err := json.Unmarshal(body, &deleted); err != nil || len(deleted) != 1 || deleted[0].ID != 2 {
		t.Errorf("deleted versions: %s", body)
	}
	// The organization's package is not reachable as a user's.
	resp, _ = get(t, srv, "GET", "/users/acme/packages/container/team%2Fapp/versions", fakegithub.DefaultToken)
	if resp.StatusCode != 404 {
		t.Errorf("/users path for an organization: %d", resp.StatusCode)
	}
}

func TestFaultsMatchRoutes(t *testing.T) {
	srv := seed(t, 1)
	srv.FailNext(fakegithub.ListOrgVersions, 1, fakegithub.TooManyRequests(7))
	resp, _ := get(t, srv, "GET", "/users/acme", fakegithub.DefaultToken)
	if resp.StatusCode != 200 {
		t.Errorf("fault applied to another route: %d", resp.StatusCode)
	}
	resp, _ = get(t, srv, "GET", "/orgs/acme/packages/container/team%2Fapp/versions", fakegithub.DefaultToken)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("got %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, _ = get(t, srv, "GET", "/orgs/acme/packages/container/team%2Fapp/versions", fakegithub.DefaultToken)
	if resp.StatusCode != 200 {
		t.Errorf("fault outlived its count: %d", resp.StatusCode)
	}
}

func TestPackageVersionCountAndOneVersion(t *testing.T) {
	srv := seed(t, 3)
	_, body := get(t, srv, "GET", "/orgs/acme/packages/container/team%2Fapp", fakegithub.DefaultToken)
	var pkg struct {
		VersionCount int `json:"version_count"`
		Owner        struct{ Login string }
	}
	if err := json.Unmarshal(body, &pkg); err != nil || pkg.VersionCount != 3 || pkg.Owner.Login != "acme" {
		t.Fatalf("package: %s", body)
	}
	srv.DeleteVersions("acme", "team/app", fmt.Sprintf("sha256:%064x", 0))
	_, body = get(t, srv, "GET", "/orgs/acme/packages/container/team%2Fapp", fakegithub.DefaultToken)
	if err := json.Unmarshal(body, &pkg); err != nil || pkg.VersionCount != 2 {
		t.Errorf("version_count after a deletion: %s", body)
	}
	if resp, _ := get(t, srv, "GET", "/orgs/acme/packages/container/team%2Fapp/versions/2", fakegithub.DefaultToken); resp.StatusCode != 200 {
		t.Errorf("GET one version: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv, "GET", "/orgs/acme/packages/container/team%2Fapp/versions/1", fakegithub.DefaultToken); resp.StatusCode != 404 {
		t.Errorf("GET a deleted version: %d", resp.StatusCode)
	}
}

func TestRefusalsAreWordedLikeGitHub(t *testing.T) {
	srv := fakegithub.Start(t)
	srv.AddOwner("acme", fakegithub.Organization)
	srv.AddPackage("acme", "app", false)
	ids := srv.AddVersions("acme", "app",
		fakegithub.Version{Digest: "sha256:" + strings.Repeat("1", 64), Tags: []string{"v1"}},
		fakegithub.Version{Digest: "sha256:" + strings.Repeat("2", 64)},
		fakegithub.Version{Digest: "sha256:" + strings.Repeat("3", 64), Tags: []string{"v3"}, Downloads: 6000})
	del := func(id int64) (int, string) {
		resp, body := get(t, srv, "DELETE", fmt.Sprintf("/orgs/acme/packages/container/app/versions/%d", id), fakegithub.DefaultToken)
		return resp.StatusCode, string(body)
	}
	if code, body := del(ids[2]); code != 400 || !strings.Contains(body, fakegithub.MessageTooManyPulls) {
		t.Errorf("5,000 downloads: %d %s", code, body)
	}
	srv.SetTags("acme", "app", "sha256:"+strings.Repeat("3", 64))
	if code, body := del(ids[0]); code != 400 || !strings.Contains(body, "You cannot delete the last tagged version of a package") {
		t.Errorf("last tagged version: %d %s", code, body)
	}
	if code, _ := del(ids[1]); code != 204 {
		t.Errorf("an untagged version: %d", code)
	}
	// Without the Admin role, GitHub answers 404 although the package lists.
	srv.WithoutAdmin("acme", "app")
	if code, body := del(ids[2]); code != 404 || !strings.Contains(body, `"Package not found."`) {
		t.Errorf("no admin: %d %s", code, body)
	}
	if resp, _ := get(t, srv, "GET", "/orgs/acme/packages/container/app/versions", fakegithub.DefaultToken); resp.StatusCode != 200 {
		t.Errorf("no admin must still list: %d", resp.StatusCode)
	}
}

func TestPrivateUserPackageListsButWorkflowTokenCannotDelete(t *testing.T) {
	srv := fakegithub.Start(t)
	srv.AddOwner("octocat", fakegithub.User)
	srv.AddPackage("octocat", "app", true)
	ids := srv.AddVersions("octocat", "app", fakegithub.Version{Digest: "sha256:" + strings.Repeat("1", 64), Tags: []string{"v1"}},
		fakegithub.Version{Digest: "sha256:" + strings.Repeat("2", 64)})
	if resp, _ := get(t, srv, "GET", "/users/octocat/packages/container/app/versions", fakegithub.DefaultToken); resp.StatusCode != 200 {
		t.Errorf("list with a workflow token: %d", resp.StatusCode)
	}
	path := fmt.Sprintf("/users/octocat/packages/container/app/versions/%d", ids[1])
	if resp, body := get(t, srv, "DELETE", path, fakegithub.DefaultToken); resp.StatusCode != 404 || !strings.Contains(string(body), "Package not found.") {
		t.Errorf("delete with a workflow token: %d %s", resp.StatusCode, body)
	}
	srv.SetViewer("octocat") // a personal access token of the owner
	if resp, _ := get(t, srv, "DELETE", path, fakegithub.DefaultToken); resp.StatusCode != 204 {
		t.Errorf("delete with the owner's token: %d", resp.StatusCode)
	}
}

func TestBeforeChangesThePackageBetweenPages(t *testing.T) {
	srv := seed(t, 150)
	const path = "/orgs/acme/packages/container/team%2Fapp/versions?per_page=100"
	// Someone deletes ten of the first page's versions before page 2 is
	// read: page 2 then starts ten versions later, as on GitHub.
	srv.Before(fakegithub.ListOrgVersionsByID, 1, func() {
		var gone []string
		for i := 140; i < 150; i++ {
			gone = append(gone, fmt.Sprintf("sha256:%064x", i))
		}
		srv.DeleteVersions("acme", "team/app", gone...)
	})
	var page1, page2 []struct{ ID int64 }
	resp, body := get(t, srv, "GET", path, fakegithub.DefaultToken)
	_ = json.Unmarshal(body, &page1)
	next := strings.TrimPrefix(strings.Split(strings.Split(resp.Header.Get("Link"), ">")[0], "<")[1], srv.URL())
	_, body = get(t, srv, "GET", next, fakegithub.DefaultToken)
	_ = json.Unmarshal(body, &page2)
	if len(page1) != 100 || len(page2) != 40 || page2[0].ID != 40 {
		t.Errorf("pages of %d and %d, page 2 from id %d; want 100 and 40 from id 40 (ids 41-50 skipped)", len(page1), len(page2), page2[0].ID)
	}
}

func TestSecondaryLimitCountsPoints(t *testing.T) {
	srv := seed(t, 20)
	srv.SetSecondaryLimit(12, time.Hour)
	// Two DELETEs (10 points) and two GETs fit; a third DELETE does not.
	for _, id := range []int{1, 2} {
		if resp, _ := get(t, srv, "DELETE", fmt.Sprintf("/orgs/acme/packages/container/team%%2Fapp/versions/%d", id), fakegithub.DefaultToken); resp.StatusCode != 204 {
			t.Fatalf("delete %d: %d", id, resp.StatusCode)
		}
	}
	get(t, srv, "GET", "/users/acme", fakegithub.DefaultToken)
	get(t, srv, "GET", "/users/acme", fakegithub.DefaultToken)
	resp, body := get(t, srv, "DELETE", "/orgs/acme/packages/container/team%2Fapp/versions/3", fakegithub.DefaultToken)
	if resp.StatusCode != 403 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "secondary-rate-limits") || srv.SecondaryRefusals() != 1 {
		t.Errorf("over the points: %d %s", resp.StatusCode, body)
	}
}
