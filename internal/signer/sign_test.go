package signer

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

var testAnnotations = map[string]string{
	"repository": "org/repo",
	"commit":     "0123456789abcdef0123456789abcdef01234567",
	"workflow":   "org/repo/.github/workflows/ci.yml@refs/heads/main",
	"run":        "https://github.com/org/repo/actions/runs/1000",
}

// TestKeySignVerifyIndex signs a two-platform index with a key in each
// format and on each registry, and verifies the index and both platforms.
func TestKeySignVerifyIndex(t *testing.T) {
	ctx := context.Background()
	kp := newKeyPair(t, "s3cret")
	for _, reg := range registries(t) {
		for i, format := range []Format{FormatLegacy, FormatBundle} {
			t.Run(reg.name+"/"+string(format), func(t *testing.T) {
				f := pushIndex(t, reg.host, "app"+string(format), uint64(10+i))
				opts := keyOptions(kp)
				opts.Format = format
				opts.Annotations = testAnnotations
				s := mustNew(t, opts)
				res, err := s.Sign(ctx, []name.Digest{f.index})
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if !reflect.DeepEqual(res.Signed, f.all()) {
					t.Fatalf("signed %v, want children then index %v", res.Signed, f.all())
				}
				if len(res.Signatures) != 3 || res.Identity.KeyFingerprint == "" || res.Identity.Keyless() {
					t.Fatalf("result %+v", res)
				}
				for _, sig := range res.Signatures {
					switch format {
					case FormatLegacy:
						if !strings.HasSuffix(sig.Reference, ".sig") || !strings.Contains(sig.Reference, strings.Replace(strings.SplitN(sig.Subject, "@", 2)[1], ":", "-", 1)) {
							t.Errorf("legacy reference %q for %s", sig.Reference, sig.Subject)
						}
					case FormatBundle:
						if !strings.Contains(sig.Reference, "@sha256:") || sig.Reference == sig.Subject {
							t.Errorf("bundle reference %q for %s", sig.Reference, sig.Subject)
						}
					}
					if sig.Tlog != nil {
						t.Errorf("tlog entry without tlog upload: %+v", sig.Tlog)
					}
				}
				if res.Signatures[0].Platform != "linux/amd64" || res.Signatures[2].Platform != "" {
					t.Errorf("platforms %q %q", res.Signatures[0].Platform, res.Signatures[2].Platform)
				}

				vres, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{
					PublicKey: kp.publicPath, Recursive: true, IgnoreTlog: true,
				})
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !vres.Verified || len(vres.Images) != 3 {
					t.Fatalf("verify result %+v", vres)
				}
				for _, iv := range vres.Images {
					if !iv.Verified || len(iv.Signatures) != 1 || !iv.Signatures[0].Verified {
						t.Fatalf("image %s not verified: %+v", iv.Digest, iv)
					}
					sc := iv.Signatures[0]
					if sc.Format != format {
						t.Errorf("%s: format %s", iv.Digest, sc.Format)
					}
					if !reflect.DeepEqual(sc.Annotations, testAnnotations) {
						t.Errorf("%s: annotations %v, want %v", iv.Digest, sc.Annotations, testAnnotations)
					}
					if sc.Identity.KeyFingerprint != res.Identity.KeyFingerprint {
						t.Errorf("%s: key %q, signed with %q", iv.Digest, sc.Identity.KeyFingerprint, res.Identity.KeyFingerprint)
					}
				}
				if vres.Images[1].Parent != f.index.String() || vres.Images[1].Platform != "linux/amd64" {
					t.Errorf("child verdict %+v", vres.Images[1])
				}

				// Another key must not verify any of them.
				other := newKeyPair(t, "")
				vres, err = Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: string(other.public), Recursive: true, IgnoreTlog: true})
				var verr *VerificationError
				if !errors.As(err, &verr) || vres == nil || vres.Verified {
					t.Fatalf("verify with another key: err %v", err)
				}
				assertOneLine(t, err)
				for _, iv := range vres.Images {
					if iv.Verified || !strings.HasPrefix(iv.Reason, "bad signature") {
						t.Errorf("%s with another key: verified=%v reason %q", iv.Digest, iv.Verified, iv.Reason)
					}
				}

				cmds := res.VerifyCommands("")
				if len(cmds) != 1 || !strings.Contains(cmds[0], "cosign verify --key=cosign.pub --insecure-ignore-tlog=true") ||
					!strings.HasSuffix(cmds[0], f.index.String()) || (format == FormatBundle) != strings.Contains(cmds[0], "--new-bundle-format") {
					t.Errorf("verify commands %q", cmds)
				}
			})
		}
	}
}

