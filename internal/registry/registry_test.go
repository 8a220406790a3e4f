package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestKindOf(t *testing.T) {
	cases := map[string]Kind{
		"ghcr.io":         KindGHCR,
		"GHCR.IO":         KindGHCR,
		"public.ecr.aws":  KindECRPublic,
		"index.docker.io": KindDockerHub,
		"docker.io":       KindDockerHub,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com":          KindECR,
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com": KindECR,
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":      KindECR,
		"123456789012.dkr-ecr.eu-central-1.on.aws":              KindECR,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com:443":      KindECR,
		"12345678901.dkr.ecr.us-east-1.amazonaws.com":           KindOther, // 11 digits
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.com": KindOther,
		"registry.example.com:5000":                             KindOther,
		"127.0.0.1:5000":                                        KindOther,
	}
	for host, want := range cases {
		if got := KindOf(host); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", host, got, want)
		}
	}
	h, ok := ParseECRHost("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com")
	if !ok || h.AccountID != "123456789012" || h.Region != "us-gov-west-1" || !h.FIPS {
		t.Errorf("ParseECRHost FIPS = %+v, %v", h, ok)
	}
	h, ok = ParseECRHost("210987654321.dkr.ecr.cn-northwest-1.amazonaws.com.cn")
	if !ok || h.Region != "cn-northwest-1" || h.DNSSuffix != "amazonaws.com.cn" {
		t.Errorf("ParseECRHost China = %+v, %v", h, ok)
	}
}

func TestResolverReferencesAndErrors(t *testing.T) {
	r := Resolver{Insecure: []string{"registry.internal:5000"}}
	ref, err := r.Reference("ghcr.io/acme/app:v1")
	if err != nil || ref.(name.Tag).TagStr() != "v1" {
		t.Fatalf("tag ref: %v %v", ref, err)
	}
	d, err := r.Digest("ghcr.io/acme/app@sha256:" + strings.Repeat("a", 64))
	if err != nil || d.DigestStr() == "" {
		t.Fatalf("digest ref: %v %v", d, err)
	}
	if ref, _ := r.Reference("alpine:3"); ref.Context().RegistryStr() != "index.docker.io" {
		t.Errorf("short name resolved to %s", ref.Context().RegistryStr())
	}
	if repo, _ := r.Repository("registry.internal:5000/app"); repo.Scheme() != "http" {
		t.Error("an insecure-registries entry must allow plain HTTP")
	}
	if repo, _ := r.Repository("registry.example.com/app"); repo.Scheme() != "https" {
		t.Error("other registries must use HTTPS")
	}
	for in, want := range map[string]string{
		"ghcr.io/acme/app:v1":      "give a repository without tag or digest",
		"https://ghcr.io/acme/app": "drop the scheme",
		"ghcr.io/acme/my app":      "whitespace",
		"ghcr.io/Acme/App":         "repository names must be lower-case",
		"localhost:5000/App":       "repository names must be lower-case",
		"ghcr.io//app":             "empty component",
		"ghcr.io/acme//app":        "empty component",
		"ghcr.io/acme/app/":        "empty component",
		"ghcr.io/acme/-app":        "not valid",
		"":                         "empty repository",
	} {
		_, err := r.Repository(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Repository(%q) = %v, want mention of %q", in, err, want)
		}
	}
	for in, want := range map[string]string{
		"ghcr.io/Acme/App:v1":      "repository names must be lower-case",
		"localhost:5000/App:v1":    "repository names must be lower-case",
		"ghcr.io//app:v1":          "empty component",
		"registry.example.com//a":  "empty component",
		"ghcr.io/acme/app:-v1":     "invalid image reference",
		"ghcr.io/acme/app@sha256:": "invalid image reference",
	} {
		_, err := r.Reference(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Reference(%q) = %v, want mention of %q", in, err, want)
		}
	}
	// A tag may have capitals; the repository may not.
	if _, err := r.Reference("ghcr.io/acme/app:V1"); err != nil {
		t.Errorf("upper-case tag refused: %v", err)
	}
	if _, err := r.Digest("ghcr.io/acme/app:v1"); err == nil || !strings.Contains(err.Error(), "not pinned to a digest") {
		t.Errorf("Digest of a tag = %v", err)
	}
}

