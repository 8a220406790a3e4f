package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// bundlePredicateAnnotation is the referrer annotation cosign writes with
// the predicate type of the bundle's statement.
const bundlePredicateAnnotation = "dev.sigstore.bundle.predicateType"

// Sign signs each image by digest. With Options.Recursive an index is
// signed after every manifest it lists. All manifests are fetched before
// the first signature is written; signatures are then written several at a
// time (Options.Concurrency), every manifest of every image at once, an
// index only once all its manifests are signed. If a signature fails, no
// further one is started and the error is a *PartialError naming the
// digests that were and were not signed.
func (s *Signer) Sign(ctx context.Context, images []name.Digest) (*SignResult, error) {
	res, err := s.sign(ctx, images)
	return res, singleLine(err)
}

// signJob is one manifest to sign and the jobs (its manifests) that must
// succeed first.
type signJob struct {
	n     *node
	after []*signJob
	done  chan struct{}
	art   Artifact
	err   error
	ran   bool
}

func (s *Signer) sign(ctx context.Context, images []name.Digest) (*SignResult, error) {
	res := s.newResult()
	roots, err := s.trees(ctx, images)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var plan []*signJob
	byDigest := map[string]*signJob{}
	var add func(n *node) *signJob
	add = func(n *node) *signJob {
		if j, ok := byDigest[n.digest.String()]; ok {
			return j
		}
		j := &signJob{n: n, done: make(chan struct{})}
		for _, c := range n.children {
			j.after = append(j.after, add(c))
		}
		byDigest[n.digest.String()] = j
		plan = append(plan, j) // post-order: children before their index
		return j
	}
	for i, root := range roots {
		res.Images = append(res.Images, images[i].String())
		add(root)
	}

	var (
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	slots := make(chan struct{}, s.opts.Concurrency)
	for _, j := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(j.done)
			for _, dep := range j.after {
				<-dep.done
				if dep.err != nil || !dep.ran {
					return
				}
			}
			slots <- struct{}{}
			defer func() { <-slots }()
			if failed.Load() {
				return
			}
			j.ran = true
			j.art, j.err = s.signDigest(ctx, j.n.digest)
			if j.err != nil {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()

	var firstErr error
	var notSigned []string
	for _, j := range plan {
		switch {
		case j.ran && j.err == nil:
			j.art.Platform = j.n.platform
			res.Signed = append(res.Signed, j.n.digest.String())
			res.Signatures = append(res.Signatures, j.art)
		default:
			if j.err != nil && firstErr == nil {
				firstErr = fmt.Errorf("sign %s: %w", j.n.digest, j.err)
			}
			notSigned = append(notSigned, j.n.digest.String())
		}
	}
	if firstErr != nil {
		return res, &PartialError{Signed: res.Signed, NotSigned: notSigned, Err: firstErr}
	}
	return res, nil
}

// trees fetches the manifests of every image, several at a time.
func (s *Signer) trees(ctx context.Context, images []name.Digest) ([]*node, error) {
	roots := make([]*node, len(images))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for i, img := range images {
		g.Go(func() error {
			root, err := tree(gctx, img, s.opts.RemoteOptions, s.opts.Recursive)
			roots[i] = root
			return err
		})
	}
	return roots, g.Wait()
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
	return s.AttestAll(ctx, []Subject{{Image: image, Attestations: atts}})
}

// Subject is an image and the attestations to sign about it.
type Subject struct {
	Image        name.Digest
	Attestations []Attestation
}

// AttestAll attests several images: every statement is built and every
// image checked to exist before the first attestation is written; images
// are then attested several at a time (Options.Concurrency), the
// attestations of one image one after the other (they share its .att tag).
// On failure the result lists what was written.
func (s *Signer) AttestAll(ctx context.Context, subjects []Subject) (*SignResult, error) {
	res, err := s.attestAll(ctx, subjects)
	return res, singleLine(err)
}

// preparedStatement is an attestation ready to sign.
type preparedStatement struct {
	uri     string
	payload []byte
}

func (s *Signer) attestAll(ctx context.Context, subjects []Subject) (*SignResult, error) {
	res := s.newResult()
	// Build every statement first so a bad predicate writes nothing.
	todo := make([][]preparedStatement, len(subjects))
	for i, sub := range subjects {
		d := sub.Image
		for _, a := range sub.Attestations {
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
			todo[i] = append(todo[i], preparedStatement{uri: uri, payload: payload})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for _, sub := range subjects {
		g.Go(func() error {
			if _, err := remote.Head(sub.Image, withContext(gctx, s.opts.RemoteOptions)...); err != nil {
				return fmt.Errorf("attest: %w", registryError(sub.Image.String(), err))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	written := make([][]Artifact, len(subjects))
	errs := make([]error, len(subjects))
	var failed atomic.Bool
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.opts.Concurrency)
	for i, sub := range subjects {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			for _, p := range todo[i] {
				if failed.Load() {
					return
				}
				art, err := s.attestOne(ctx, sub.Image, p.uri, p.payload)
				if err != nil {
					errs[i] = fmt.Errorf("attest %s (%s): %w", sub.Image, p.uri, err)
					failed.Store(true)
					return
				}
				written[i] = append(written[i], art)
			}
		}()
	}
	wg.Wait()
	for i := range subjects {
		res.Attestations = append(res.Attestations, written[i]...)
	}
	for _, err := range errs {
		if err != nil {
			return res, err
		}
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