// TestNonRecursiveSignsOnlyTheIndex checks that a verifier asked to check
// every platform notices unsigned children.
func TestNonRecursiveSignsOnlyTheIndex(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	f := pushIndex(t, host, "flat", 3)
	kp := newKeyPair(t, "")
	opts := keyOptions(kp)
	opts.Recursive = false
	res, err := mustNew(t, opts).Sign(ctx, []name.Digest{f.index})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Signed, []string{f.index.String()}) {
		t.Fatalf("signed %v", res.Signed)
	}
	vres, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: kp.publicPath, Recursive: true, IgnoreTlog: true})
	if err == nil || vres.Verified {
		t.Fatal("unsigned platform manifests verified")
	}
	if !vres.Images[0].Verified || vres.Images[1].Reason != "no signature" || vres.Images[2].Reason != "no signature" {
		t.Fatalf("verdicts %+v", vres.Images)
	}
	if !strings.Contains(err.Error(), "no signature") || !strings.Contains(err.Error(), "and 1 more") {
		t.Fatalf("error %q", err)
	}
	// The index alone verifies when platforms are not required.
	if _, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: kp.publicPath, IgnoreTlog: true}); err != nil {
		t.Fatalf("index alone: %v", err)
	}
}

func TestKeySources(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	kp := newKeyPair(t, "pw")
	t.Setenv("SIGNER_TEST_KEY", string(kp.private))
	t.Setenv("SIGNER_TEST_PUB", string(kp.public))
	for i, tc := range []struct{ name, key, pub string }{
		{"pem", string(kp.private), string(kp.public)},
		{"file", kp.privatePath, kp.publicPath},
		{"env", "env://SIGNER_TEST_KEY", "env://SIGNER_TEST_PUB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := pushIndex(t, host, "src"+tc.name, uint64(20+i))
			s := mustNew(t, Options{Key: tc.key, KeyPassword: "pw"})
			if _, err := s.Sign(ctx, []name.Digest{f.children[0]}); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(ctx, []name.Digest{f.children[0]}, VerifyOptions{PublicKey: tc.pub, IgnoreTlog: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	f := pushIndex(t, host, "resolve", 4)
	tag, _ := name.NewTag(host+"/resolve:v1", name.Insecure)
	d, err := Resolve(ctx, tag, nil)
	if err != nil || d.String() != f.index.String() {
		t.Fatalf("Resolve = %v, %v; want %s", d, err, f.index)
	}
	missing, _ := name.NewTag(host+"/resolve:nope", name.Insecure)
	if _, err := Resolve(ctx, missing, nil); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
}

// TestPartialFailure makes the registry refuse the second platform's
// signature: the first stays signed, the index is never signed, and the
// error lists both.
func TestPartialFailure(t *testing.T) {
	ctx := context.Background()
	var refuse string
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if refuse != "" && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/"+refuse) {
				http.Error(w, `{"errors":[{"code":"DENIED","message":"quota exceeded"}]}`, http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	f := pushIndex(t, host, "partial", 5)
	refuse = strings.Replace(f.children[1].DigestStr(), ":", "-", 1) + ".sig"
	kp := newKeyPair(t, "")
	res, err := mustNew(t, keyOptions(kp)).Sign(ctx, []name.Digest{f.index})
	var perr *PartialError
	if !errors.As(err, &perr) {
		t.Fatalf("err %v, want *PartialError", err)
	}
	assertOneLine(t, err)
	if !reflect.DeepEqual(perr.Signed, []string{f.children[0].String()}) ||
		!reflect.DeepEqual(perr.NotSigned, []string{f.children[1].String(), f.index.String()}) {
		t.Fatalf("signed %v not signed %v", perr.Signed, perr.NotSigned)
	}
	if !reflect.DeepEqual(res.Signed, perr.Signed) {
		t.Fatalf("result signed %v", res.Signed)
	}
	if !strings.Contains(err.Error(), "not signed: "+f.children[1].String()+", "+f.index.String()) {
		t.Fatalf("message %q", err)
	}
	// The index carries no signature: nobody sees a signed index over an
	// unsigned platform.
	vres, _ := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: kp.publicPath, IgnoreTlog: true})
	if vres.Images[0].Verified || vres.Images[0].Reason != "no signature" {
		t.Fatalf("index verdict %+v", vres.Images[0])
	}
}

func TestMissingImage(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	f := pushIndex(t, host, "present", 6)
	missing := f.index.Context().Digest("sha256:" + strings.Repeat("ab", 32))
	kp := newKeyPair(t, "")
	s := mustNew(t, keyOptions(kp))
	res, err := s.Sign(context.Background(), []name.Digest{f.index, missing})
	if !errors.Is(err, ErrImageNotFound) || res != nil {
		t.Fatalf("sign missing: %v (result %v)", err, res)
	}
	assertOneLine(t, err)
	if !strings.Contains(err.Error(), missing.String()) {
		t.Fatalf("message does not name the image: %q", err)
	}
	// Nothing was signed: the present image was only planned.
	vres, _ := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: kp.publicPath, IgnoreTlog: true})
	if vres.Verified {
		t.Fatal("present image was signed although the run failed up front")
	}
	if _, err := s.Attest(ctx, missing, []Attestation{{PredicateType: "vuln", Predicate: []byte(`{}`)}}); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("attest missing: %v", err)
	}
	if _, err := Verify(ctx, []name.Digest{missing}, VerifyOptions{PublicKey: kp.publicPath, IgnoreTlog: true}); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("verify missing: %v", err)
	}
}

