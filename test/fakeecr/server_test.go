package fakeecr_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registry-actions/registry/test/fakeecr"
)

// call sends a raw awsJson1_1 request, as an SDK would, and decodes the answer.
func call(t *testing.T, srv *fakeecr.Server, op, body string, signed bool) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if signed {
		req.Header.Set("X-Amz-Date", "20250101T000000Z")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+strings.Repeat("ab", 32))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("%s: Content-Type %q", op, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: answer %q is not JSON: %v", op, raw, err)
	}
	return resp.StatusCode, out
}

func wantAPIError(t *testing.T, status int, out map[string]any, code, msgPrefix string) {
	t.Helper()
	if status != http.StatusBadRequest || out["__type"] != code || !strings.HasPrefix(fmt.Sprint(out["message"]), msgPrefix) {
		t.Errorf("got %d %v, want 400 %s %q…", status, out, code, msgPrefix)
	}
}

func TestRequiresSigV4(t *testing.T) {
	srv := fakeecr.Start(t)
	status, out := call(t, srv, "DescribeRepositories", `{}`, false)
	wantAPIError(t, status, out, "MissingAuthenticationTokenException", "Missing Authentication Token")

	srv.AcceptUnsigned()
	status, out = call(t, srv, "DescribeRepositories", `{}`, false)
	if status != 200 || out["repositories"] != nil {
		t.Errorf("unsigned accepted: %d %v", status, out)
	}
}

func TestProtocolErrors(t *testing.T) {
	srv := fakeecr.Start(t)
	status, out := call(t, srv, "DeleteEverything", `{}`, true)
	wantAPIError(t, status, out, "UnknownOperationException", `operation "DeleteEverything" is not supported`)

	status, out = call(t, srv, "DescribeImages", `{"repositoryName":"nope"}`, true)
	wantAPIError(t, status, out, "RepositoryNotFoundException", "The repository with name 'nope' does not exist in the registry with id '123456789012'")

	srv.AddRepository(fakeecr.Repository{Name: "app"})
	status, out = call(t, srv, "DescribeImages", `{"repositoryName":"app","maxResults":1001}`, true)
	wantAPIError(t, status, out, "InvalidParameterException", "Invalid parameter at 'maxResults'")

	ids := make([]string, 101)
	for i := range ids {
		ids[i] = fmt.Sprintf(`{"imageDigest":"sha256:%064x"}`, i)
	}
	status, out = call(t, srv, "BatchDeleteImage", `{"repositoryName":"app","imageIds":[`+strings.Join(ids, ",")+`]}`, true)
	wantAPIError(t, status, out, "InvalidParameterException", "Invalid parameter at 'imageIds'")

	status, out = call(t, srv, "GetLifecyclePolicyPreview", `{"repositoryName":"app"}`, true)
	wantAPIError(t, status, out, "LifecyclePolicyPreviewNotFoundException", "There is no lifecycle policy preview")

	if got := srv.Calls(fakeecr.OpDescribeImages); got != 2 {
		t.Errorf("DescribeImages count = %d, want 2", got)
	}
}

func TestTimestampsAreEpochSeconds(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	pushed := time.Unix(1700000000, 250_000_000)
	srv.AddImages("app", fakeecr.Image{Digest: fmt.Sprintf("sha256:%064x", 1), Tags: []string{"v1"}, PushedAt: pushed, SizeBytes: 42})
	status, out := call(t, srv, "DescribeImages", `{"repositoryName":"app"}`, true)
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	detail := out["imageDetails"].([]any)[0].(map[string]any)
	if detail["imagePushedAt"] != 1700000000.25 || detail["imageSizeInBytes"] != 42.0 || detail["imageStatus"] != "ACTIVE" {
		t.Errorf("image detail = %v", detail)
	}
	if _, ok := detail["lastRecordedPullTime"]; ok {
		t.Errorf("never-pulled image reports lastRecordedPullTime: %v", detail)
	}
}

