package signer

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/oidc"
	"github.com/registry-actions/registry/test/fakesigstore"
)

func keylessOptions(fs *fakesigstore.Sigstore) Options {
	env := fs.Env()
	return Options{
		IDToken:          GitHubActionsToken(env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]),
		FulcioURL:        fs.FulcioURL,
		Recursive:        true,
		ServiceAttempts:  2,
		ServiceRetryWait: 10e6, // 10ms
	}
}

func keylessVerifyOptions(fs *fakesigstore.Sigstore) VerifyOptions {
	return VerifyOptions{
		CertificateIdentity: fs.Identity(),
		TrustedMaterial:     fs.TrustedRoot(),
		IgnoreSCT:           true, // the local CA logs to no CT log
		IgnoreTlog:          true, // and there is no local Rekor
		Recursive:           true,
	}
}

// TestKeyless signs through the local Actions token endpoint and the local
// Fulcio-shaped CA, then verifies against that CA's root with the expected
// identity, and rejects other identities and issuers.
func TestKeyless(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	fs := fakesigstore.Start(t)
	for i, format := range []Format{FormatLegacy, FormatBundle} {
		t.Run(string(format), func(t *testing.T) {
			f := pushIndex(t, host, "keyless"+string(format), uint64(30+i))
			opts := keylessOptions(fs)
			opts.Format = format
			opts.Annotations = testAnnotations
			before := fs.CertificatesIssued()
			s := mustNew(t, opts)
			id := s.Identity()
			if id.Subject != fs.Identity() || id.Issuer != oidc.GitHubActionsIssuer || id.KeyFingerprint != "" {
				t.Fatalf("identity %+v, want %s from %s", id, fs.Identity(), oidc.GitHubActionsIssuer)
			}
			res, err := s.Sign(ctx, []name.Digest{f.index})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if len(res.Signed) != 3 {
				t.Fatalf("signed %v", res.Signed)
			}
			// One certificate serves the whole run.
			if got := fs.CertificatesIssued() - before; got != 1 {
				t.Fatalf("%d certificates issued for one run", got)
			}

			vres, err := Verify(ctx, []name.Digest{f.index}, keylessVerifyOptions(fs))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for _, iv := range vres.Images {
				sc := iv.Signatures[0]
				if !iv.Verified || sc.Identity.Subject != fs.Identity() || sc.Identity.Issuer != oidc.GitHubActionsIssuer {
					t.Fatalf("%s: %+v", iv.Digest, iv)
				}
				if sc.SigningTime == nil || sc.TimeSource != "certificate" {
					t.Errorf("%s: signing time %v from %q", iv.Digest, sc.SigningTime, sc.TimeSource)
				}
				if sc.Annotations["commit"] != testAnnotations["commit"] {
					t.Errorf("%s: annotations %v", iv.Digest, sc.Annotations)
				}
			}

			re := keylessVerifyOptions(fs)
			re.CertificateIdentity = ""
			re.CertificateIdentityRegexp = `^https://github\.com/org/repo/\.github/workflows/ci\.yml@refs/heads/main$`
			if _, err := Verify(ctx, []name.Digest{f.index}, re); err != nil {
				t.Fatalf("identity regexp: %v", err)
			}

			wrongID := keylessVerifyOptions(fs)
			wrongID.CertificateIdentity = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"
			vres, err = Verify(ctx, []name.Digest{f.index}, wrongID)
			var verr *VerificationError
			if !errors.As(err, &verr) || vres.Verified || !strings.HasPrefix(vres.Images[0].Reason, "wrong identity") {
				t.Fatalf("wrong identity: err %v, verdict %+v", err, vres)
			}
			assertOneLine(t, err)
			// The summary still shows who did sign.
			if got := vres.Images[0].Signatures[0].Identity.Subject; got != fs.Identity() {
				t.Fatalf("rejected signature shows subject %q", got)
			}

			wrongIssuer := keylessVerifyOptions(fs)
			wrongIssuer.CertificateOIDCIssuer = "https://accounts.google.com"
			if vres, err := Verify(ctx, []name.Digest{f.index}, wrongIssuer); err == nil || !strings.HasPrefix(vres.Images[0].Reason, "wrong identity") {
				t.Fatalf("wrong issuer: err %v", err)
			}

			// A key cannot stand in for the identity.
			kp := newKeyPair(t, "")
			if _, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: string(kp.public), IgnoreTlog: true}); err == nil {
				t.Fatal("keyless signature verified with an unrelated key")
			}

			// Another CA's root must not be trusted.
			stranger := fakesigstore.Start(t)
			untrusted := keylessVerifyOptions(fs)
			untrusted.TrustedMaterial = stranger.TrustedRoot()
			if vres, err := Verify(ctx, []name.Digest{f.index}, untrusted); err == nil || !strings.HasPrefix(vres.Images[0].Reason, "untrusted certificate") {
				t.Fatalf("foreign root: err %v, reason %q", err, vres.Images[0].Reason)
			}

			cmds := res.VerifyCommands("")
			want := "cosign verify --certificate-identity=https://github.com/org/repo/.github/workflows/ci.yml@refs/heads/main --certificate-oidc-issuer=https://token.actions.githubusercontent.com --insecure-ignore-tlog=true"
			if !strings.HasPrefix(cmds[0], want) {
				t.Fatalf("verify command %q, want prefix %q", cmds[0], want)
			}
		})
	}
}