func TestAnnotationsAndFormatsValidated(t *testing.T) {
	kp := newKeyPair(t, "")
	if _, err := New(context.Background(), Options{Key: string(kp.private), Format: "cbor"}); err == nil || !strings.Contains(err.Error(), "legacy or bundle") {
		t.Fatalf("bad format: %v", err)
	}
	if _, err := New(context.Background(), Options{Key: string(kp.private), Annotations: map[string]string{"": "x"}}); err == nil {
		t.Fatal("empty annotation key accepted")
	}
}

// TestSignsManifestsConcurrentlyAndEachIndexLast signs two indexes: the
// four platform signatures are written at the same time (the registry holds
// each platform's signature until another is in flight), and each index's
// signature only after both of its platforms'.
func TestSignsManifestsConcurrentlyAndEachIndexLast(t *testing.T) {
	ctx := context.Background()
	var (
		mu       sync.Mutex
		order    []string
		inFlight int
		overlap  = make(chan struct{})
		once     sync.Once
	)
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tag := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			if r.Method == http.MethodPut && strings.HasSuffix(tag, ".sig") {
				mu.Lock()
				inFlight++
				if inFlight > 1 {
					once.Do(func() { close(overlap) })
				}
				mu.Unlock()
				select {
				case <-overlap:
				case <-time.After(5 * time.Second): // signed one at a time
				}
				h.ServeHTTP(w, r)
				mu.Lock()
				inFlight--
				order = append(order, strings.TrimSuffix(tag, ".sig"))
				mu.Unlock()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	f, g := pushIndex(t, host, "one", 7), pushIndex(t, host, "two", 8)
	res, err := mustNew(t, keyOptions(newKeyPair(t, ""))).Sign(ctx, []name.Digest{f.index, g.index})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(f.all(), g.all()...); !reflect.DeepEqual(res.Signed, want) {
		t.Fatalf("signed %v, want %v", res.Signed, want)
	}
	select {
	case <-overlap:
	default:
		t.Fatal("no two signatures were written at the same time")
	}
	pos := map[string]int{}
	for i, tag := range order {
		pos[tag] = i
	}
	for _, fx := range []fixture{f, g} {
		idx := strings.Replace(fx.index.DigestStr(), ":", "-", 1)
		for _, c := range fx.children {
			if child := strings.Replace(c.DigestStr(), ":", "-", 1); pos[child] > pos[idx] {
				t.Fatalf("index %s signed before its platform %s: %v", idx, child, order)
			}
		}
	}
}

// TestARunAuthorisesOncePerRepository signs and attests an index and
// counts the registry's API-version checks, which go-containerregistry makes
// before authorising: one for reading and one for writing, however many
// manifests are signed.
func TestARunAuthorisesOncePerRepository(t *testing.T) {
	ctx := context.Background()
	var pings atomic.Int32
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				pings.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	f := pushIndex(t, host, "pings", 9)
	pings.Store(0)
	s := mustNew(t, keyOptions(newKeyPair(t, "")))
	if _, err := s.Sign(ctx, []name.Digest{f.index}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AttestAll(ctx, f.subjects([]Attestation{{PredicateType: "vuln", Predicate: []byte(vulnPredicate)}})); err != nil {
		t.Fatal(err)
	}
	if got := pings.Load(); got > 2 {
		t.Fatalf("%d version checks for 3 signatures and 3 attestations in one repository, want at most 2", got)
	}
}
