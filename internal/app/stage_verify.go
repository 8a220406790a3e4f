package app

import (
	"context"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
	"github.com/registry-actions/registry/internal/steps/sign"
)

func runVerify(ctx context.Context, r *Run) (report.Result, error) {
	v := r.Values
	images, err := r.targetImages(inputs.Verify)
	if err != nil {
		return nil, err
	}
	publicKey := v.String("public-key")
	if sign.IsKeyFile(publicKey) {
		publicKey = r.Path(publicKey)
	}
	opts := sign.VerifyOptions{
		Images: images,
		Verify: signer.VerifyOptions{
			CertificateIdentity:       v.String("certificate-identity"),
			CertificateIdentityRegexp: v.String("certificate-identity-regexp"),
			CertificateOIDCIssuer:     v.String("certificate-oidc-issuer"),
			PublicKey:                 publicKey,
			RequireAttestations:       lower(v.List("require-attestations")),
			Recursive:                 v.Bool("recursive"),
			IgnoreTlog:                !v.Bool("tlog-upload"),
		},
		TrustedRoot: r.Path(v.String("trusted-root")),
		Registry:    r.Registry,
		Log:         r.Log,
	}
	// Legacy signatures made by other tools may carry no log entry; Rekor is
	// asked for it online. With a private trusted root, only a Rekor the
	// user names is asked, never the public one.
	if opts.TrustedRoot == "" || v.IsSet("rekor-url") {
		opts.Verify.RekorURL = v.String("rekor-url")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	res, err := sign.Verify(ctx, opts)
	if res == nil {
		return nil, err
	}
	return res, err
}
