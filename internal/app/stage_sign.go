package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
	"github.com/registry-actions/registry/internal/steps/sign"
	"github.com/registry-actions/registry/internal/version"
)

func runSign(ctx context.Context, r *Run) (report.Result, error) {
	v := r.Values
	images, err := r.targetImages(inputs.Sign)
	if err != nil {
		return nil, err
	}
	annotations, err := sign.ParseAnnotations(v.List("annotations"))
	if err != nil {
		v.Fail(err)
	}
	rawKey := v.String("key")
	key := r.signKey()
	switch {
	case strings.HasPrefix(rawKey, "env://"):
		// The variable holds the private key.
		maskKey(r, r.IO.Getenv(strings.TrimPrefix(rawKey, "env://")))
	case strings.Contains(rawKey, "-----BEGIN"):
		// Key material given inline; a path or KMS URI is not secret and
		// stays readable in messages and verify commands.
		maskKey(r, rawKey)
	}
	requestToken := r.IO.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	r.Mask(requestToken)
	opts := sign.Options{
		Images: images,
		Signer: signer.Options{
			Key:         key,
			KeyPassword: v.String("key-password"),
			FulcioURL:   v.String("fulcio-url"),
			TlogUpload:  v.Bool("tlog-upload"),
			RekorURL:    v.String("rekor-url"),
			Format:      signer.Format(strings.ToLower(v.String("signature-format"))),
			Recursive:   v.Bool("recursive"),
		},
		PublicKey:   sign.PublicKeyHint(rawKey),
		Annotations: annotations,
		Run:         runInfo(r),
		Attest:      lower(v.List("attest")),
		VulnFile:    r.Path(v.String("vuln-file")),
		SBOMFile:    r.Path(v.String("sbom-file")),
		KeyLoad:     r.State.SignKey,
		Registry:    r.Registry,
		Log:         r.Log,
	}
	if key == "" {
		opts.Signer.IDToken = signer.GitHubActionsToken(r.IO.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), requestToken)
	}
	for _, s := range r.State.Scans {
		opts.Reports = append(opts.Reports, sign.Report{Image: s.Image, Platform: s.Platform, Digest: s.Digest, TrivyJSON: r.Path(s.TrivyJSON), SBOM: r.Path(s.SBOM)})
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	res, err := sign.Run(ctx, opts)
	if res == nil {
		return nil, err
	}
	return res, err
}

// signKey is the key input, a file resolved against the working directory.
func (r *Run) signKey() string {
	key := r.Values.String("key")
	if sign.IsKeyFile(key) {
		return r.Path(key)
	}
	return key
}

// startSignKey starts decrypting the signing key when a chain will sign
// after other stages, so the key's deliberately slow decryption overlaps
// them. A key that does not load fails the sign stage, as it would have.
func (r *Run) startSignKey(ctx context.Context, chain []inputs.Stage) {
	if len(chain) < 2 || chain[0] == inputs.Sign || !slices.Contains(chain, inputs.Sign) {
		return
	}
	r.State.SignKey = sign.StartKeyLoad(ctx, r.signKey(), r.Values.String("key-password"))
}

// runInfo describes the workflow run from the variables every runner sets;
// a local run has none and signs without them.
func runInfo(r *Run) sign.RunInfo {
	env := r.IO.Getenv
	ri := sign.RunInfo{
		Repository:  env("GITHUB_REPOSITORY"),
		Commit:      env("GITHUB_SHA"),
		WorkflowRef: env("GITHUB_WORKFLOW_REF"),
		RunID:       env("GITHUB_RUN_ID"),
		Builder:     version.UserAgent(),
	}
	if server := env("GITHUB_SERVER_URL"); server != "" && ri.Repository != "" && ri.RunID != "" {
		ri.RunURL = fmt.Sprintf("%s/%s/actions/runs/%s", strings.TrimSuffix(server, "/"), ri.Repository, ri.RunID)
		if attempt := env("GITHUB_RUN_ATTEMPT"); attempt != "" && attempt != "1" {
			ri.RunURL += "/attempts/" + attempt
		}
	}
	return ri
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(s)
	}
	return out
}

// maskKey hides PEM key material line by line (a runner masks what appears
// within one log line), so no fragment of the key survives in the log.
func maskKey(r *Run, pem string) {
	for _, line := range strings.Split(pem, "\n") {
		if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			r.Mask(line)
		}
	}
}
