package signer

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/registry-actions/registry/internal/oidc"
	"github.com/registry-actions/registry/internal/report"
)

// VerifyOptions say what a valid signature is. Give PublicKey, or a
// certificate identity (exact or regexp) for keyless signatures.
type VerifyOptions struct {
	CertificateIdentity       string
	CertificateIdentityRegexp string
	// CertificateOIDCIssuer defaults to oidc.GitHubActionsIssuer.
	CertificateOIDCIssuer string
	// PublicKey is PEM content, a file path, env://VAR or awskms://….
	PublicKey string

	// RequireAttestations lists predicate types (vuln, sbom or cyclonedx,
	// any cosign short name, or a URI) that each image must carry as a valid
	// attestation: the images given and, with Recursive, every platform
	// manifest their indexes list (where verifiers of a pulled platform look
	// for them). Manifests of platform unknown/unknown (BuildKit's
	// attestation manifests) carry none and are not asked for any.
	RequireAttestations []string
	// Recursive also verifies every manifest an index lists.
	Recursive bool

	// TrustedMaterial holds the Fulcio roots, Rekor and CT log keys to trust.
	// Nil means the public-good Sigstore trust root, which cosign fetches
	// through TUF (the root of trust embedded in sigstore-go, refreshed from
	// tuf-repo-cdn.sigstore.dev and cached under $HOME/.sigstore/root, or
	// $TUF_ROOT). It is only fetched when needed: for keyless verification,
	// or when transparency-log entries are checked.
	TrustedMaterial root.TrustedMaterial
	// IgnoreTlog accepts signatures that have no transparency-log entry
	// (signed with tlog-upload off).
	IgnoreTlog bool
	// IgnoreSCT accepts certificates without a certificate-transparency
	// timestamp (private CAs).
	IgnoreSCT bool
	// RekorURL enables an online lookup for legacy signatures stored
	// without their log entry; empty means offline checks only.
	RekorURL string

	RemoteOptions []remote.Option
}

// VerifyResult is the verdict for every image and platform manifest.
type VerifyResult struct {
	Verified bool                `json:"verified"`
	Images   []ImageVerification `json:"images"`
}

// ImageVerification is the verdict for one digest.
type ImageVerification struct {
	Digest   string `json:"digest"`
	Parent   string `json:"parent,omitempty"` // the index listing this manifest
	Platform string `json:"platform,omitempty"`
	Verified bool   `json:"verified"`
	// Reason says why verification failed: "no signature", "wrong
	// identity: …", "bad signature: …", "missing attestation: vuln", ….
	Reason              string           `json:"reason,omitempty"`
	Signatures          []SignatureCheck `json:"signatures"`
	Attestations        []SignatureCheck `json:"attestations,omitempty"`
	MissingAttestations []string         `json:"missingAttestations,omitempty"`
}

