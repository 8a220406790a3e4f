// Package sign is the sign and verify stages: it signs images by digest —
// an index and each of its platform manifests — keyless with the job's OIDC
// identity or with a key, attaches scan results as signed attestations, and
// verifies all of it, through internal/signer (Cosign as a library).
package sign

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
)

// Options is everything the sign stage needs, as plain values.
type Options struct {
	// Images are references (tag or digest); tags are resolved first.
	Images []string
	// Signer configures the signing engine; RemoteOptions and Annotations
	// are filled in by Run (Annotations from Annotations and RunInfo).
	Signer signer.Options
	// PublicKey is what the verify commands put after --key for a key held
	// in a file or variable (default: PublicKeyHint(Signer.Key)).
	PublicKey string
	// Annotations are the user's key=value pairs; they win over the
	// defaults taken from Run.
	Annotations map[string]string
	// Run describes the workflow run for default annotations and the vuln
	// predicate's invocation.
	Run RunInfo

	// Attest lists what to attach: AttestVuln, AttestSBOM.
	Attest []string
	// Reports are scan results of this chain, per scanned image.
	Reports []Report
	// VulnFile and SBOMFile serve images no Report covers.
	VulnFile string
	SBOMFile string
	// KeyLoad is Signer.Key already being loaded (see StartKeyLoad).
	KeyLoad *KeyLoad

	Registry *registry.Client
	Log      report.Logger
}

// Report names the scan result files of one image, or of one platform of
// an index (then several Reports name the same Image).
type Report struct {
	Image string // repository@digest that was scanned
	// Platform and Digest name the platform manifest the files describe;
	// Digest equals Image's digest for a single-platform image.
	Platform  string
	Digest    string // sha256:…
	TrivyJSON string
	SBOM      string
}

// RunInfo is the workflow run that signs. Empty fields are left out.
type RunInfo struct {
	Repository  string // owner/name
	Commit      string
	WorkflowRef string // owner/name/.github/workflows/file.yml@ref
	RunURL      string
	RunID       string
	// Builder names this tool in the vuln predicate's invocation.
	Builder string
}

// Default annotation keys, in the signed payload of every signature.
const (
	AnnotationRepository = "repository"
	AnnotationCommit     = "commit"
	AnnotationWorkflow   = "workflow"
	AnnotationRun        = "run"
)

// Annotations merges the run's defaults with the user's pairs (which win).
func (ri RunInfo) Annotations(user map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range map[string]string{
		AnnotationRepository: ri.Repository,
		AnnotationCommit:     ri.Commit,
		AnnotationWorkflow:   ri.WorkflowRef,
		AnnotationRun:        ri.RunURL,
	} {
		if v != "" {
			out[k] = v
		}
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}

// ParseAnnotations reads key=value pairs.
func ParseAnnotations(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("annotations: %q is not key=value", p)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// Run signs every image and attaches the requested attestations. Images
// are resolved, attestation files read and the key or certificate obtained
// before the first signature is written. A result comes back with an error
// when something was written before the failure.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = report.Discard{}
	}
	if err := validate(opts); err != nil {
		return nil, err
	}
	resolved, digests, err := resolveImages(ctx, opts.Registry, opts.Images, opts.Log, "sign")
	if err != nil {
		return nil, err
	}
	atts, err := attestations(opts, digests)
	if err != nil {
		return nil, err
	}

	so := opts.Signer
	so.Annotations = opts.Run.Annotations(opts.Annotations)
	so.RemoteOptions = opts.Registry.Remote(ctx)
	if err := opts.KeyLoad.use(ctx, &so); err != nil {
		return nil, signerFailure(so, err)
	}
	s, err := signer.New(ctx, so)
	if err != nil {
		return nil, signerFailure(so, err)
	}
	defer s.Close()
	id := s.Identity()
	switch {
	case id.Keyless():
		opts.Log.Infof("signing keyless as %s (issuer %s)", id.Subject, id.Issuer)
	case id.KeyRef != "":
		opts.Log.Infof("signing with %s (%s)", id.KeyRef, id.KeyFingerprint)
	default:
		opts.Log.Infof("signing with key %s", id.KeyFingerprint)
	}

	res := &Result{Resolved: resolved, PublicKey: opts.PublicKey, PrivateSigstore: privateSigstore(so)}
	if res.PublicKey == "" {
		res.PublicKey = PublicKeyHint(so.Key)
	}
	sres, err := s.Sign(ctx, digests)
	if sres != nil {
		res.SignResult = *sres
	}
	if err != nil {
		res.logSignatures(opts.Log)
		var partial *signer.PartialError
		if errors.As(err, &partial) {
			// Says which digests were and were not signed.
			return resultIfAny(res), fmt.Errorf("sign: %w", signerCause(err))
		}
		if errors.Is(err, signer.ErrImageNotFound) {
			return nil, failure.Invalid(fmt.Errorf("sign: %w: check the images input", err))
		}
		return nil, fmt.Errorf("sign: %w", err)
	}
	res.logSignatures(opts.Log)

	if len(atts) > 0 {
		ares, err := s.AttestAll(ctx, atts)
		res.Merge(ares)
		for _, a := range res.Attestations {
			opts.Log.Infof("attested %s on %s: %s%s", shortType(a.PredicateType), a.Subject, a.Reference, tlogNote(a.Tlog))
		}
		if err != nil {
			return res, fmt.Errorf("sign: every image is signed, but attaching attestations failed: %w", signerCause(err))
		}
	}
	res.Commands = res.SignResult.VerifyCommands(res.PublicKey)
	return res, nil
}