func TestDeleteByTagUntagsFirst(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	d := fmt.Sprintf("sha256:%064x", 1)
	srv.AddImages("app", fakeecr.Image{Digest: d, Tags: []string{"a", "b"}})

	status, out := call(t, srv, "BatchDeleteImage", `{"repositoryName":"app","imageIds":[{"imageTag":"a"}]}`, true)
	if status != 200 || len(out["imageIds"].([]any)) != 1 {
		t.Fatalf("%d %v", status, out)
	}
	if imgs := srv.Images("app"); len(imgs) != 1 || len(imgs[0].Tags) != 1 || imgs[0].Tags[0] != "b" {
		t.Errorf("after untagging a: %+v", imgs)
	}
	call(t, srv, "BatchDeleteImage", `{"repositoryName":"app","imageIds":[{"imageTag":"b"}]}`, true)
	if imgs := srv.Images("app"); len(imgs) != 0 {
		t.Errorf("image should go with its last tag: %+v", imgs)
	}
}

func TestFaultsQueuePerOperation(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	srv.FailNext(fakeecr.OpGetLifecyclePolicy, 1, fakeecr.Throttling())
	srv.FailNext(fakeecr.OpGetLifecyclePolicy, 1, fakeecr.AccessDenied(fakeecr.OpGetLifecyclePolicy))

	status, out := call(t, srv, "DescribeRepositories", `{}`, true)
	if status != 200 {
		t.Errorf("other operations are not faulted: %d %v", status, out)
	}
	status, out = call(t, srv, "GetLifecyclePolicy", `{"repositoryName":"app"}`, true)
	wantAPIError(t, status, out, "ThrottlingException", "Rate exceeded")
	status, out = call(t, srv, "GetLifecyclePolicy", `{"repositoryName":"app"}`, true)
	wantAPIError(t, status, out, "AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/ci/run is not authorized to perform: ecr:GetLifecyclePolicy")
	status, out = call(t, srv, "GetLifecyclePolicy", `{"repositoryName":"app"}`, true)
	wantAPIError(t, status, out, "LifecyclePolicyNotFoundException", "Lifecycle policy does not exist")

	srv.FailNext(fakeecr.OpGetLifecyclePolicy, 1, fakeecr.ServerError())
	status, out = call(t, srv, "GetLifecyclePolicy", `{"repositoryName":"app"}`, true)
	if status != 500 || out["__type"] != "ServerException" {
		t.Errorf("got %d %v, want 500 ServerException", status, out)
	}
}

// A retried attempt (amz-sdk-request: attempt=2) is one call, and replays
// the scan status its failed attempt was given instead of moving the script on.
func TestRetriedAttemptsAreOneCallAndReplayTheScript(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	img := srv.AddImages("app", fakeecr.Image{Tags: []string{"v1"}, Digest: "sha256:" + strings.Repeat("1", 64)})[0]
	srv.ScriptScan("app", img.Digest, fakeecr.Scan{Statuses: []string{"PENDING", "IN_PROGRESS", "COMPLETE"}})
	poll := func(attempt int) string {
		t.Helper()
		body := fmt.Sprintf(`{"repositoryName":"app","imageId":{"imageDigest":%q}}`, img.Digest)
		req, err := http.NewRequest(http.MethodPost, srv.URL()+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DescribeImageScanFindings")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Date", "20250101T000000Z")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+strings.Repeat("ab", 32))
		req.Header.Set("amz-sdk-request", fmt.Sprintf("attempt=%d; max=8", attempt))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			ImageScanStatus struct{ Status string } `json:"imageScanStatus"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out.ImageScanStatus.Status
	}
	got := []string{poll(1), poll(2), poll(1), poll(1)}
	if strings.Join(got, ",") != "PENDING,PENDING,IN_PROGRESS,COMPLETE" {
		t.Errorf("statuses = %v, want the retry to replay PENDING", got)
	}
	if calls, attempts := srv.Calls(fakeecr.OpDescribeImageScanFindings), srv.Count(fakeecr.OpDescribeImageScanFindings); calls != 3 || attempts != 4 {
		t.Errorf("calls = %d, attempts = %d, want 3 and 4", calls, attempts)
	}
}