// SignatureCheck is one signature or attestation found, and its verdict.
type SignatureCheck struct {
	Kind          string            `json:"kind"`
	Format        Format            `json:"format"`
	Reference     string            `json:"reference,omitempty"`
	Verified      bool              `json:"verified"`
	Reason        string            `json:"reason,omitempty"`
	Identity      Identity          `json:"identity"`
	SigningTime   *time.Time        `json:"signingTime,omitempty"`
	TimeSource    string            `json:"timeSource,omitempty"` // "tlog" or "certificate"
	Tlog          *TlogEntry        `json:"tlog,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	PredicateType string            `json:"predicateType,omitempty"`
}

// VerificationError is returned when some image did not verify; the result
// returned with it has every verdict.
type VerificationError struct {
	Image  string
	Reason string
	Failed int
}

func (e *VerificationError) Error() string {
	msg := fmt.Sprintf("verification failed for %s: %s", e.Image, e.Reason)
	if e.Failed > 1 {
		msg += fmt.Sprintf(" (and %d more)", e.Failed-1)
	}
	return report.OneLine(msg)
}

// Verify checks the signatures (and required attestations) of each image.
// It returns a result whenever the images could be read; the error is a
// *VerificationError when any of them failed verification.
func Verify(ctx context.Context, images []name.Digest, opts VerifyOptions) (*VerifyResult, error) {
	res, err := verifyImages(ctx, images, opts)
	return res, singleLine(err)
}

type verifier struct {
	opts       VerifyOptions
	sigCheck   *cosign.CheckOpts
	attCheck   *cosign.CheckOpts
	keyID      Identity
	rekorURL   string
	requireURI []string
}

func verifyImages(ctx context.Context, images []name.Digest, opts VerifyOptions) (*VerifyResult, error) {
	var err error
	if opts.RemoteOptions, err = reuseConnections(opts.RemoteOptions); err != nil {
		return nil, err
	}
	v, err := newVerifier(ctx, opts)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Verified: true, Images: []ImageVerification{}}
	var failed []ImageVerification
	for _, img := range images {
		top, err := tree(ctx, img, opts.RemoteOptions, opts.Recursive)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		// Parents before children here: it reads naturally in a summary.
		var visit func(n *node, parent string) error
		visit = func(n *node, parent string) error {
			iv, err := v.verifyDigest(ctx, n.digest, n == top || attestable(n.platform))
			if err != nil {
				return err
			}
			iv.Parent, iv.Platform = parent, n.platform
			res.Images = append(res.Images, iv)
			if !iv.Verified {
				failed = append(failed, iv)
			}
			for _, c := range n.children {
				if err := visit(c, n.digest.String()); err != nil {
					return err
				}
			}
			return nil
		}
		if err := visit(top, ""); err != nil {
			return nil, err
		}
	}
	if len(failed) > 0 {
		res.Verified = false
		return res, &VerificationError{Image: failed[0].Digest, Reason: failed[0].Reason, Failed: len(failed)}
	}
	return res, nil
}

func newVerifier(ctx context.Context, opts VerifyOptions) (*verifier, error) {
	if opts.CertificateOIDCIssuer == "" {
		opts.CertificateOIDCIssuer = oidc.GitHubActionsIssuer
	}
	keyless := opts.PublicKey == ""
	if keyless && opts.CertificateIdentity == "" && opts.CertificateIdentityRegexp == "" {
		return nil, errors.New("verify: set certificate-identity or certificate-identity-regexp (the signing workflow's ref), or public-key")
	}
	if !keyless && (opts.CertificateIdentity != "" || opts.CertificateIdentityRegexp != "") {
		return nil, errors.New("verify: set either public-key or a certificate identity, not both")
	}
	v := &verifier{opts: opts, rekorURL: opts.RekorURL}
	for _, t := range opts.RequireAttestations {
		uri, err := requiredTypeURI(t)
		if err != nil {
			return nil, err
		}
		v.requireURI = append(v.requireURI, uri)
	}

	co := &cosign.CheckOpts{
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(withContext(ctx, opts.RemoteOptions)...)},
		IgnoreSCT:          opts.IgnoreSCT,
		IgnoreTlog:         opts.IgnoreTlog,
	}
	var sv signature.Verifier
	if keyless {
		co.Identities = []cosign.Identity{{
			Issuer:        opts.CertificateOIDCIssuer,
			Subject:       opts.CertificateIdentity,
			SubjectRegExp: opts.CertificateIdentityRegexp,
		}}
	} else {
		var err error
		if sv, err = loadPublicKey(ctx, opts.PublicKey); err != nil {
			return nil, err
		}
		co.SigVerifier = sv
		pub, err := sv.PublicKey()
		if err != nil {
			return nil, err
		}
		v.keyID = Identity{KeyFingerprint: fingerprint(pub)}
		if strings.HasPrefix(opts.PublicKey, awsKMSScheme) {
			v.keyID.KeyRef = opts.PublicKey
		}
	}

	tm := opts.TrustedMaterial
	if tm == nil {
		if keyless || !opts.IgnoreTlog {
			var err error
			if tm, err = cosign.TrustedRoot(); err != nil {
				return nil, fmt.Errorf("verify: fetch the Sigstore trusted root through TUF: %s: allow access to tuf-repo-cdn.sigstore.dev", report.OneLine(err.Error()))
			}
		} else {
			// A key with no log needs no Sigstore service, but the bundle
			// verifier still wants trusted material to hold the key.
			keyOnly, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("verify: an empty trusted root for key verification: %w", err)
			}
			tm = keyOnly
		}
	}
	co.TrustedMaterial = tm
	if opts.RekorURL != "" && !opts.IgnoreTlog {
		rc, err := rekorclient.GetRekorClient(strings.TrimSuffix(opts.RekorURL, "/"))
		if err != nil {
			return nil, fmt.Errorf("rekor-url %q: %w", opts.RekorURL, err)
		}
		co.RekorClient = rc
	}
	if v.rekorURL == "" {
		v.rekorURL = DefaultRekorURL
	}
	sigCheck, attCheck := *co, *co
	sigCheck.ClaimVerifier = cosign.SimpleClaimVerifier
	attCheck.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	v.sigCheck, v.attCheck = &sigCheck, &attCheck
	return v, nil
}

// requiredTypeURI accepts "sbom" as the CycloneDX SBOM the scan stage
// attaches, and cosign's names or URIs for everything else.
func requiredTypeURI(t string) (string, error) {
	if strings.EqualFold(t, "sbom") {
		t = "cyclonedx"
	}
	uri, err := predicateTypeURI(t)
	if err != nil {
		return "", fmt.Errorf("require-attestations: %q is not an attestation type: use vuln, sbom, a cosign predicate name or a URI", t)
	}
	return uri, nil
}

// attestable tells the manifests an index lists that carry attestations of
// their own: every platform but unknown/unknown, which BuildKit uses for its
// attestation manifests.
func attestable(platform string) bool {
	return platform != "unknown/unknown"
}

// verifyDigest checks the signatures of d and, when withAttestations, its
// attestations and the required ones.
func (v *verifier) verifyDigest(ctx context.Context, d name.Digest, withAttestations bool) (ImageVerification, error) {
	iv := ImageVerification{Digest: d.String(), Signatures: []SignatureCheck{}}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return iv, err
	}
	legacySigs, err := v.legacy(ctx, d, h, KindSignature)
	if err != nil {
		return iv, err
	}
	bundles, err := v.bundles(ctx, d, h)
	if err != nil {
		return iv, err
	}
	iv.Signatures = append(iv.Signatures, legacySigs...)
	for _, b := range bundles {
		if b.Kind == KindSignature {
			iv.Signatures = append(iv.Signatures, b)
		} else if withAttestations {
			iv.Attestations = append(iv.Attestations, b)
		}
	}
	if withAttestations {
		legacyAtts, err := v.legacy(ctx, d, h, KindAttestation)
		if err != nil {
			return iv, err
		}
		iv.Attestations = append(legacyAtts, iv.Attestations...)
		for i, uri := range v.requireURI {
			found := false
			for _, a := range iv.Attestations {
				found = found || (a.Verified && a.PredicateType == uri)
			}
			if !found {
				iv.MissingAttestations = append(iv.MissingAttestations, v.opts.RequireAttestations[i])
			}
		}
	}
	iv.Verified, iv.Reason = verdict(iv)
	return iv, nil
}

// verdict: at least one valid signature and every required attestation.
func verdict(iv ImageVerification) (bool, string) {
	var reasons []string
	valid := false
	for _, s := range iv.Signatures {
		if s.Verified {
			valid = true
		} else if !slices.Contains(reasons, s.Reason) {
			reasons = append(reasons, s.Reason)
		}
	}
	switch {
	case len(iv.Signatures) == 0:
		return false, "no signature"
	case !valid:
		return false, strings.Join(reasons, "; ")
	case len(iv.MissingAttestations) > 0:
		why := "missing attestation: " + strings.Join(iv.MissingAttestations, ", ")
		for _, a := range iv.Attestations {
			if !a.Verified {
				why += " (an attestation was found but rejected: " + a.Reason + ")"
				break
			}
		}
		return false, why
	}
	return true, ""
}

// legacy checks the signatures under the .sig tag or the attestations under
// the .att tag of d, one by one so each gets its own verdict.
func (v *verifier) legacy(ctx context.Context, d name.Digest, h v1.Hash, kind string) ([]SignatureCheck, error) {
	co := v.sigCheck
	tagFn := ociremote.SignatureTag
	if kind == KindAttestation {
		co, tagFn = v.attCheck, ociremote.AttestationTag
	}
	tag, err := tagFn(d, co.RegistryClientOpts...)
	if err != nil {
		return nil, err
	}
	sigs, err := ociremote.Signatures(tag, co.RegistryClientOpts...)
	if err != nil {
		return nil, registryError(tag.String(), err)
	}
	list, err := sigs.Get()
	if err != nil {
		return nil, registryError(tag.String(), err)
	}
	out := make([]SignatureCheck, 0, len(list))
	for _, sig := range list {
		sig, err := static.Copy(sig)
		if err != nil {
			return nil, registryError(tag.String(), err)
		}
		check := SignatureCheck{Kind: kind, Format: FormatLegacy, Reference: tag.String()}
		if kind == KindAttestation {
			_, _, err = cosign.VerifyImageAttestation(ctx, single(sig), h, co)
		} else {
			_, err = cosign.VerifyImageSignature(ctx, sig, h, co)
		}
		check.Verified = err == nil
		if err != nil {
			check.Reason = failureReason(err)
		}
		v.describeLegacy(&check, sig)
		noEntryReason(&check)
		out = append(out, check)
	}
	return out, nil
}

// single wraps one attestation so it goes through cosign's attestation
// verifier on its own and gets its own verdict.
func single(sig oci.Signature) oci.Signatures {
	s, err := mutate.AppendSignatures(empty.Signatures(), false, sig)
	if err != nil {
		return empty.Signatures()
	}
	return s
}

func (v *verifier) describeLegacy(c *SignatureCheck, sig oci.Signature) {
	if cert, err := sig.Cert(); err == nil && cert != nil {
		c.Identity = certIdentity(cert)
		t := cert.NotBefore.UTC()
		c.SigningTime, c.TimeSource = &t, "certificate"
	} else if c.Verified {
		c.Identity = v.keyID
	}
	if b, err := sig.Bundle(); err == nil && b != nil {
		t := time.Unix(b.Payload.IntegratedTime, 0).UTC()
		c.Tlog = &TlogEntry{Index: b.Payload.LogIndex, IntegratedTime: t, URL: tlogURL(v.rekorURL, b.Payload.LogIndex)}
		c.SigningTime, c.TimeSource = &t, "tlog"
	}
	payload, err := sig.Payload()
	if err != nil {
		return
	}
	if c.Kind == KindAttestation {
		c.PredicateType = envelopePredicateType(payload)
		return
	}
	var sci sigpayload.SimpleContainerImage
	if json.Unmarshal(payload, &sci) == nil {
		c.Annotations = stringMap(sci.Optional)
	}
}

// bundles checks every Sigstore bundle attached to d as a referrer.
func (v *verifier) bundles(ctx context.Context, d name.Digest, h v1.Hash) ([]SignatureCheck, error) {
	idx, err := ociremote.Referrers(d, "", v.sigCheck.RegistryClientOpts...)
	if err != nil {
		return nil, registryError(d.String(), fmt.Errorf("list referrers: %w", err))
	}
	digestBytes, err := hex.DecodeString(h.Hex)
	if err != nil {
		return nil, err
	}
	var out []SignatureCheck
	for _, m := range idx.Manifests {
		ref := d.Context().Digest(m.Digest.String())
		b, err := ociremote.Bundle(ref, v.sigCheck.RegistryClientOpts...)
		if err != nil {
			if registryFailed(err) {
				// An outage is not "no signature": verification could
				// not run (exit 1), it did not fail (exit 3).
				return nil, registryError(ref.String(), fmt.Errorf("read referrer: %w", err))
			}
			continue // not a Sigstore bundle (another kind of referrer)
		}
		c := SignatureCheck{Format: FormatBundle, Reference: ref.String()}
		st := bundleStatement(b)
		c.Kind, c.PredicateType = KindAttestation, st.predicateType
		if st.predicateType == ctypes.CosignSignPredicateType {
			c.Kind, c.PredicateType = KindSignature, ""
			c.Annotations = st.annotations
		}
		res, err := cosign.VerifyNewBundle(ctx, v.sigCheck, verify.WithArtifactDigest(h.Algorithm, digestBytes), b)
		c.Verified = err == nil
		if err != nil {
			c.Reason = failureReason(err)
		}
		v.describeBundle(&c, b, res)
		noEntryReason(&c)
		out = append(out, c)
	}
	return out, nil
}

func (v *verifier) describeBundle(c *SignatureCheck, b *sgbundle.Bundle, res *verify.VerificationResult) {
	if vc, err := b.VerificationContent(); err == nil {
		if cert := vc.Certificate(); cert != nil {
			c.Identity = certIdentity(cert)
			t := cert.NotBefore.UTC()
			c.SigningTime, c.TimeSource = &t, "certificate"
		} else if pk := vc.PublicKey(); pk != nil {
			// The hint cosign writes is the base64 SHA-256 of the DER key,
			// the same digest as our fingerprint.
			if raw, err := base64.StdEncoding.DecodeString(pk.Hint()); err == nil && len(raw) == 32 {
				c.Identity = Identity{KeyFingerprint: "sha256:" + hex.EncodeToString(raw)}
			}
			if c.Verified {
				c.Identity = v.keyID
			}
		}
	}
	if entries, err := b.TlogEntries(); err == nil && len(entries) > 0 {
		t := entries[0].IntegratedTime().UTC()
		c.Tlog = &TlogEntry{Index: entries[0].LogIndex(), IntegratedTime: t, URL: tlogURL(v.rekorURL, entries[0].LogIndex())}
		c.SigningTime, c.TimeSource = &t, "tlog"
	}
	if res != nil {
		for _, ts := range res.VerifiedTimestamps {
			if ts.Type == "Tlog" {
				t := ts.Timestamp.UTC()
				c.SigningTime, c.TimeSource = &t, "tlog"
			}
		}
	}
}

type statementFacts struct {
	predicateType string
	annotations   map[string]string
}

func bundleStatement(b *sgbundle.Bundle) statementFacts {
	env, err := b.Envelope()
	if err != nil {
		return statementFacts{}
	}
	st, err := env.Statement()
	if err != nil {
		return statementFacts{}
	}
	f := statementFacts{predicateType: st.GetPredicateType()}
	if p := st.GetPredicate(); p != nil {
		if ann, ok := p.AsMap()["annotations"].(map[string]any); ok {
			f.annotations = stringMap(ann)
		}
	}
	return f
}

// envelopePredicateType reads the predicate type of a DSSE envelope
// holding an in-toto statement.
func envelopePredicateType(envelope []byte) string {
	var env struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(envelope, &env) != nil {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return ""
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(raw, &st) != nil {
		return ""
	}
	return st.PredicateType
}

func stringMap(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		} else {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

const tlogUnverifiable = "transparency-log entry not verifiable: "

// noEntryReason rewords an unverifiable-entry reason for a signature that
// carries no entry at all.
func noEntryReason(c *SignatureCheck) {
	if c.Tlog == nil && strings.HasPrefix(c.Reason, tlogUnverifiable) {
		c.Reason = "no transparency-log entry: " + strings.TrimPrefix(c.Reason, tlogUnverifiable)
	}
}

// failureReason turns cosign's and sigstore-go's verification errors into
// the short reasons a reviewer acts on.
func failureReason(err error) string {
	msg := report.OneLine(err.Error())
	lower := strings.ToLower(msg)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(lower, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("none of the expected identities matched", "no matching certificateidentity", "expected san value", "expected issuer value", "certificate identity"):
		return "wrong identity: " + msg
	case has("no certificate found on signature"):
		return "wrong identity: signed with a key, not a certificate: " + msg
	case has("signed by unknown authority", "failed to verify certificate", "leaf certificate verification failed", "x509:"):
		return "untrusted certificate: " + msg
	case has("invalid or missing digest in claim", "no matching subject digest", "provided artifact digest does not match"):
		return "signature is for another image: " + msg
	case has("embedded sct", "signed certificate timestamp", "sct"):
		return "no certificate-transparency proof: " + msg
	case has("rekor client not provided", "offline verification failed", "no valid tlog entries found"):
		return "no transparency-log entry: " + msg
	case has("error verifying bundle", "rekor log public key", "verified log entries", "log inclusion", "transparency log", "tlog entries"):
		return tlogUnverifiable + msg
	case has("expected a signed timestamp to verify an expired certificate"):
		return "certificate expired, and no transparency-log entry or timestamp shows it was valid at signing: " + msg
	case has("expired", "no longer valid", "not valid yet"):
		return "certificate expired at signing time: " + msg
	default:
		return "bad signature: " + msg
	}
}
