// Package fakesigstore runs local stand-ins for the services keyless signing
// talks to, so signing and verification can be tested without a network:
//
//   - the GitHub Actions OIDC token endpoint (what ACTIONS_ID_TOKEN_REQUEST_URL
//     points at), minting RS256 JWTs with GitHub's claims;
//   - a certificate authority speaking Fulcio's v2 signing-certificate API
//     (POST /api/v2/signingCert), issuing 10-minute code-signing certificates
//     with the identity Fulcio embeds for GitHub workflows;
//   - a transparency log speaking Rekor v1's POST /api/v1/log/entries,
//     returning signed entry timestamps and inclusion proofs;
//   - an AWS KMS endpoint (see StartKMS) for awskms:// keys.
//
// There is no certificate-transparency log: certificates carry no SCT, so
// verifiers must skip SCT checks.
package fakesigstore

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgca "github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/registry-actions/registry/internal/oidc"
)

// Sigstore is a running token endpoint and certificate authority.
type Sigstore struct {
	// TokenRequestURL is the value for ACTIONS_ID_TOKEN_REQUEST_URL. Like the
	// real one it already carries a query, so clients append "&audience=".
	TokenRequestURL string
	// RequestToken is the value for ACTIONS_ID_TOKEN_REQUEST_TOKEN.
	RequestToken string
	// FulcioURL is the base URL of the certificate authority.
	FulcioURL string
	// RekorURL is the base URL of the transparency log.
	RekorURL string
	// Issuer is the "iss" of minted tokens and the issuer the CA embeds.
	Issuer string

	tokens *tokenIssuer
	ca     *certificateAuthority
	log    *sgca.VirtualSigstore // only its Rekor key is used
	server *httptest.Server

	mu            sync.Mutex
	c             Claims
	failStatus    int
	tokenRequests int
	certsIssued   int
	logSize       int64
}

// Start runs the token endpoint and the CA on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Sigstore {
	t.Helper()
	now := time.Now()
	s := &Sigstore{RequestToken: "fake-request-token", Issuer: oidc.GitHubActionsIssuer, c: DefaultClaims()}
	var err error
	if s.tokens, err = newTokenIssuer(s.Issuer); err != nil {
		t.Fatalf("fakesigstore: token key: %v", err)
	}
	if s.ca, err = newCertificateAuthority(now); err != nil {
		t.Fatalf("fakesigstore: certificate authority: %v", err)
	}
	if s.log, err = newTransparencyLog(); err != nil {
		t.Fatalf("fakesigstore: transparency log: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_apis/distributedtask/idtoken", s.tokenHandler)
	mux.HandleFunc("/api/v2/signingCert", s.signingCertHandler)
	mux.HandleFunc("/api/v1/log/entries", s.rekorHandler)
	s.server = httptest.NewServer(mux)
	t.Cleanup(s.server.Close)
	s.TokenRequestURL = s.server.URL + "/_apis/distributedtask/idtoken?api-version=2.0"
	s.FulcioURL = s.server.URL
	s.RekorURL = s.server.URL
	return s
}

// Env returns the variables a GitHub runner sets for a job with
// "permissions: id-token: write".
func (s *Sigstore) Env() map[string]string {
	return map[string]string{
		"ACTIONS_ID_TOKEN_REQUEST_URL":   s.TokenRequestURL,
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": s.RequestToken,
	}
}

// Identity is the certificate subject (SAN URI) the CA issues for the
// current claims: https://github.com/<job_workflow_ref>.
func (s *Sigstore) Identity() string {
	return "https://github.com/" + s.claims().JobWorkflowRef
}

// Claims returns the claims minted into tokens.
func (s *Sigstore) Claims() Claims { return s.claims() }

// SetClaims changes the claims of tokens minted from now on.
func (s *Sigstore) SetClaims(c Claims) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c = c
}

// FailFulcio makes the CA answer every request with status (0 restores it).
func (s *Sigstore) FailFulcio(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus = status
}

// Close stops all services, making them unreachable.
func (s *Sigstore) Close() { s.server.Close() }

// TokenRequests, CertificatesIssued and LogEntries count successful calls.
func (s *Sigstore) TokenRequests() int      { s.mu.Lock(); defer s.mu.Unlock(); return s.tokenRequests }
func (s *Sigstore) CertificatesIssued() int { s.mu.Lock(); defer s.mu.Unlock(); return s.certsIssued }
func (s *Sigstore) LogEntries() int64       { s.mu.Lock(); defer s.mu.Unlock(); return s.logSize }

// MintToken returns a token as the endpoint would for audience.
func (s *Sigstore) MintToken(audience string) (string, error) {
	return s.tokens.mint(s.claims(), audience, time.Now())
}

// RootCert and IntermediateCert are the CA chain above every leaf.
func (s *Sigstore) RootCert() *x509.Certificate         { return s.ca.root }
func (s *Sigstore) IntermediateCert() *x509.Certificate { return s.ca.intermediate }

// Roots is a pool holding the root certificate.
func (s *Sigstore) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca.root)
	return p
}

// Intermediates is a pool holding the intermediate certificate.
func (s *Sigstore) Intermediates() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca.intermediate)
	return p
}

// TrustedRoot is Sigstore trusted material naming this CA and this
// transparency log (no CT log, no timestamp authority).
func (s *Sigstore) TrustedRoot() *root.TrustedRoot {
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root:                s.ca.root,
			Intermediates:       []*x509.Certificate{s.ca.intermediate},
			ValidityPeriodStart: s.ca.root.NotBefore,
			URI:                 s.FulcioURL,
		}}, nil, nil, s.rekorLogs())
	if err != nil {
		// Only an unsupported media type fails, and the constant is supported.
		panic(err)
	}
	return tr
}

// rekorLogs describes the log for trusted material. The virtual Sigstore
// stores the log ID as the bytes of its hex string, which survives in memory
// but not a round trip through trusted_root.json; use the raw ID.
func (s *Sigstore) rekorLogs() map[string]*root.TransparencyLog {
	logs := s.log.RekorLogs()
	for id, l := range logs {
		if raw, err := hex.DecodeString(id); err == nil {
			l.ID = raw
		}
		l.ValidityPeriodStart = s.ca.root.NotBefore
		l.ValidityPeriodEnd = time.Time{}
	}
	return logs
}

// RekorPublicKeyPEM is the transparency log's key, for verifiers that take
// it on its own (cosign's SIGSTORE_REKOR_PUBLIC_KEY).
func (s *Sigstore) RekorPublicKeyPEM() ([]byte, error) {
	for _, l := range s.log.RekorLogs() {
		return cryptoutils.MarshalPublicKeyToPEM(l.PublicKey)
	}
	return nil, errors.New("no transparency log")
}

// TrustedRootJSON is TrustedRoot in the trusted_root.json format that
// "cosign verify --trusted-root" reads.
func (s *Sigstore) TrustedRootJSON() ([]byte, error) {
	return s.TrustedRoot().MarshalJSON()
}

func (s *Sigstore) claims() Claims {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *Sigstore) fulcioStatus() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failStatus
}

func (s *Sigstore) count(n *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*n++
}
