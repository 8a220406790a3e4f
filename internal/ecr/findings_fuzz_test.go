package ecr_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/registry-actions/registry/internal/ecr"
)

// FuzzScanFindings serves arbitrary bodies as ECR's DescribeImageScanFindings
// answer (status 200 or an error status) to the real SDK client and maps
// what it decodes into findings. ECR's findings are text from outside the
// workflow file: nothing may panic or hang, every description and error
// must be one line, and a page token repeated forever must end the paging.
// Seed corpus: testdata/fuzz/FuzzScanFindings/.
func FuzzScanFindings(f *testing.F) {
	f.Add([]byte(`{"imageScanStatus":{"status":"COMPLETE"},"imageScanFindings":{"findings":[{"name":"CVE-2024-1","severity":"HIGH","description":"a\nb","attributes":[{"key":"package_name","value":"openssl"},{"key":"CVSS3_SCORE","value":"7.5"}]}]}}`), uint16(200))
	f.Fuzz(func(t *testing.T, body []byte, status uint16) {
		code := int(status%500) + 100
		if code < 200 {
			code = 200
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			if code >= 400 {
				w.Header().Set("X-Amzn-Errortype", "ValidationException")
			}
			w.WriteHeader(code)
			w.Write(body)
		}))
		defer srv.Close()
		c, err := ecr.New(context.Background(), ecr.Options{
			Region: "us-east-1", Endpoint: srv.URL, MaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret-key", ""),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sf, err := c.ScanFindings(ctx, "team/app", "sha256:"+strings.Repeat("a", 64), ecr.WaitOptions{Timeout: time.Millisecond, PollInterval: time.Millisecond})
		if ctx.Err() != nil {
			t.Fatal("ScanFindings did not return: a malformed answer must not keep it waiting")
		}
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		for _, fd := range sf.Findings {
			if strings.ContainsAny(fd.Description, "\r\n") {
				t.Fatalf("multi-line description: %q", fd.Description)
			}
		}
	})
}
