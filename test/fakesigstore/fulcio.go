package fakesigstore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 5280 key identifiers are SHA-1 by definition
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sigstore/fulcio/pkg/certificate"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// certificateAuthority is a root and an intermediate, like Fulcio's
// public-good chain, issuing leaf certificates from the intermediate.
type certificateAuthority struct {
	root, intermediate *x509.Certificate
	intermediateKey    *ecdsa.PrivateKey
	leafTTL            time.Duration
}

func newCertificateAuthority(now time.Time) (*certificateAuthority, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "fake-sigstore", Organization: []string{"fake-sigstore.test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
		SubjectKeyId:          keyID(rootKey.Public()),
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}

	interKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "fake-sigstore-intermediate", Organization: []string{"fake-sigstore.test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(interKey.Public()),
		AuthorityKeyId:        root.SubjectKeyId,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	inter, err := x509.ParseCertificate(interDER)
	if err != nil {
		return nil, err
	}
	return &certificateAuthority{root: root, intermediate: inter, intermediateKey: interKey, leafTTL: 10 * time.Minute}, nil
}

// issue makes a code-signing certificate for pub with the identity Fulcio
// derives from a GitHub Actions token: the SAN URI is the job workflow ref
// and the extensions carry the issuer and workflow facts (the mapping of
// Fulcio's GitHub workflow principal).
func (ca *certificateAuthority) issue(pub crypto.PublicKey, issuer string, c Claims, now time.Time) (*x509.Certificate, error) {
	base, _ := url.Parse("https://github.com/")
	ext, err := certificate.Extensions{
		Issuer:                              issuer,
		GithubWorkflowTrigger:               c.EventName,
		GithubWorkflowSHA:                   c.SHA,
		GithubWorkflowName:                  c.Workflow,
		GithubWorkflowRepository:            c.Repository,
		GithubWorkflowRef:                   c.Ref,
		BuildSignerURI:                      base.JoinPath(c.JobWorkflowRef).String(),
		BuildSignerDigest:                   c.JobWorkflowSHA,
		RunnerEnvironment:                   c.RunnerEnvironment,
		SourceRepositoryURI:                 base.JoinPath(c.Repository).String(),
		SourceRepositoryDigest:              c.SHA,
		SourceRepositoryRef:                 c.Ref,
		SourceRepositoryIdentifier:          c.RepositoryID,
		SourceRepositoryOwnerURI:            base.JoinPath(c.RepositoryOwner).String(),
		SourceRepositoryOwnerIdentifier:     c.RepositoryOwnerID,
		BuildConfigURI:                      base.JoinPath(c.WorkflowRef).String(),
		BuildConfigDigest:                   c.WorkflowSHA,
		BuildTrigger:                        c.EventName,
		RunInvocationURI:                    base.JoinPath(c.Repository, "actions/runs", c.RunID, "attempts", c.RunAttempt).String(),
		SourceRepositoryVisibilityAtSigning: c.RepositoryVisibility,
	}.Render()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    randomSerial(),
		NotBefore:       now,
		NotAfter:        now.Add(ca.leafTTL),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		SubjectKeyId:    keyID(pub),
		AuthorityKeyId:  ca.intermediate.SubjectKeyId,
		URIs:            []*url.URL{base.JoinPath(c.JobWorkflowRef)},
		ExtraExtensions: ext,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.intermediate, pub, ca.intermediateKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// signingCertRequest is the body of Fulcio's POST /api/v2/signingCert.
type signingCertRequest struct {
	Credentials *struct {
		OIDCIdentityToken string `json:"oidcIdentityToken"`
	} `json:"credentials"`
	PublicKeyRequest *struct {
		PublicKey struct {
			Algorithm string `json:"algorithm"`
			Content   string `json:"content"`
		} `json:"publicKey"`
		ProofOfPossession string `json:"proofOfPossession"`
	} `json:"publicKeyRequest"`
	CertificateSigningRequest string `json:"certificateSigningRequest"`
}

// fulcioError answers like Fulcio's gRPC gateway: {"code": N, "message": "..."}.
func fulcioError(w http.ResponseWriter, status, grpcCode int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": grpcCode, "message": msg, "details": []any{}})
}

func (s *Sigstore) signingCertHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		fulcioError(w, http.StatusMethodNotAllowed, 12, "method not allowed")
		return
	}
	if s.fulcioStatus() != 0 {
		fulcioError(w, s.fulcioStatus(), 14, "fulcio unavailable")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fulcioError(w, http.StatusBadRequest, 3, "read body")
		return
	}
	var req signingCertRequest
	if err := json.Unmarshal(body, &req); err != nil {
		fulcioError(w, http.StatusBadRequest, 3, "There was an error processing the request body")
		return
	}
	rawToken := ""
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "bearer") {
		rawToken = tok
	}
	if req.Credentials != nil && req.Credentials.OIDCIdentityToken != "" {
		rawToken = req.Credentials.OIDCIdentityToken
	}
	now := time.Now()
	std, claims, err := s.tokens.verify(rawToken, "sigstore", now)
	if err != nil {
		fulcioError(w, http.StatusUnauthorized, 16, "There was an error processing the identity token")
		return
	}
	if req.PublicKeyRequest == nil {
		// This stand-in supports the public-key form only, which is what
		// sigstore-go and cosign send.
		fulcioError(w, http.StatusBadRequest, 3, "publicKeyRequest is required")
		return
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
	if err != nil {
		fulcioError(w, http.StatusBadRequest, 3, "The public key supplied in the request could not be parsed")
		return
	}
	// Proof of possession: a signature over the token's subject, as Fulcio
	// requires for GitHub workflow identities.
	proof, err := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
	if err != nil {
		fulcioError(w, http.StatusBadRequest, 3, "proof of possession is not base64")
		return
	}
	verifier, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		fulcioError(w, http.StatusBadRequest, 3, "unsupported public key")
		return
	}
	if err := verifier.VerifySignature(bytes.NewReader(proof), strings.NewReader(std.Subject)); err != nil {
		fulcioError(w, http.StatusBadRequest, 3, "The signature supplied in the request could not be verified")
		return
	}
	leaf, err := s.ca.issue(pub, std.Issuer, claims, now)
	if err != nil {
		fulcioError(w, http.StatusInternalServerError, 13, "error issuing certificate")
		return
	}
	s.count(&s.certsIssued)
	chain := []string{pemCert(leaf), pemCert(s.ca.intermediate), pemCert(s.ca.root)}
	// Without a CT log Fulcio answers with a detached SCT field left empty.
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"signedCertificateDetachedSct": map[string]any{
			"chain": map[string]any{"certificates": chain},
		},
	})
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		panic(fmt.Sprintf("serial: %v", err))
	}
	return n
}

func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha1.Sum(der) //nolint:gosec // key identifier, not a security property
	return sum[:]
}