func validate(opts Options) error {
	for _, a := range opts.Attest {
		if a != AttestVuln && a != AttestSBOM {
			return failure.Invalidf("sign: attest: %q is not an attestation this stage makes: use vuln, sbom or both", a)
		}
	}
	switch opts.Signer.Format {
	case "", signer.FormatLegacy, signer.FormatBundle:
	default:
		return failure.Invalidf("sign: signature-format %q: use legacy or bundle", opts.Signer.Format)
	}
	if opts.Signer.Key == "" && opts.Signer.KeyPassword != "" {
		return failure.Invalidf("sign: key-password is set but key is not: set key, or drop key-password to sign keyless")
	}
	return nil
}

// attestations reads what each image gets attested, before anything is
// signed: a missing or malformed report fails the stage with nothing written.
//
// An index scanned per platform gets each platform's reports attested on
// that platform's manifest, where verifiers of a pulled platform look, and
// one attestation per kind on the index whose predicate lists them all.
// Any other image gets its report, or vuln-file and sbom-file, attested on
// itself.
func attestations(opts Options, digests []name.Digest) ([]signer.Subject, error) {
	if len(opts.Attest) == 0 {
		if opts.VulnFile != "" || opts.SBOMFile != "" {
			opts.Log.Warnf("vuln-file or sbom-file is set but attest is empty: nothing is attested (set attest: vuln,sbom)")
		}
		return nil, nil
	}
	var out []signer.Subject
	for _, d := range digests {
		reps := reportsFor(opts.Reports, d)
		var platforms []Report
		for _, r := range reps {
			if r.Digest != "" && r.Digest != d.DigestStr() {
				platforms = append(platforms, r)
			}
		}
		var subjects []signer.Subject
		for _, r := range platforms {
			subjects = append(subjects, signer.Subject{Image: d.Context().Digest(r.Digest)})
		}
		// vuln-file and sbom-file describe one image, never a platform.
		scanned := opts
		scanned.VulnFile, scanned.SBOMFile = "", ""
		top := signer.Subject{Image: d}
		for _, kind := range opts.Attest {
			if len(platforms) > 0 {
				for i, r := range platforms {
					att, err := reportAttestation(kind, r, scanned, subjects[i].Image)
					if err != nil {
						return nil, err
					}
					subjects[i].Attestations = append(subjects[i].Attestations, att)
				}
				att, err := indexAttestation(kind, d, platforms, opts.Run)
				if err != nil {
					return nil, failure.Invalid(fmt.Errorf("sign: attest %s: %w", kind, err))
				}
				top.Attestations = append(top.Attestations, att)
				continue
			}
			var r Report
			if len(reps) > 0 {
				r = reps[0]
			}
			att, err := reportAttestation(kind, r, opts, d)
			if err != nil {
				return nil, err
			}
			top.Attestations = append(top.Attestations, att)
		}
		out = append(append(out, subjects...), top)
	}
	return out, nil
}

