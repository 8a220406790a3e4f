// Package signer signs container images and in-toto attestations by digest
// with Cosign (github.com/sigstore/cosign/v2 used as a library) and verifies
// them. It is the only package that imports Cosign.
//
// Signatures are made with a private key (PEM content, a file, env://VAR or
// an awskms:// key) or keyless: an ephemeral key certified by Fulcio for the
// job's OIDC identity, with the signature recorded in Rekor. They are stored
// either in Cosign's legacy layout (sha256-<hex>.sig / .att tags) or as
// Sigstore bundles attached as OCI 1.1 referrers.
//
// The package knows nothing about workflow inputs or the environment: the
// caller passes option structs (including the OIDC request URL and token)
// and gets result structs back.
package signer

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	"github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/sigstore/pkg/signature"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
)

// Format is how signatures are stored in the registry.
type Format string

const (
	// FormatLegacy stores signatures under sha256-<hex>.sig and attestations
	// under sha256-<hex>.att tags, which every Cosign version reads.
	FormatLegacy Format = "legacy"
	// FormatBundle stores each signature or attestation as a Sigstore bundle
	// (application/vnd.dev.sigstore.bundle.v0.3+json) in an OCI 1.1 referrer
	// manifest whose subject is the signed digest.
	FormatBundle Format = "bundle"
)

// Options configure a Signer. The zero value is not usable: give Key or
// IDToken. Unlike the cosign CLI, nothing is read from the environment
// except what a key reference names (env://VAR) and the AWS SDK's own
// configuration for awskms:// keys.
type Options struct {
	// Key is the private key: PEM content, a file path, env://VAR or an AWS
	// KMS key (awskms:///alias/name, awskms:///<key-id>, awskms:///<arn>;
	// the AWS SDK finds credentials, region and AWS_ENDPOINT_URL_KMS the
	// usual way). Empty means keyless.
	Key string
	// KeyPassword decrypts an encrypted cosign private key.
	KeyPassword string
	// LoadedKey is Key already loaded by LoadKey (with KeyPassword), so
	// that decrypting it could overlap other work; nil loads Key here.
	LoadedKey *Key

	// IDToken supplies the OIDC token for keyless signing; see
	// GitHubActionsToken. Required when Key is empty.
	IDToken TokenSource
	// FulcioURL is the certificate authority for keyless signing
	// (default DefaultFulcioURL).
	FulcioURL string

	// TlogUpload records every signature in the Rekor transparency log at
	// RekorURL (default DefaultRekorURL). Keyless signatures are only
	// verifiable after their ten-minute certificate expires when recorded.
	TlogUpload bool
	RekorURL   string

	// Format of stored signatures (default FormatLegacy).
	Format Format
	// Recursive signs an index and every manifest it lists (children first).
	Recursive bool
	// Annotations are added to every image signature's signed payload.
	Annotations map[string]string
	// ReplaceAttestations drops earlier legacy attestations of the same
	// predicate type instead of keeping them next to the new one.
	ReplaceAttestations bool

	// RemoteOptions carry registry auth, transport and context.
	RemoteOptions []remote.Option
	// Concurrency bounds the manifests read and the signatures and
	// attestations written at once (default 8).
	Concurrency int

	// ServiceAttempts and ServiceRetryWait bound retries of Fulcio, Rekor
	// and the token endpoint (defaults 4 attempts, 1s doubling).
	ServiceAttempts  int
	ServiceRetryWait time.Duration
}

// Signer signs with one key, or one keyless identity, for a whole run.
type Signer struct {
	opts     Options
	key      signature.SignerVerifier
	keyless  *keylessSigner
	rekor    *client.Rekor
	retry    retryPolicy
	identity Identity
}

// New loads the key, or for keyless signing obtains the first certificate,
// so that a bad key, a missing OIDC permission or an unreachable Fulcio fail
// before anything is written.
func New(ctx context.Context, opts Options) (*Signer, error) {
	s, err := newSigner(ctx, opts)
	return s, singleLine(err)
}

