package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	intotov1 "github.com/in-toto/attestation/go/v1"
	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// bundlePredicateAnnotation is the referrer annotation cosign writes with
// the predicate type of the bundle's statement.
const bundlePredicateAnnotation = "dev.sigstore.bundle.predicateType"

// Sign signs each image by digest. With Options.Recursive an index is
// signed after every manifest it lists. All manifests are fetched before
// the first signature is written; if a signature then fails, the error is a
// *PartialError naming the digests that were and were not signed.
func (s *Signer) Sign(ctx context.Context, images []name.Digest) (*SignResult, error) {
	res, err := s.sign(ctx, images)
	return res, singleLine(err)
}

func (s *Signer) sign(ctx context.Context, images []name.Digest) (*SignResult, error) {
	res := s.newResult()
	var plan []*node
	seen := map[string]bool{}
	for _, img := range images {
		root, err := tree(ctx, img, s.opts.RemoteOptions, s.opts.Recursive)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		res.Images = append(res.Images, img.String())
		for _, n := range root.postOrder() {
			if !seen[n.digest.String()] {
				seen[n.digest.String()] = true
				plan = append(plan, n)
			}
		}
	}
	for i, n := range plan {
		art, err := s.signDigest(ctx, n.digest)
		if err != nil {
			var notSigned []string
			for _, m := range plan[i:] {
				notSigned = append(notSigned, m.digest.String())
			}
			return res, &PartialError{Signed: res.Signed, NotSigned: notSigned,
				Err: fmt.Errorf("sign %s: %w", n.digest, err)}
		}
		art.Platform = n.platform
		res.Signed = append(res.Signed, n.digest.String())
		res.Signatures = append(res.Signatures, art)
	}
	return res, nil
}

func (s *Signer) newResult() *SignResult {
	return &SignResult{Format: s.opts.Format, Identity: s.identity, TlogUpload: s.rekor != nil,
		Signed: []string{}, Signatures: []Artifact{}}
}

// signDigest writes one image signature in the configured format.
func (s *Signer) signDigest(ctx context.Context, d name.Digest) (Artifact, error) {
	key, err := s.current(ctx)
	if err != nil {
		return Artifact{}, err
	}
	art := Artifact{Kind: KindSignature, Subject: d.String(), Format: s.opts.Format}
	ociOpts := s.ociOptions(ctx)
	if s.opts.Format == FormatBundle {
		payload, err := signStatement(d, s.opts.Annotations)
		if err != nil {
			return art, err
		}
		ref, entry, err := s.writeBundle(ctx, d, key, payload, ctypes.CosignSignPredicateType)
		if err != nil {
			return art, err
		}
		art.Reference, art.Tlog = ref, entry
		return art, nil
	}

	annotations := make(map[string]any, len(s.opts.Annotations))
	for k, v := range s.opts.Annotations {
		annotations[k] = v
	}
	payload, err := (&sigpayload.Cosign{Image: d, Annotations: annotations}).MarshalJSON()
	if err != nil {
		return art, fmt.Errorf("payload: %w", err)
	}
	sig, err := signData(ctx, key.sv, payload)
	if err != nil {
		return art, fmt.Errorf("signing: %w", err)
	}
	var opts []static.Option
	if key.certPEM != nil {
		opts = append(opts, static.WithCertChain(key.certPEM, nil))
	}
	if s.rekor != nil {
		checksum := sha256.New()
		checksum.Write(payload)
		entry, err := s.tlog(func() (*models.LogEntryAnon, error) {
			return cosign.TLogUpload(ctx, s.rekor, sig, checksum, key.rekorPEM())
		})
		if err != nil {
			return art, err
		}
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(entry)))
		art.Tlog = s.tlogEntry(entry)
	}
	ociSig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(sig), opts...)
	if err != nil {
		return art, err
	}
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(d, ociOpts...), ociSig,
		mutate.WithDupeDetector(cremote.NewDupeDetector(key.sv)))
	if err != nil {
		return art, err
	}
	if err := ociremote.WriteSignatures(d.Repository, se, ociOpts...); err != nil {
		return art, registryError(d.String(), fmt.Errorf("write signature: %w", err))
	}
	tag, err := ociremote.SignatureTag(d, ociOpts...)
	if err != nil {
		return art, err
	}
	art.Reference = tag.String()
	return art, nil
}

// Attestation is an in-toto predicate to sign for an image.
type Attestation struct {
	// PredicateType is a cosign short name (vuln, cyclonedx, spdxjson,
	// slsaprovenance1, openvex, …) or a predicate type URI.
	PredicateType string
	// Predicate is the predicate JSON. For vuln it follows cosign's
	// vulnerability-scan predicate (invocation, scanner, metadata).
	Predicate []byte
}

// Attest signs each attestation as an in-toto statement about image, with
// the same key or identity and in the same format as image signatures.
func (s *Signer) Attest(ctx context.Context, image name.Digest, atts []Attestation) (*SignResult, error) {
	res, err := s.attest(ctx, image, atts)
	return res, singleLine(err)
}

