package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/registry-actions/registry/internal/failure"
)

// Errors a person can act on: one line, the blob and registry named, what
// to do next, no upload token or query string, and a registry's trouble
// never taken for the caller's input.
func TestExplainGivesOneActionableLineWithoutTokens(t *testing.T) {
	upload := "https://ci:secret@registry.example.com/v2/app/blobs/uploads/2f1c?_state=c2VjcmV0LXN0YXRl&digest=sha256%3Aabc"
	patch := func(err error) error { return &url.Error{Op: "Patch", URL: upload, Err: err} }
	cases := []struct {
		name string
		err  error
		want []string
		code int
	}{
		{"connection reset mid-upload", patch(syscall.ECONNRESET), []string{"connection to registry.example.com broke", "re-run"}, 1},
		{"truncated body", patch(fmt.Errorf("http: ContentLength=1000 with Body length 10: %w", io.ErrUnexpectedEOF)), []string{"broke", "re-run"}, 1},
		{"cancelled by SIGTERM", patch(context.Canceled), []string{"interrupted", "re-run"}, 1},
		{"server error", &transport.Error{StatusCode: http.StatusBadGateway, Request: &http.Request{Method: "PATCH", URL: mustURL(upload)}}, []string{"502", "re-run"}, 1},
		{"rate limited", &transport.Error{StatusCode: http.StatusTooManyRequests}, []string{"429", "concurrency"}, 1},
		{"retries exhausted", &ExhaustedError{Host: "registry.example.com", Attempts: 5, Last: fmt.Errorf("PATCH %s: 503 Service Unavailable", redactURLs(upload))}, []string{"did not answer after 5 attempts", "re-run"}, 1},
		{"refused connection", patch(syscall.ECONNREFUSED), []string{"connection refused", "registry.example.com"}, 1},
		{"unknown failure with a URL", fmt.Errorf("odd: %s", upload), []string{"odd"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Explain(tc.err, "push blob sha256:abc to", "registry.example.com/app", Write)
			msg := err.Error()
			for _, w := range append(tc.want, "sha256:abc", "registry.example.com/app") {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			for _, leak := range []string{"_state", "c2VjcmV0", "secret", "?", "ContentLength", "\n"} {
				if strings.Contains(msg, leak) {
					t.Errorf("%q carries %q", msg, leak)
				}
			}
			if got := failure.Code(err); got != tc.code {
				t.Errorf("exit code %d, want %d", got, tc.code)
			}
		})
	}
	// The caller's input passes through as it is (exit 2).
	corrupt := corrupt("./image", "layer", descOf("sha256:"+strings.Repeat("a", 64), 3), "is truncated")
	if got := Explain(patch(corrupt), "push blob to", "registry.example.com/app", Write); !errors.Is(got, ErrCorruptBlob) || failure.Code(got) != 2 || strings.Contains(got.Error(), "http") {
		t.Errorf("corrupt source became %v", got)
	}
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		`Patch "https://h/v2/a/blobs/uploads/x?_state=tok": EOF`: `Patch "https://h/v2/a/blobs/uploads/x": EOF`,
		"GET http://user:pw@h:5000/v2/?q=1#frag failed":          "GET http://h:5000/v2/ failed",
		"no url here": "no url here",
		"two https://a/x?t=1 and https://b/y?u=2": "two https://a/x and https://b/y",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func descOf(digest string, size int64) v1.Descriptor {
	h, err := v1.NewHash(digest)
	if err != nil {
		panic(err)
	}
	return v1.Descriptor{Digest: h, Size: size}
}