func TestKeylessWithoutOIDC(t *testing.T) {
	for _, opts := range []Options{
		{},
		{IDToken: GitHubActionsToken("", "")},
		{IDToken: GitHubActionsToken("http://127.0.0.1:1/token", "")},
	} {
		_, err := New(context.Background(), opts)
		if !errors.Is(err, ErrNoIDToken) {
			t.Fatalf("err %v, want ErrNoIDToken", err)
		}
		assertOneLine(t, err)
		if !strings.Contains(err.Error(), "permissions: id-token: write") {
			t.Fatalf("message does not name the fix: %q", err)
		}
	}
}

func TestKeylessTokenRejected(t *testing.T) {
	fs := fakesigstore.Start(t)
	opts := keylessOptions(fs)
	opts.IDToken = GitHubActionsToken(fs.TokenRequestURL, "not-the-request-token")
	_, err := New(context.Background(), opts)
	var se *ServiceError
	if !errors.As(err, &se) || se.Service != "OIDC token endpoint" || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "not-the-request-token") {
		t.Fatal("the request token leaked into the error")
	}
}

func TestFulcioUnreachable(t *testing.T) {
	fs := fakesigstore.Start(t)
	opts := keylessOptions(fs)
	dead := deadURL(t)
	opts.FulcioURL = dead
	_, err := New(context.Background(), opts)
	var se *ServiceError
	if !errors.As(err, &se) || se.Service != "Fulcio" {
		t.Fatalf("err %v, want Fulcio ServiceError", err)
	}
	assertOneLine(t, err)
	if !strings.HasPrefix(err.Error(), "Fulcio at "+dead+" unreachable after 2 attempts") || !strings.Contains(err.Error(), "fulcio-url") {
		t.Fatalf("message %q", err)
	}
}

func TestFulcioFailing(t *testing.T) {
	fs := fakesigstore.Start(t)
	fs.FailFulcio(http.StatusServiceUnavailable)
	_, err := New(context.Background(), keylessOptions(fs))
	var se *ServiceError
	if !errors.As(err, &se) || se.Service != "Fulcio" || !strings.Contains(err.Error(), "failed after 2 attempts") {
		t.Fatalf("err %v", err)
	}
	if fs.CertificatesIssued() != 0 {
		t.Fatal("a certificate was issued")
	}
}

// TestRekorUnreachable signs with the tlog on against a dead Rekor: nothing
// is written and the error names Rekor and the fix.
func TestRekorUnreachable(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	f := pushIndex(t, host, "rekor", 7)
	kp := newKeyPair(t, "")
	dead := deadURL(t)
	for _, format := range []Format{FormatLegacy, FormatBundle} {
		opts := keyOptions(kp)
		opts.Format = format
		opts.TlogUpload = true
		opts.RekorURL = dead
		opts.ServiceAttempts = 2
		opts.ServiceRetryWait = 10e6
		res, err := mustNew(t, opts).Sign(ctx, []name.Digest{f.index})
		var se *ServiceError
		var perr *PartialError
		if !errors.As(err, &se) || se.Service != "Rekor" || !errors.As(err, &perr) {
			t.Fatalf("%s: err %v", format, err)
		}
		assertOneLine(t, err)
		if !strings.Contains(err.Error(), "Rekor at "+dead+" unreachable") || !strings.Contains(err.Error(), "tlog-upload: false") {
			t.Fatalf("%s: message %q", format, err)
		}
		if len(res.Signed) != 0 || len(perr.NotSigned) != 3 {
			t.Fatalf("%s: signed %v, not signed %v", format, res.Signed, perr.NotSigned)
		}
	}
	if vres, _ := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: kp.publicPath, IgnoreTlog: true}); vres.Images[0].Reason != "no signature" {
		t.Fatalf("something was written: %+v", vres.Images[0])
	}
}

// deadURL is an address nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	fs := fakesigstore.Start(t)
	u := fs.FulcioURL
	fs.Close()
	return u
}