func (s *Signer) attest(ctx context.Context, d name.Digest, atts []Attestation) (*SignResult, error) {
	res := s.newResult()
	res.Images = []string{d.String()}
	type prepared struct {
		uri     string
		payload []byte
	}
	// Build every statement first so a bad predicate writes nothing.
	var todo []prepared
	for _, a := range atts {
		uri, err := predicateTypeURI(a.PredicateType)
		if err != nil {
			return nil, fmt.Errorf("attest %s: %w", d, err)
		}
		if !json.Valid(a.Predicate) {
			return nil, fmt.Errorf("attest %s: %s predicate is not JSON", d, a.PredicateType)
		}
		payload, err := attestationStatement(d, uri, a.Predicate)
		if err != nil {
			return nil, fmt.Errorf("attest %s: %s predicate: %w", d, a.PredicateType, err)
		}
		todo = append(todo, prepared{uri: uri, payload: payload})
	}
	if _, err := remote.Head(d, withContext(ctx, s.opts.RemoteOptions)...); err != nil {
		return nil, fmt.Errorf("attest: %w", registryError(d.String(), err))
	}
	for _, p := range todo {
		art, err := s.attestOne(ctx, d, p.uri, p.payload)
		if err != nil {
			return res, fmt.Errorf("attest %s (%s): %w", d, p.uri, err)
		}
		res.Attestations = append(res.Attestations, art)
	}
	return res, nil
}

func (s *Signer) attestOne(ctx context.Context, d name.Digest, predicateType string, payload []byte) (Artifact, error) {
	art := Artifact{Kind: KindAttestation, Subject: d.String(), Format: s.opts.Format, PredicateType: predicateType}
	key, err := s.current(ctx)
	if err != nil {
		return art, err
	}
	if s.opts.Format == FormatBundle {
		ref, entry, err := s.writeBundle(ctx, d, key, payload, predicateType)
		if err != nil {
			return art, err
		}
		art.Reference, art.Tlog = ref, entry
		return art, nil
	}
	envelope, err := dsse.WrapSigner(key.sv, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(payload), sigOptsCtx(ctx)[0])
	if err != nil {
		return art, fmt.Errorf("signing: %w", err)
	}
	opts := []static.Option{
		static.WithLayerMediaType(ctypes.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": predicateType}),
	}
	if key.certPEM != nil {
		opts = append(opts, static.WithCertChain(key.certPEM, nil))
	}
	if s.rekor != nil {
		entry, err := s.tlog(func() (*models.LogEntryAnon, error) {
			return cosign.TLogUploadDSSEEnvelope(ctx, s.rekor, envelope, key.rekorPEM())
		})
		if err != nil {
			return art, err
		}
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(entry)))
		art.Tlog = s.tlogEntry(entry)
	}
	att, err := static.NewAttestation(envelope, opts...)
	if err != nil {
		return art, err
	}
	ociOpts := s.ociOptions(ctx)
	signOpts := []mutate.SignOption{mutate.WithDupeDetector(cremote.NewDupeDetector(key.sv))}
	if s.opts.ReplaceAttestations {
		signOpts = append(signOpts, mutate.WithReplaceOp(cremote.NewReplaceOp(predicateType)))
	}
	se, err := mutate.AttachAttestationToEntity(ociremote.SignedUnknown(d, ociOpts...), att, signOpts...)
	if err != nil {
		return art, err
	}
	if err := ociremote.WriteAttestations(d.Repository, se, ociOpts...); err != nil {
		return art, registryError(d.String(), fmt.Errorf("write attestation: %w", err))
	}
	tag, err := ociremote.AttestationTag(d, ociOpts...)
	if err != nil {
		return art, err
	}
	art.Reference = tag.String()
	return art, nil
}

// writeBundle signs payload (an in-toto statement) as a DSSE envelope,
// records it in Rekor when enabled, and attaches the Sigstore bundle as an
// OCI 1.1 referrer of d. It returns the referrer's digest reference.
func (s *Signer) writeBundle(ctx context.Context, d name.Digest, key signingKey, payload []byte, predicateType string) (string, *TlogEntry, error) {
	envelope, err := dsse.WrapSigner(key.sv, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(payload), sigOptsCtx(ctx)[0])
	if err != nil {
		return "", nil, fmt.Errorf("signing: %w", err)
	}
	var entry *models.LogEntryAnon
	if s.rekor != nil {
		if entry, err = s.tlog(func() (*models.LogEntryAnon, error) {
			return cosign.TLogUploadDSSEEnvelope(ctx, s.rekor, envelope, key.rekorPEM())
		}); err != nil {
			return "", nil, err
		}
	}
	bundleBytes, err := cbundle.MakeNewBundle(key.pub, entry, payload, envelope, key.rekorPEM(), nil)
	if err != nil {
		return "", nil, fmt.Errorf("bundle: %w", err)
	}
	ociOpts := s.ociOptions(ctx)
	if err := ociremote.WriteAttestationNewBundleFormat(d, bundleBytes, predicateType, ociOpts...); err != nil {
		return "", nil, registryError(d.String(), fmt.Errorf("write bundle referrer: %w", err))
	}
	ref, err := s.findReferrer(ctx, d, predicateType, bundleBytes)
	if err != nil {
		return "", nil, err
	}
	var tl *TlogEntry
	if entry != nil {
		tl = s.tlogEntry(entry)
	}
	return ref, tl, nil
}

