package app

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/sign"
)

// State is what earlier stages of a chain hand to later ones.
type State struct {
	// Pushed holds repository@digest for every target push wrote, in order.
	Pushed []string
	// Digest is the digest push produced (the same at every target).
	Digest string
	// Scans holds, per scanned image, the report files a later sign stage
	// can attest.
	Scans []ScannedImage
	// Source is the local source push read, still open: scan reads the
	// pushed image from it instead of pulling it back (same digests).
	Source *registry.Source
	// SignKey is the signing key, loading since the chain started.
	SignKey *sign.KeyLoad
}

// ScannedImage links an image to the reports scan wrote about it.
type ScannedImage struct {
	Image     string // repository@digest
	Platform  string
	Digest    string // the platform manifest's digest
	TrivyJSON string
	SBOM      string
}

// stageRunner runs one stage. A non-nil result is reported even when an
// error comes with it.
type stageRunner func(ctx context.Context, r *Run) (report.Result, error)

func runnerFor(st inputs.Stage) (stageRunner, bool) {
	switch st {
	case inputs.Push:
		return runPush, true
	case inputs.Scan:
		return runScan, true
	case inputs.Sign:
		return runSign, true
	case inputs.Verify:
		return runVerify, true
	case inputs.Clean:
		return runClean, true
	}
	return nil, false
}

// targetImages returns what a stage acts on. After push in the same chain,
// scan, sign and verify take the digests push wrote (there the images input
// names push's target repositories) and clean takes those repositories;
// otherwise the images input.
func (r *Run) targetImages(st inputs.Stage) ([]string, error) {
	if st != inputs.Clean && len(r.State.Pushed) > 0 {
		return r.State.Pushed, nil
	}
	if imgs := r.Values.List("images"); len(imgs) > 0 {
		return imgs, nil
	}
	if len(r.State.Pushed) > 0 {
		var repos []string
		for _, p := range r.State.Pushed {
			repo, _, _ := strings.Cut(p, "@")
			repos = append(repos, repo)
		}
		return repos, nil
	}
	return nil, failure.Invalidf("%s: input \"images\" is required: name the images to %s, or run push earlier in the same chain", st, st)
}

// ecrTokens gets ECR registry passwords through the AWS SDK's default
// credential chain, one client per region.
type ecrTokens struct {
	mu      sync.Mutex
	clients map[string]*ecr.Client
}

func newECRTokens() registry.ECRTokens {
	return &ecrTokens{clients: map[string]*ecr.Client{}}
}

func (t *ecrTokens) AuthorizationToken(ctx context.Context, host registry.ECRHost) (string, string, time.Time, error) {
	client, err := t.client(ctx, host.Region)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return client.AuthorizationToken(ctx, host.AccountID)
}

func (t *ecrTokens) client(ctx context.Context, region string) (*ecr.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.clients[region]; ok {
		return c, nil
	}
	c, err := ecr.New(ctx, ecr.Options{Region: region})
	if err != nil {
		return nil, err
	}
	t.clients[region] = c
	return c, nil
}
