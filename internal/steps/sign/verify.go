package sign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
)

// VerifyOptions is everything the verify stage needs.
type VerifyOptions struct {
	// Images are references (tag or digest); tags are resolved first.
	Images []string
	// Verify says what a valid signature is; TrustedMaterial, IgnoreSCT and
	// RemoteOptions are filled in by Verify.
	Verify signer.VerifyOptions
	// TrustedRoot is a Sigstore trusted_root.json for a private Sigstore;
	// empty trusts the public-good instance.
	TrustedRoot string

	Registry *registry.Client
	Log      report.Logger
}

// Verify checks every image and, for an index, every platform manifest.
// A failed check returns the full result with a *failure.GateError naming
// the first failure and why.
func Verify(ctx context.Context, opts VerifyOptions) (*VerifyResult, error) {
	if opts.Log == nil {
		opts.Log = report.Discard{}
	}
	vo := opts.Verify
	if err := validateVerify(vo); err != nil {
		return nil, err
	}
	policy := policyOf(opts)
	if opts.TrustedRoot != "" {
		tr, err := loadTrustedRoot(opts.TrustedRoot)
		if err != nil {
			return nil, err
		}
		vo.TrustedMaterial = tr
		if len(tr.CTLogs()) == 0 && vo.PublicKey == "" {
			// A private CA that logs to no certificate-transparency log
			// issues certificates without SCTs; there is nothing to check.
			vo.IgnoreSCT = true
			opts.Log.Infof("the trusted root lists no certificate-transparency log: certificates are not checked for SCTs")
		}
	}
	resolved, digests, err := resolveImages(ctx, opts.Registry, opts.Images, opts.Log, "verify")
	if err != nil {
		return nil, err
	}
	vo.RemoteOptions = opts.Registry.Remote(ctx)
	vres, err := signer.Verify(ctx, digests, vo)
	var verr *signer.VerificationError
	if err != nil && !errors.As(err, &verr) {
		return nil, verifyFailure(vo, digests[0].Context().String(), err)
	}
	res := &VerifyResult{VerifyResult: *vres, Resolved: resolved, Policy: policy}
	res.log(opts.Log)
	if verr != nil {
		return res, &failure.GateError{Verdict: "verify: " + verr.Error()}
	}
	return res, nil
}

func validateVerify(vo signer.VerifyOptions) error {
	hasID := vo.CertificateIdentity != "" || vo.CertificateIdentityRegexp != ""
	switch {
	case vo.PublicKey == "" && !hasID:
		return failure.Invalidf("verify: set certificate-identity (the signing workflow, e.g. https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main) or certificate-identity-regexp, or public-key for key-signed images")
	case vo.PublicKey != "" && hasID:
		return failure.Invalidf("verify: set either public-key or certificate-identity/certificate-identity-regexp, not both")
	case vo.CertificateIdentity != "" && vo.CertificateIdentityRegexp != "":
		return failure.Invalidf("verify: set either certificate-identity or certificate-identity-regexp, not both")
	}
	if vo.CertificateIdentityRegexp != "" {
		if _, err := regexp.Compile(vo.CertificateIdentityRegexp); err != nil {
			return failure.Invalidf("verify: certificate-identity-regexp %q is not a regular expression: %v", vo.CertificateIdentityRegexp, err)
		}
	}
	return nil
}

func loadTrustedRoot(path string) (*root.TrustedRoot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, failure.Invalid(fmt.Errorf("verify: cannot read trusted-root %s: %w", path, unwrapPathError(err)))
	}
	tr, err := root.NewTrustedRootFromJSON(raw)
	if err != nil {
		return nil, failure.Invalid(fmt.Errorf("verify: trusted-root %s is not a Sigstore trusted_root.json: %s", path, report.OneLine(err.Error())))
	}
	return tr, nil
}

// verifyFailure sorts errors that stopped verification before a verdict:
// bad inputs (exit 2) from services and registries that failed (exit 1).
func verifyFailure(vo signer.VerifyOptions, repo string, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, signer.ErrImageNotFound):
		return failure.Invalid(fmt.Errorf("verify: %w: check the images input", err))
	case strings.HasPrefix(vo.PublicKey, "awskms://") && strings.Contains(msg, "KMS key"):
		if kmsRefusal(err) {
			return failure.Invalid(fmt.Errorf("verify: %w", err))
		}
		return fmt.Errorf("verify: %w", err)
	case strings.HasPrefix(msg, "public-key"), strings.HasPrefix(msg, "require-attestations"), strings.HasPrefix(msg, "verify: set"):
		return failure.Invalid(fmt.Errorf("verify: %s", strings.TrimPrefix(msg, "verify: ")))
	}
	if code := refusedStatus(err); code != 0 {
		return fmt.Errorf("verify: %s (%v)", registry.Explain(errorStatus(code), "read signatures in", repo, registry.Read), err)
	}
	if strings.HasPrefix(msg, "verify: ") {
		return err
	}
	return fmt.Errorf("verify: %w", err)
}