// findReferrer locates the referrer manifest just written for bundleBytes;
// cosign does not return its digest.
func (s *Signer) findReferrer(ctx context.Context, d name.Digest, predicateType string, bundleBytes []byte) (string, error) {
	want, _, err := v1.SHA256(bytes.NewReader(bundleBytes))
	if err != nil {
		return "", err
	}
	idx, err := ociremote.Referrers(d, "", s.ociOptions(ctx)...)
	if err != nil {
		return "", registryError(d.String(), fmt.Errorf("list referrers: %w", err))
	}
	ropts := withContext(ctx, s.opts.RemoteOptions)
	// Newest candidates are usually last; look there first.
	for i := len(idx.Manifests) - 1; i >= 0; i-- {
		m := idx.Manifests[i]
		if pt, ok := m.Annotations[bundlePredicateAnnotation]; ok && pt != predicateType {
			continue
		}
		ref := d.Context().Digest(m.Digest.String())
		img, err := remote.Image(ref, ropts...)
		if err != nil {
			continue
		}
		mf, err := img.Manifest()
		if err != nil {
			continue
		}
		if len(mf.Layers) == 1 && mf.Layers[0].Digest == want {
			return ref.String(), nil
		}
	}
	return "", fmt.Errorf("%s: the bundle was written but is not listed among its referrers", d)
}

// signStatement is the in-toto statement cosign signs for an image in the
// bundle format; annotations, which the legacy payload carries in
// "optional", go into the predicate so they are signed too.
func signStatement(d name.Digest, annotations map[string]string) ([]byte, error) {
	alg, hexDigest, ok := strings.Cut(d.DigestStr(), ":")
	if !ok {
		return nil, fmt.Errorf("unable to parse digest %s", d.DigestStr())
	}
	st := &intotov1.Statement{
		Type:          intotov1.StatementTypeUri,
		Subject:       []*intotov1.ResourceDescriptor{{Digest: map[string]string{alg: hexDigest}}},
		PredicateType: ctypes.CosignSignPredicateType,
	}
	if len(annotations) > 0 {
		fields := make(map[string]any, len(annotations))
		for k, v := range annotations {
			fields[k] = v
		}
		pred, err := structpb.NewStruct(map[string]any{"annotations": fields})
		if err != nil {
			return nil, err
		}
		st.Predicate = pred
	}
	return protojson.Marshal(st)
}

// attestationStatement builds the in-toto statement the way "cosign attest
// --type <name>" does for the types cosign names, and with the predicate
// embedded as-is for other predicate type URIs.
func attestationStatement(d name.Digest, uri string, predicate []byte) ([]byte, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	var st any
	if short, ok := predicateShortName(uri); ok && short != "custom" {
		st, err = attestation.GenerateStatement(attestation.GenerateOpts{
			Predicate: bytes.NewReader(predicate),
			Type:      short,
			Digest:    h.Hex,
			Repo:      d.Repository.String(),
			Time:      time.Now,
		})
		if err != nil {
			return nil, err
		}
	} else {
		st = in_toto.Statement{
			StatementHeader: in_toto.StatementHeader{
				Type:          in_toto.StatementInTotoV01,
				PredicateType: uri,
				Subject:       []in_toto.Subject{{Name: d.Repository.String(), Digest: map[string]string{h.Algorithm: h.Hex}}},
			},
			Predicate: json.RawMessage(predicate),
		}
	}
	return json.Marshal(st)
}

// tlog uploads one entry; Rekor's client retries on its own.
func (s *Signer) tlog(upload func() (*models.LogEntryAnon, error)) (*models.LogEntryAnon, error) {
	entry, err := upload()
	if err != nil {
		return nil, &ServiceError{Service: "Rekor", URL: s.opts.RekorURL, Attempts: s.opts.ServiceAttempts,
			Fix: "check rekor-url, or set tlog-upload: false", Err: err}
	}
	if entry == nil || entry.LogIndex == nil || entry.IntegratedTime == nil {
		return nil, &ServiceError{Service: "Rekor", URL: s.opts.RekorURL, Err: fmt.Errorf("incomplete log entry in the response")}
	}
	return entry, nil
}

func (s *Signer) tlogEntry(e *models.LogEntryAnon) *TlogEntry {
	return &TlogEntry{Index: *e.LogIndex, IntegratedTime: time.Unix(*e.IntegratedTime, 0).UTC(), URL: tlogURL(s.opts.RekorURL, *e.LogIndex)}
}

func (s *Signer) ociOptions(ctx context.Context) []ociremote.Option {
	return []ociremote.Option{ociremote.WithRemoteOptions(withContext(ctx, s.opts.RemoteOptions)...)}
}

// rekorPEM is what Rekor records as the signer: the certificate for
// keyless signatures, the public key otherwise.
func (k signingKey) rekorPEM() []byte {
	if k.certPEM != nil {
		return k.certPEM
	}
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	if err != nil {
		return nil
	}
	return b
}
