package inspector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/registry-actions/registry/test/fakeecr"
)

func TestMain(m *testing.M) {
	fakeecr.IsolateAWS()
	os.Exit(m.Run())
}

func client(t *testing.T, srv *fakeecr.Server) *Client {
	t.Helper()
	c, err := New(context.Background(), Options{Region: fakeecr.DefaultRegion, Endpoint: srv.URL(), MaxAttempts: 2,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func finding(repo, digest, id, severity string, tags ...string) fakeecr.InspectorFinding {
	return fakeecr.InspectorFinding{Repository: repo, Digest: digest, Tags: tags, Architecture: "arm64",
		EnhancedFinding: fakeecr.EnhancedFinding{VulnerabilityID: id, Severity: severity, Title: id + " in openssl", Score: 7.5,
			CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", SourceURL: "https://nvd.nist.gov/vuln/detail/" + id,
			Packages: []fakeecr.VulnerablePackage{{Name: "openssl", Version: "3.0.1", FixedInVersion: "3.0.9", PackageManager: "OS"}}}}
}

func TestListFindingsPagesAndFiltersOnTheServer(t *testing.T) {
	srv := fakeecr.Start(t)
	for i := range 150 {
		srv.AddInspectorFindings(finding("app", fmt.Sprintf("sha256:%064d", i%3), fmt.Sprintf("CVE-2024-%04d", i), []string{"HIGH", "LOW", "INFORMATIONAL"}[i%3], "v1"))
	}
	srv.AddInspectorFindings(finding("other", "sha256:"+strings.Repeat("f", 64), "CVE-2024-9999", "HIGH"))
	closed := finding("app", "sha256:"+strings.Repeat("0", 64), "CVE-2024-8888", "HIGH")
	closed.Status = "CLOSED"
	srv.AddInspectorFindings(closed)

	fs, pages, err := client(t, srv).ListFindings(context.Background(), Query{Account: fakeecr.DefaultRegistryID, Repository: "app", Severities: []string{"HIGH", "LOW"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 100 || pages != 1 {
		t.Fatalf("%d findings in %d pages, want 100 (HIGH and LOW of app, active) in 1", len(fs), pages)
	}
	f := fs[0]
	if f.ID != "CVE-2024-0000" || f.Severity != "HIGH" || f.Score != 7.5 || !strings.HasPrefix(f.CVSSVector, "CVSS:3.1/") ||
		f.Image.Repository != "app" || f.Image.Architecture != "arm64" || !slices.Equal(f.Image.Tags, []string{"v1"}) ||
		len(f.Packages) != 1 || f.Packages[0].FixedInVersion != "3.0.9" {
		t.Errorf("finding %+v", f)
	}
	all, pages, err := client(t, srv).ListFindings(context.Background(), Query{Repository: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 150 || pages != 2 {
		t.Errorf("%d findings in %d pages, want 150 in 2 pages of 100", len(all), pages)
	}
	var req struct {
		FilterCriteria map[string][]map[string]string `json:"filterCriteria"`
		MaxResults     int                            `json:"maxResults"`
	}
	bodies := srv.Requests(fakeecr.OpListFindings)
	if err := json.Unmarshal(bodies[0], &req); err != nil {
		t.Fatal(err)
	}
	if req.MaxResults != 100 || len(req.FilterCriteria["severity"]) != 2 || req.FilterCriteria["ecrImageRepositoryName"][0]["value"] != "app" ||
		req.FilterCriteria["findingStatus"][0]["value"] != "ACTIVE" {
		t.Errorf("request %s", bodies[0])
	}
}

func TestListFindingsErrorsNameThePermission(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.FailNext(fakeecr.OpListFindings, 1, fakeecr.Fault{Status: 403, Code: "AccessDeniedException",
		Message: "User: arn:aws:sts::123456789012:assumed-role/ci/run is not authorized to perform: inspector2:ListFindings"})
	_, _, err := client(t, srv).ListFindings(context.Background(), Query{Repository: "app"})
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "grant inspector2:ListFindings to arn:aws:sts::123456789012:assumed-role/ci/run") {
		t.Errorf("access denied: %v", err)
	}
	srv.FailNext(fakeecr.OpListFindings, -1, fakeecr.Fault{Status: 500, Code: "InternalServerException", Message: "boom"})
	_, _, err = client(t, srv).ListFindings(context.Background(), Query{Repository: "app"})
	if err == nil || errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "retry later") {
		t.Errorf("server error: %v", err)
	}
	if n := srv.Count(fakeecr.OpListFindings); n != 1+2 {
		t.Errorf("%d requests, want 1 + 2 attempts of the retried 500", n)
	}
}