func newSigner(ctx context.Context, opts Options) (*Signer, error) {
	if opts.FulcioURL == "" {
		opts.FulcioURL = DefaultFulcioURL
	}
	if opts.RekorURL == "" {
		opts.RekorURL = DefaultRekorURL
	}
	switch opts.Format {
	case "":
		opts.Format = FormatLegacy
	case FormatLegacy, FormatBundle:
	default:
		return nil, fmt.Errorf("signature-format %q: use legacy or bundle", opts.Format)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.ServiceAttempts <= 0 {
		opts.ServiceAttempts = 4
	}
	if opts.ServiceRetryWait <= 0 {
		opts.ServiceRetryWait = time.Second
	}
	for k := range opts.Annotations {
		if k == "" {
			return nil, errors.New("annotations: empty key: use key=value")
		}
	}
	var err error
	if opts.RemoteOptions, err = reuseConnections(opts.RemoteOptions); err != nil {
		return nil, err
	}
	s := &Signer{
		opts:  opts,
		retry: retryPolicy{attempts: opts.ServiceAttempts, wait: opts.ServiceRetryWait},
	}

	if opts.Key != "" {
		loaded := opts.LoadedKey
		if loaded == nil || loaded.ref != opts.Key {
			var err error
			if loaded, err = loadKey(ctx, opts.Key, opts.KeyPassword); err != nil {
				return nil, err
			}
		}
		sv, kind := loaded.sv, loaded.kind
		pub, err := sv.PublicKey(sigopts.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		s.key = sv
		s.identity = Identity{KeyFingerprint: fingerprint(pub)}
		if kind == keyAWSKMS {
			// Verifiers can name the KMS key as it is.
			s.identity.KeyRef = opts.Key
		}
	} else {
		if opts.IDToken == nil {
			return nil, ErrNoIDToken
		}
		s.keyless = &keylessSigner{token: opts.IDToken, fulcioURL: opts.FulcioURL, retry: s.retry}
		_, cert, _, err := s.keyless.current(ctx)
		if err != nil {
			return nil, err
		}
		s.identity = certIdentity(cert)
	}

	if opts.TlogUpload {
		rc, err := rekorclient.GetRekorClient(strings.TrimSuffix(opts.RekorURL, "/"),
			rekorclient.WithRetryCount(uint(opts.ServiceAttempts-1)),
			rekorclient.WithRetryWaitMin(opts.ServiceRetryWait),
			rekorclient.WithRetryWaitMax(opts.ServiceRetryWait*8))
		if err != nil {
			return nil, fmt.Errorf("rekor-url %q: %w", opts.RekorURL, err)
		}
		s.rekor = rc
	}
	return s, nil
}

// reuseConnections adds one puller and one pusher to opts for a whole run:
// each repository is then pinged and authorised (a token fetched) once for
// reading and once for writing, instead of once per registry request.
func reuseConnections(opts []remote.Option) ([]remote.Option, error) {
	puller, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	return append(slices.Clone(opts), remote.Reuse(puller), remote.Reuse(pusher)), nil
}

// Identity is who signs: the certificate subject and issuer for keyless
// signing, the key fingerprint otherwise.
func (s *Signer) Identity() Identity { return s.identity }

// Close releases the key (a no-op for file and KMS keys today).
func (s *Signer) Close() error { return nil }

// signingKey is the key and, for keyless signing, the certificate to use
// for the next signature.
type signingKey struct {
	sv       signature.SignerVerifier
	pub      crypto.PublicKey
	certPEM  []byte // nil when signing with a key
	identity Identity
}

func (s *Signer) current(ctx context.Context) (signingKey, error) {
	if s.keyless == nil {
		pub, err := s.key.PublicKey(sigopts.WithContext(ctx))
		if err != nil {
			return signingKey{}, err
		}
		return signingKey{sv: s.key, pub: pub, identity: s.identity}, nil
	}
	sv, cert, certPEM, err := s.keyless.current(ctx)
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{sv: sv, pub: cert.PublicKey, certPEM: certPEM, identity: certIdentity(cert)}, nil
}

func sigOptsCtx(ctx context.Context) []signature.SignOption {
	return []signature.SignOption{sigopts.WithContext(ctx)}
}
