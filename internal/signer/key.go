package signer

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/sigstore/cosign/v2/pkg/blob"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/registry-actions/registry/internal/report"

	// Registers the awskms:// scheme with sigstore's KMS registry.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
)

const awsKMSScheme = "awskms://"

// keyKind is where a key reference points.
type keyKind int

const (
	keyPEM keyKind = iota
	keyFile
	keyEnv
	keyAWSKMS
)

// classifyKey reads a key reference the way the key input documents it: PEM
// content, env://VAR, awskms://…, or else a file path. It never returns the
// reference itself for PEM content, which is secret.
func classifyKey(ref string) (keyKind, error) {
	switch {
	case strings.Contains(ref, "-----BEGIN"):
		return keyPEM, nil
	case strings.HasPrefix(ref, "env://"):
		return keyEnv, nil
	case strings.HasPrefix(ref, awsKMSScheme):
		return keyAWSKMS, nil
	case strings.Contains(ref, "://"):
		scheme, _, _ := strings.Cut(ref, "://")
		return 0, fmt.Errorf("key: unsupported scheme %q: use PEM content, a file path, env://VAR or awskms://", scheme+"://")
	case strings.ContainsAny(ref, "\r\n") || len(ref) > 1024:
		// Not a usable path; do not echo what may be key material.
		return 0, errors.New("key: not PEM content, a file path, env://VAR or awskms://")
	default:
		return keyFile, nil
	}
}

// describeKey names a key reference for messages and results without
// revealing key material.
func describeKey(ref string, kind keyKind) string {
	switch kind {
	case keyPEM:
		return "PEM content"
	case keyFile:
		return "file " + ref
	default:
		return ref
	}
}

// Key is a private signing key, loaded. Decrypting a cosign key is slow on
// purpose (scrypt: a fifth of a second of CPU), so a caller that knows it
// will sign can load the key while other work runs and hand it to New in
// Options.LoadedKey.
type Key struct {
	ref  string
	sv   signature.SignerVerifier
	kind keyKind
}

// LoadKey loads and decrypts the private key behind ref (as Options.Key)
// with password. Its errors are those New returns for the same key.
func LoadKey(ctx context.Context, ref, password string) (*Key, error) {
	k, err := loadKey(ctx, ref, password)
	return k, singleLine(err)
}

func loadKey(ctx context.Context, ref, password string) (*Key, error) {
	sv, kind, err := loadPrivateKey(ctx, ref, []byte(password))
	if err != nil {
		return nil, err
	}
	return &Key{ref: ref, sv: sv, kind: kind}, nil
}

// loadPrivateKey returns a signer for the private key behind ref.
func loadPrivateKey(ctx context.Context, ref string, password []byte) (signature.SignerVerifier, keyKind, error) {
	kind, err := classifyKey(ref)
	if err != nil {
		return nil, 0, err
	}
	if kind == keyAWSKMS {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, kind, fmt.Errorf("key %s: %s", ref, report.OneLine(err.Error()))
		}
		// Touch the key now so a missing key or a missing permission fails
		// before anything is signed.
		if _, err := sv.PublicKey(sigopts.WithContext(ctx)); err != nil {
			return nil, kind, kmsError(ref, err)
		}
		return sv, kind, nil
	}
	pemBytes, err := readKeyBytes(ref, kind)
	if err != nil {
		return nil, kind, err
	}
	sv, err := cosign.LoadPrivateKey(pemBytes, password, nil)
	if err != nil {
		if strings.Contains(err.Error(), "decryption failed") {
			return nil, kind, ErrWrongKeyPassword
		}
		return nil, kind, fmt.Errorf("key (%s): %s: give a cosign private key (cosign generate-key-pair or import-key-pair)", describeKey(ref, kind), report.OneLine(err.Error()))
	}
	return sv, kind, nil
}

// loadPublicKey returns a verifier for the public key behind ref (PEM
// content, file, env://VAR or awskms://).
func loadPublicKey(ctx context.Context, ref string) (signature.Verifier, error) {
	kind, err := classifyKey(ref)
	if err != nil {
		return nil, fmt.Errorf("public-%w", err)
	}
	var pub crypto.PublicKey
	if kind == keyAWSKMS {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("public-key %s: %s", ref, report.OneLine(err.Error()))
		}
		if pub, err = sv.PublicKey(sigopts.WithContext(ctx)); err != nil {
			return nil, kmsError(ref, err)
		}
	} else {
		raw, err := readKeyBytes(ref, kind)
		if err != nil {
			return nil, fmt.Errorf("public-%w", err)
		}
		if pub, err = cryptoutils.UnmarshalPEMToPublicKey(raw); err != nil {
			return nil, fmt.Errorf("public-key (%s) is not a PEM public key: %s", describeKey(ref, kind), report.OneLine(err.Error()))
		}
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("public-key (%s): %s", describeKey(ref, kind), report.OneLine(err.Error()))
	}
	return v, nil
}

func readKeyBytes(ref string, kind keyKind) ([]byte, error) {
	if kind == keyPEM {
		return []byte(ref), nil
	}
	raw, err := blob.LoadFileOrURL(ref)
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			return nil, fmt.Errorf("key: cannot read key file %s: %v: give PEM content, a readable file, env://VAR or awskms://", ref, pathErr.Err)
		}
		return nil, fmt.Errorf("key (%s): %s", describeKey(ref, kind), report.OneLine(err.Error()))
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil, fmt.Errorf("key (%s) is empty", describeKey(ref, kind))
	}
	return raw, nil
}

// kmsError explains the two failures users hit with KMS keys.
func kmsError(ref string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotFoundException":
			return fmt.Errorf("KMS key %s not found: check the key id or alias and the AWS region (%w)", ref, err)
		case "AccessDeniedException":
			return fmt.Errorf("not permitted to use KMS key %s: grant kms:GetPublicKey, kms:DescribeKey and kms:Sign to the job's role (%w)", ref, err)
		case "DisabledException", "KMSInvalidStateException":
			return fmt.Errorf("KMS key %s cannot sign in its current state: enable it (%w)", ref, err)
		}
	}
	return fmt.Errorf("KMS key %s: %w", ref, err)
}

// Fingerprint identifies a PEM public key the way results and summaries
// name signing keys: sha256:<hex> of its DER SubjectPublicKeyInfo.
func Fingerprint(publicPEM []byte) (string, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(publicPEM)
	if err != nil {
		return "", fmt.Errorf("not a PEM public key: %w", err)
	}
	return fingerprint(pub), nil
}

// fingerprint identifies a public key as the SHA-256 of its DER
// SubjectPublicKeyInfo.
func fingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}
