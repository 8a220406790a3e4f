package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TokenSource returns an OIDC identity token whose audience is "sigstore".
type TokenSource func(ctx context.Context) (string, error)

// GitHubActionsToken asks the Actions runtime for a token, given the values
// of ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN (the
// runner sets both when the job has "permissions: id-token: write"). Empty
// values give ErrNoIDToken.
func GitHubActionsToken(requestURL, requestToken string) TokenSource {
	client := &http.Client{Timeout: 30 * time.Second}
	return func(ctx context.Context) (string, error) {
		if requestURL == "" || requestToken == "" {
			return "", ErrNoIDToken
		}
		u, err := url.Parse(requestURL)
		if err != nil {
			return "", fmt.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: %w", err)
		}
		q := u.Query()
		q.Set("audience", "sigstore")
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "bearer "+requestToken)
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", &httpStatusError{status: resp.StatusCode}
		}
		var tok struct {
			Value string `json:"value"`
		}
		if err := json.Unmarshal(body, &tok); err != nil || tok.Value == "" {
			return "", errors.New("token endpoint answered without a token")
		}
		return tok.Value, nil
	}
}

type httpStatusError struct{ status int }

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

// keylessSigner holds one ephemeral key and the Fulcio certificate for it.
// One certificate serves every signature of a run (it is valid for ten
// minutes); a new key and certificate are fetched when it nears expiry.
type keylessSigner struct {
	token     TokenSource
	fulcioURL string
	retry     retryPolicy

	mu      sync.Mutex
	sv      signature.SignerVerifier
	cert    *x509.Certificate
	certPEM []byte
}

// certRefreshMargin leaves room for a signature and its upload to finish
// while the certificate is still valid.
const certRefreshMargin = 2 * time.Minute

// current returns a signer and its certificate, renewing both if needed.
func (k *keylessSigner) current(ctx context.Context) (signature.SignerVerifier, *x509.Certificate, []byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cert != nil && time.Until(k.cert.NotAfter) > certRefreshMargin {
		return k.sv, k.cert, k.certPEM, nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, nil, nil, err
	}
	var token string
	err = k.retry.do(ctx, func() (bool, error) {
		var err error
		token, err = k.token(ctx)
		var se *httpStatusError
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, ErrNoIDToken):
			return false, err
		case errors.As(err, &se):
			return se.status >= 500 || se.status == http.StatusTooManyRequests, err
		default:
			return isUnreachable(err), err
		}
	})
	if err != nil {
		if errors.Is(err, ErrNoIDToken) {
			return nil, nil, nil, err
		}
		return nil, nil, nil, &ServiceError{Service: "OIDC token endpoint", URL: "ACTIONS_ID_TOKEN_REQUEST_URL", Attempts: k.retry.attempts, Fix: "check that the job has `permissions: id-token: write`", Err: err}
	}

	fulcio := sign.NewFulcio(&sign.FulcioOptions{BaseURL: strings.TrimSuffix(k.fulcioURL, "/"), Timeout: 30 * time.Second})
	kp := &ecdsaKeypair{priv: priv}
	var der []byte
	attempts := 0
	err = k.retry.do(ctx, func() (bool, error) {
		attempts++
		var err error
		der, err = fulcio.GetCertificate(ctx, kp, &sign.CertificateProviderOptions{IDToken: token})
		if err == nil {
			return false, nil
		}
		// sigstore-go retries nothing on its own (Retries is zero) and
		// reports a 5xx as a read on a closed body; both are worth another try.
		msg := err.Error()
		retryable := isUnreachable(err) || strings.Contains(msg, "Fulcio returned 5") ||
			strings.Contains(msg, "Fulcio returned 429") || strings.Contains(msg, "closed response body")
		return retryable, err
	})
	if err != nil {
		fix := "check fulcio-url"
		if strings.Contains(err.Error(), "Fulcio returned 401") || strings.Contains(err.Error(), "Fulcio returned 403") {
			fix = "Fulcio refused the job's OIDC token; check fulcio-url and that the token issuer is one it trusts"
		}
		return nil, nil, nil, &ServiceError{Service: "Fulcio", URL: k.fulcioURL, Attempts: attempts, Fix: fix, Err: err}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fulcio at %s returned an unreadable certificate: %w", k.fulcioURL, err)
	}
	if err := cryptoutils.EqualKeys(cert.PublicKey, priv.Public()); err != nil {
		return nil, nil, nil, fmt.Errorf("fulcio at %s returned a certificate for another key", k.fulcioURL)
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		return nil, nil, nil, err
	}
	k.sv, k.cert, k.certPEM = sv, cert, certPEM
	return sv, cert, certPEM, nil
}

// certIdentity is what verifiers match: the certificate's first SAN and the
// OIDC issuer Fulcio embedded.
func certIdentity(cert *x509.Certificate) Identity {
	ce := cosign.CertExtensions{Cert: cert}
	id := Identity{Issuer: ce.GetIssuer()}
	if sans := cryptoutils.GetSubjectAlternateNames(cert); len(sans) > 0 {
		id.Subject = sans[0]
	}
	return id
}

// ecdsaKeypair lets sigstore-go's Fulcio client prove possession of our
// ephemeral key.
type ecdsaKeypair struct{ priv *ecdsa.PrivateKey }

func (e *ecdsaKeypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}

func (e *ecdsaKeypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

func (e *ecdsaKeypair) GetHint() []byte {
	der, _ := x509.MarshalPKIXPublicKey(e.priv.Public())
	sum := sha256.Sum256(der)
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

func (e *ecdsaKeypair) GetKeyAlgorithm() string { return "ECDSA" }

func (e *ecdsaKeypair) GetPublicKey() crypto.PublicKey { return e.priv.Public() }

func (e *ecdsaKeypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(e.priv.Public())
	return string(b), err
}

func (e *ecdsaKeypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	digest := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, e.priv, digest[:])
	return sig, digest[:], err
}

var _ sign.Keypair = (*ecdsaKeypair)(nil)

// retryPolicy retries calls to Sigstore services with exponential backoff.
type retryPolicy struct {
	attempts int
	wait     time.Duration
}

// do runs fn until it succeeds, says the error is final, or attempts run out.
func (p retryPolicy) do(ctx context.Context, fn func() (retryable bool, err error)) error {
	wait := p.wait
	var err error
	for i := 0; i < max(p.attempts, 1); i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
			wait *= 2
		}
		var retryable bool
		retryable, err = fn()
		if err == nil || !retryable {
			return err
		}
	}
	return err
}

// signData signs raw bytes; used for payloads, which signers hash themselves.
func signData(ctx context.Context, sv signature.SignerVerifier, data []byte) ([]byte, error) {
	return sv.SignMessage(bytes.NewReader(data), sigOptsCtx(ctx)...)
}