func TestLowercaseGHCRAndValidTag(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/Acme/App":         "ghcr.io/acme/app",
		"ghcr.io/Acme/App:V1-Beta": "ghcr.io/acme/app:V1-Beta",
		"ghcr.io/acme/app":         "ghcr.io/acme/app",
		"docker.io/Acme/App":       "docker.io/Acme/App",
	} {
		if got, _ := LowercaseGHCR(in); got != want {
			t.Errorf("LowercaseGHCR(%q) = %q, want %q", in, got, want)
		}
	}
	for _, ok := range []string{"v1", "latest", "1.2.3-rc.1_b", strings.Repeat("a", 128)} {
		if err := ValidTag(ok); err != nil {
			t.Errorf("ValidTag(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".x", "a/b", "a:b", strings.Repeat("a", 129), "tag with space"} {
		if err := ValidTag(bad); err == nil {
			t.Errorf("ValidTag(%q) accepted", bad)
		}
	}
}

type fakeECR struct {
	calls atomic.Int32
	err   error
}

func (f *fakeECR) AuthorizationToken(_ context.Context, host ECRHost) (string, string, time.Time, error) {
	f.calls.Add(1)
	if f.err != nil {
		return "", "", time.Time{}, f.err
	}
	return "AWS", "token-for-" + host.AccountID, time.Now().Add(12 * time.Hour), nil
}

type staticKeychain map[string]authn.Authenticator

func (s staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := s[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

func basicOf(t *testing.T, kc authn.Keychain, host string) *authn.AuthConfig {
	t.Helper()
	reg, _ := name.NewRegistry(host)
	auth, err := kc.Resolve(reg)
	if err != nil {
		t.Fatalf("resolve %s: %v", host, err)
	}
	cfg, err := auth.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestKeychainPicksCredentialsByRegistryKind(t *testing.T) {
	ecr := &fakeECR{}
	var masked []string
	kc := NewKeychain(Credentials{
		GitHubToken: "ghs_token", GitHubActor: "octocat",
		Username: "ci", Password: "ci-password",
		DockerConfig: staticKeychain{"quay.io": &authn.Basic{Username: "robot", Password: "quay-secret"}},
		ECR:          ecr,
		Mask:         func(s string) { masked = append(masked, s) },
	})
	// registry-username, when given, names the ghcr.io user too.
	if cfg := basicOf(t, kc, "ghcr.io"); cfg.Username != "ci" || cfg.Password != "ghs_token" {
		t.Errorf("ghcr.io got %+v", cfg)
	}
	if cfg := basicOf(t, NewKeychain(Credentials{GitHubToken: "ghs_token", GitHubActor: "octocat"}), "ghcr.io"); cfg.Username != "octocat" {
		t.Errorf("ghcr.io should use GITHUB_ACTOR, got %+v", cfg)
	}
	ecrHost := "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	for i := 0; i < 3; i++ {
		if cfg := basicOf(t, kc, ecrHost); cfg.Username != "AWS" || cfg.Password != "token-for-123456789012" {
			t.Errorf("ECR got %+v", cfg)
		}
	}
	if ecr.calls.Load() != 1 {
		t.Errorf("GetAuthorizationToken called %d times, want one per registry per run", ecr.calls.Load())
	}
	if cfg := basicOf(t, kc, "registry.example.com"); cfg.Username != "ci" || cfg.Password != "ci-password" {
		t.Errorf("explicit credentials not used: %+v", cfg)
	}
	joined := strings.Join(masked, ",")
	for _, s := range []string{"ghs_token", "ci-password", "token-for-123456789012"} {
		if !strings.Contains(joined, s) {
			t.Errorf("%s was not masked", s)
		}
	}

	// Without explicit credentials, other registries fall back to the Docker config.
	kc = NewKeychain(Credentials{DockerConfig: staticKeychain{"quay.io": &authn.Basic{Username: "robot", Password: "quay-secret"}}, Mask: func(s string) { masked = append(masked, s) }})
	if cfg := basicOf(t, kc, "quay.io"); cfg.Username != "robot" {
		t.Errorf("docker config not used: %+v", cfg)
	}
	if !strings.Contains(strings.Join(masked, ","), "quay-secret") {
		t.Error("docker config secret not masked when read")
	}
	if cfg := basicOf(t, kc, "ghcr.io"); cfg.Username != "" {
		t.Errorf("ghcr.io without a token should be anonymous, got %+v", cfg)
	}
}

func TestKeychainECRFailureFallsBackOnlyToDockerConfig(t *testing.T) {
	ecrHost := "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	failing := &fakeECR{err: errors.New("no AWS credentials: use aws-actions/configure-aws-credentials")}
	kc := NewKeychain(Credentials{ECR: failing})
	reg, _ := name.NewRegistry(ecrHost)
	if _, err := kc.Resolve(reg); err == nil || !strings.Contains(err.Error(), "configure-aws-credentials") {
		t.Fatalf("ECR failure without fallback = %v", err)
	}
	kc = NewKeychain(Credentials{ECR: failing, DockerConfig: staticKeychain{ecrHost: &authn.Basic{Username: "AWS", Password: "from-docker-login"}}})
	if cfg := basicOf(t, kc, ecrHost); cfg.Password != "from-docker-login" {
		t.Fatalf("docker login fallback not used: %+v", cfg)
	}
}

func newRetryTransport(inner http.RoundTripper, sleeps *[]time.Duration) *retryTransport {
	return &retryTransport{
		inner:     inner,
		policy:    RetryPolicy{Attempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, MaxRetryAfter: 30 * time.Second, Budget: time.Hour},
		userAgent: "registry-action/test",
		sleep: func(_ context.Context, d time.Duration) error {
			*sleeps = append(*sleeps, d)
			return nil
		},
	}
}

func TestTransportHonoursRetryAfterAndGivesUp(t *testing.T) {
	var hits atomic.Int32
	var ua string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua = r.Header.Get("User-Agent")
		switch hits.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer srv.Close()
	var sleeps []time.Duration
	tr := newRetryTransport(http.DefaultTransport, &sleeps)
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("got %v %v", resp, err)
	}
	if hits.Load() != 3 || len(sleeps) != 2 || sleeps[0] != 7*time.Second {
		t.Fatalf("hits %d, sleeps %v: want Retry-After 7s honoured then a backoff", hits.Load(), sleeps)
	}
	if sleeps[1] < 100*time.Millisecond || sleeps[1] > 200*time.Millisecond {
		t.Errorf("second backoff %v outside [100ms, 200ms]", sleeps[1])
	}
	if ua != "registry-action/test" {
		t.Errorf("User-Agent %q", ua)
	}

	// A server that never recovers: bounded attempts, last answer returned.
	hits.Store(0)
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer dead.Close()
	sleeps = nil
	resp, err = (&http.Client{Transport: tr}).Get(dead.URL)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || hits.Load() != 4 {
		t.Fatalf("dead server: %v %v after %d hits", resp, err, hits.Load())
	}

	// Connection refused: ExhaustedError naming the host.
	addr := dead.Listener.Addr().String()
	dead.Close()
	sleeps = nil
	_, err = (&http.Client{Transport: tr}).Get("http://" + addr)
	var ex *ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 4 || ex.Host != addr {
		t.Fatalf("refused connection: %v", err)
	}
}

func TestTransportDoesNotReplayStreamedBodies(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var sleeps []time.Duration
	tr := newRetryTransport(http.DefaultTransport, &sleeps)
	req, _ := http.NewRequest(http.MethodPatch, srv.URL, io.NopCloser(strings.NewReader("blob bytes")))
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || hits.Load() != 1 {
		t.Fatalf("streamed body was replayed: %d hits", hits.Load())
	}
	// A body that can be rewound is retried.
	hits.Store(0)
	req, _ = http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("manifest"))
	tr.RoundTrip(req)
	if hits.Load() != 4 {
		t.Fatalf("rewindable body tried %d times, want 4", hits.Load())
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := retryAfter("120", now); !ok || d != 2*time.Minute {
		t.Errorf("seconds: %v %v", d, ok)
	}
	if d, ok := retryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now); !ok || d != 30*time.Second {
		t.Errorf("date: %v %v", d, ok)
	}
	if _, ok := retryAfter("soon", now); ok {
		t.Error("garbage accepted")
	}
}
