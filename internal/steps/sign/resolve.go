package sign

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
)

// Resolved is one image as the user named it and the digest acted on.
type Resolved struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"` // repository@sha256:…
	// FromTag is true when Reference named a tag that was resolved.
	FromTag bool `json:"fromTag,omitempty"`
}

// resolveImages pins every reference to its digest, so that nothing is ever
// signed or verified by tag, and drops repeats. verb names the stage in
// messages ("sign", "verify").
func resolveImages(ctx context.Context, reg *registry.Client, images []string, log report.Logger, verb string) ([]Resolved, []name.Digest, error) {
	if len(images) == 0 {
		return nil, nil, failure.Invalidf("%s: input \"images\" is required: name the images to %s, or run push earlier in the same chain", verb, verb)
	}
	var out []Resolved
	var digests []name.Digest
	seen := map[string]bool{}
	for _, s := range images {
		// ghcr.io stores owner and repository lower-cased; workflows often
		// build references from github.repository, which may not be.
		if lowered, changed := registry.LowercaseGHCR(s); changed {
			log.Infof("%s lower-cased to %s for ghcr.io", s, lowered)
			s = lowered
		}
		ref, err := reg.Reference(s)
		if err != nil {
			return nil, nil, failure.Invalid(fmt.Errorf("%s: images: %w", verb, err))
		}
		d, err := signer.Resolve(ctx, ref, reg.Remote(ctx))
		if err != nil {
			return nil, nil, registryFailure(verb, "read", ref.Context().String(), registry.Read, err)
		}
		_, isDigest := ref.(name.Digest)
		if !isDigest {
			log.Infof("%s resolved to %s; acting on the digest, never the tag", ref, d.DigestStr())
		}
		if seen[d.String()] {
			continue
		}
		seen[d.String()] = true
		out = append(out, Resolved{Reference: ref.String(), Digest: d.String(), FromTag: !isDigest})
		digests = append(digests, d)
	}
	return out, digests, nil
}

// registryFailure words a registry error from the signer as one line naming
// the fix. A missing image is the images input's fault (exit 2); a refused
// request names the permission the job lacks.
func registryFailure(verb, action, repo string, access registry.Access, err error) error {
	if errors.Is(err, signer.ErrImageNotFound) {
		return failure.Invalid(fmt.Errorf("%s: %w: check the images input", verb, err))
	}
	if code := refusedStatus(err); code != 0 {
		hint := registry.Explain(errorStatus(code), action, repo, access)
		return fmt.Errorf("%s: %s (%v)", verb, hint, err)
	}
	return fmt.Errorf("%s: %w", verb, err)
}

// refusedStatus finds a 401 or 403 in an error, by type when the chain is
// kept and by the registry's error codes when the library flattened it.
func refusedStatus(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return terr.StatusCode
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "UNAUTHORIZED") || strings.Contains(msg, "status code 401"):
		return http.StatusUnauthorized
	case strings.Contains(msg, "DENIED") || strings.Contains(msg, "status code 403"):
		return http.StatusForbidden
	}
	return 0
}

// kmsRefusal tells a KMS key that does not exist (the key input is wrong:
// exit 2) from one the job may not use (a permission: exit 1).
func kmsRefusal(err error) (notFound bool) {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotFoundException"
}

// errorStatus stands for a refused request so registry.Explain can name the
// permission it needs.
func errorStatus(code int) error { return &transport.Error{StatusCode: code} }
