package fakesigstore

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/sigstore/fulcio/pkg/certificate"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	awskms "github.com/sigstore/sigstore/pkg/signature/kms/aws"

	"github.com/registry-actions/registry/internal/oidc"
)

func fetchToken(t *testing.T, s *Sigstore, bearer string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.TokenRequestURL+"&audience=sigstore", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Value string `json:"value"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Value
}

func TestTokenEndpoint(t *testing.T) {
	s := Start(t)
	if code, _ := fetchToken(t, s, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong request token: status %d, want 401", code)
	}
	code, tok := fetchToken(t, s, s.RequestToken)
	if code != http.StatusOK || tok == "" {
		t.Fatalf("status %d token %q", code, tok)
	}
	std, claims, err := s.tokens.verify(tok, "sigstore", time.Now())
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if std.Issuer != oidc.GitHubActionsIssuer || std.Subject != "repo:org/repo:ref:refs/heads/main" {
		t.Fatalf("iss %q sub %q", std.Issuer, std.Subject)
	}
	if claims.JobWorkflowRef != DefaultClaims().JobWorkflowRef {
		t.Fatalf("job_workflow_ref %q", claims.JobWorkflowRef)
	}
	if _, _, err := s.tokens.verify(tok, "other-audience", time.Now()); err == nil {
		t.Fatal("token verified for an audience it was not minted for")
	}
}

func TestFulcioIssuesWorkflowCertificate(t *testing.T) {
	s := Start(t)
	tok, err := s.MintToken("sigstore")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	fulcio := sign.NewFulcio(&sign.FulcioOptions{BaseURL: s.FulcioURL})
	der, err := fulcio.GetCertificate(context.Background(), kp, &sign.CertificateProviderOptions{IDToken: tok})
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.Roots(), Intermediates: s.Intermediates(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		t.Fatalf("leaf does not chain to the root: %v", err)
	}
	if err := cryptoutils.EqualKeys(cert.PublicKey, kp.GetPublicKey()); err != nil {
		t.Fatalf("certificate is for another key: %v", err)
	}
	if sans := cryptoutils.GetSubjectAlternateNames(cert); len(sans) != 1 || sans[0] != s.Identity() {
		t.Fatalf("SANs %v, want [%s]", sans, s.Identity())
	}
	ext, err := certificate.ParseExtensions(cert.Extensions)
	if err != nil {
		t.Fatal(err)
	}
	if ext.Issuer != oidc.GitHubActionsIssuer || ext.GithubWorkflowRepository != "org/repo" || ext.SourceRepositoryRef != "refs/heads/main" {
		t.Fatalf("extensions %+v", ext)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != 10*time.Minute {
		t.Fatalf("validity %v, want 10m", got)
	}
	if s.CertificatesIssued() != 1 {
		t.Fatalf("issued %d", s.CertificatesIssued())
	}
	if _, err := s.TrustedRootJSON(); err != nil {
		t.Fatalf("trusted root JSON: %v", err)
	}
}

func TestFulcioRejects(t *testing.T) {
	s := Start(t)
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	fulcio := sign.NewFulcio(&sign.FulcioOptions{BaseURL: s.FulcioURL})
	other := Start(t)
	foreign, err := other.MintToken("sigstore")
	if err != nil {
		t.Fatal(err)
	}
	_, err = fulcio.GetCertificate(context.Background(), kp, &sign.CertificateProviderOptions{IDToken: foreign})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("token from another issuer key: err %v, want 401", err)
	}
	wrongAud, err := s.MintToken("not-sigstore")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fulcio.GetCertificate(context.Background(), kp, &sign.CertificateProviderOptions{IDToken: wrongAud}); err == nil {
		t.Fatal("token for another audience accepted")
	}
	s.FailFulcio(http.StatusServiceUnavailable)
	good, err := s.MintToken("sigstore")
	if err != nil {
		t.Fatal(err)
	}
	// sigstore-go's client reports a final 5xx as a read on a closed body, so
	// check the status on the wire as well.
	if _, err := fulcio.GetCertificate(context.Background(), kp, &sign.CertificateProviderOptions{IDToken: good}); err == nil {
		t.Fatal("failing CA issued a certificate")
	}
	req, err := http.NewRequest(http.MethodPost, s.FulcioURL+"/api/v2/signingCert", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+good)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("failing CA: status %d, want 503", resp.StatusCode)
	}
	if s.CertificatesIssued() != 0 {
		t.Fatalf("issued %d certificates on rejected requests", s.CertificatesIssued())
	}
}

func TestKMSWithSigstoreProvider(t *testing.T) {
	k := StartKMS(t)
	for key, v := range k.Env() {
		t.Setenv(key, v)
	}
	pub, err := k.CreateKey("signing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.CreateDeniedKey("locked"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sv, err := awskms.LoadSignerVerifier(ctx, "awskms:///alias/signing")
	if err != nil {
		t.Fatal(err)
	}
	got, err := sv.PublicKey()
	if err != nil {
		t.Fatalf("PublicKey: %v", err)
	}
	if err := cryptoutils.EqualKeys(got, pub); err != nil {
		t.Fatal(err)
	}
	msg := []byte("payload")
	sig, err := sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("SignMessage: %v", err)
	}
	v, err := signature.LoadVerifier(pub, 5) // crypto.SHA256
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		t.Fatalf("KMS signature does not verify: %v", err)
	}
	if k.Signs() != 1 {
		t.Fatalf("signs %d", k.Signs())
	}

	for alias, code := range map[string]string{"missing": "NotFoundException", "locked": "AccessDeniedException"} {
		sv, err := awskms.LoadSignerVerifier(ctx, "awskms:///alias/"+alias)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sv.PublicKey()
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
			t.Fatalf("alias %s: err %v, want %s", alias, err, code)
		}
	}
}

func TestRekorRejectsBadEntries(t *testing.T) {
	s := Start(t)
	for _, body := range []string{`not json`, `{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{}}`} {
		resp, err := http.Post(s.RekorURL+"/api/v1/log/entries", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", body, resp.StatusCode)
		}
	}
	if s.LogEntries() != 0 {
		t.Fatalf("%d entries logged", s.LogEntries())
	}
}