// reportAttestation attests one report of kind, or the vuln-file or
// sbom-file when the chain scanned nothing for the image.
func reportAttestation(kind string, r Report, opts Options, image name.Digest) (signer.Attestation, error) {
	var (
		att signer.Attestation
		err error
	)
	switch kind {
	case AttestVuln:
		path := cmp.Or(r.TrivyJSON, opts.VulnFile)
		if path == "" {
			return att, failure.Invalidf("sign: attest: vuln needs a scan result for %s: run scan earlier in the chain (stage: push,scan,sign) or set vuln-file", image)
		}
		att, err = vulnAttestation(path, opts.Run)
	case AttestSBOM:
		path := cmp.Or(r.SBOM, opts.SBOMFile)
		if path == "" {
			return att, failure.Invalidf("sign: attest: sbom needs an SBOM for %s: run scan earlier in the chain (stage: push,scan,sign) or set sbom-file", image)
		}
		att, err = sbomAttestation(path)
	}
	if err != nil {
		return att, failure.Invalid(fmt.Errorf("sign: attest %s: %w", kind, err))
	}
	return att, nil
}

// reportsFor finds the scan of d, one report per scanned platform: those
// of the same reference, else those of the same digest in one other
// repository (push wrote one image to several registries).
func reportsFor(reports []Report, d name.Digest) []Report {
	var out []Report
	for _, r := range reports {
		if r.Image == d.String() {
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, r := range reports {
		if strings.HasSuffix(r.Image, "@"+d.DigestStr()) && (len(out) == 0 || r.Image == out[0].Image) {
			out = append(out, r)
		}
	}
	return out
}

// signerFailure sorts the signer's setup errors by exit code: what the
// user must change in the step's inputs or permissions (2) from services and
// permissions that failed (1).
func signerFailure(so signer.Options, err error) error {
	cause := signerCause(err)
	var svc *signer.ServiceError
	switch {
	case errors.As(err, &svc):
		return fmt.Errorf("sign: %w", cause)
	case errors.Is(err, signer.ErrNoIDToken), errors.Is(err, signer.ErrWrongKeyPassword):
		return failure.Invalid(fmt.Errorf("sign: %w", cause))
	case strings.HasPrefix(so.Key, "awskms://"):
		if kmsRefusal(err) {
			return failure.Invalid(fmt.Errorf("sign: %w", cause))
		}
		return fmt.Errorf("sign: %w", cause)
	case so.Key != "":
		// A key that cannot be read or parsed: the key input is wrong.
		return failure.Invalid(fmt.Errorf("sign: %w", cause))
	}
	return fmt.Errorf("sign: %w", cause)
}

// signerCause adds the permission a refused registry write needs.
func signerCause(err error) error {
	if code := refusedStatus(err); code != 0 {
		var partial *signer.PartialError
		repo := ""
		if errors.As(err, &partial) && len(partial.NotSigned) > 0 {
			repo, _, _ = strings.Cut(partial.NotSigned[0], "@")
		}
		if repo != "" {
			return fmt.Errorf("%w: %s", err, registry.Explain(errorStatus(code), "write signatures to", repo, registry.Write))
		}
	}
	return err
}

// PublicKeyHint is what verify commands put after --key: the .pub beside a
// .key file, as cosign generate-key-pair names them, else cosign.pub; empty
// for keyless signing and KMS keys (named as they are).
func PublicKeyHint(key string) string {
	switch {
	case key == "" || strings.HasPrefix(key, "awskms://"):
		return ""
	case strings.Contains(key, "://") || strings.Contains(key, "-----BEGIN"):
		return "cosign.pub"
	}
	if ext := filepath.Ext(key); ext == ".key" {
		return strings.TrimSuffix(key, ext) + ".pub"
	}
	return "cosign.pub"
}

func resultIfAny(r *Result) *Result {
	if len(r.Signed) == 0 && len(r.Attestations) == 0 {
		return nil
	}
	return r
}

// IsKeyFile reports whether a key or public-key input names a file (not PEM
// content, env://VAR or a KMS URI), so the caller can resolve it against the
// working directory.
func IsKeyFile(key string) bool {
	return key != "" && !strings.Contains(key, "://") && !strings.Contains(key, "-----BEGIN")
}

// privateSigstore lists the Fulcio and Rekor this run used that are not the
// public-good ones.
func privateSigstore(so signer.Options) []string {
	var out []string
	if so.Key == "" && so.FulcioURL != "" && strings.TrimSuffix(so.FulcioURL, "/") != signer.DefaultFulcioURL {
		out = append(out, "Fulcio "+so.FulcioURL)
	}
	if so.TlogUpload && so.RekorURL != "" && strings.TrimSuffix(so.RekorURL, "/") != signer.DefaultRekorURL {
		out = append(out, "Rekor "+so.RekorURL)
	}
	return out
}
