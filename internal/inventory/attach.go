package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"golang.org/x/sync/errgroup"

	"github.com/registry-actions/registry/internal/lifecycle"
)

// Media types of the layers that say what a cosign artifact is about.
const (
	mediaSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	mediaDSSE          = "application/vnd.dsse.envelope.v1+json"
	// maxProofBlob bounds what is read to prove an attachment.
	maxProofBlob = 4 << 20
)

// errBlobMissing: the registry has no such blob.
var errBlobMissing = errors.New("blob not found")

// blobReader reads a small blob of the repository; errBlobMissing when the
// registry has none.
type blobReader func(ctx context.Context, digest string) ([]byte, error)

// prover decides, once per artifact, whether a cosign-style tag
// ("sha256-<hex>.sig", ".att", or the referrers tag "sha256-<hex>") really
// attaches the artifact to that digest: the signature payload names it, the
// attestation statement has it as subject, the referrers index lists
// referrers of it, or the artifact's OCI subject is it. A tag of that shape
// without such proof is an ordinary tag, as ECR sees it.
type prover struct {
	mu     sync.Mutex
	proven map[string]string // artifact digest -> the digest its content names, "" for none
}

// manifestOf gives the manifest an artifact of the inventory has.
type manifestOf func(digest string) (manifestInfo, bool)

// attach fills AttachedTo where the content proves the tag. A payload that
// cannot be read makes the artifact unreadable: judged as a plain tagged
// image, a signature could be expired while its image stays.
func (p *prover) attach(ctx context.Context, inv *Inventory, info manifestOf, read blobReader, concurrency int) error {
	p.mu.Lock()
	if p.proven == nil {
		p.proven = map[string]string{}
	}
	p.mu.Unlock()
	subjectOf := map[string]string{}
	for i := range inv.Artifacts {
		subjectOf[inv.Artifacts[i].Digest] = inv.Artifacts[i].Subject
	}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(max(concurrency, 1))
	for i := range inv.Artifacts {
		a := &inv.Artifacts[i]
		for _, tag := range a.Tags {
			named, kind, ok := lifecycle.SubjectFromCosignTag(tag)
			if !ok || named == a.Digest {
				continue
			}
			if a.Subject == named {
				a.AttachedTo = named
				break
			}
			p.mu.Lock()
			known, cached := p.proven[a.Digest]
			p.mu.Unlock()
			if cached {
				if known == named {
					a.AttachedTo = named
				}
				break
			}
			m, ok := info(a.Digest)
			if !ok {
				break
			}
			g.Go(func() error {
				names, problem, err := prove(ctx, m, kind, read, subjectOf)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if problem != "" {
					inv.Unreadable = append(inv.Unreadable, Unreadable{Digest: a.Digest, Tags: a.Tags, Reason: problem})
					return nil
				}
				p.mu.Lock()
				p.proven[a.Digest] = names
				p.mu.Unlock()
				if names == named {
					a.AttachedTo = named
				}
				return nil
			})
			break
		}
	}
	return g.Wait()
}

// prove returns the digest an artifact's content says it is about ("" for
// none), or a problem when the content cannot be read.
func prove(ctx context.Context, m manifestInfo, kind string, read blobReader, subjectOf map[string]string) (names, problem string, err error) {
	switch kind {
	case lifecycle.TagKindSignature:
		for _, l := range m.Layers {
			if l.MediaType != mediaSimpleSigning {
				continue
			}
			data, problem, err := readProof(ctx, read, l)
			if problem != "" || err != nil {
				return "", problem, err
			}
			var payload struct {
				Critical struct {
					Image struct {
						Digest string `json:"docker-manifest-digest"`
					} `json:"image"`
				} `json:"critical"`
			}
			if json.Unmarshal(data, &payload) == nil {
				return payload.Critical.Image.Digest, "", nil
			}
			return "", "", nil
		}
	case lifecycle.TagKindAttestation:
		for _, l := range m.Layers {
			if l.MediaType != mediaDSSE {
				continue
			}
			data, problem, err := readProof(ctx, read, l)
			if problem != "" || err != nil {
				return "", problem, err
			}
			return statementSubject(data), "", nil
		}
	case lifecycle.TagKindReferrers:
		// An index standing in for the referrers API lists referrers of
		// one subject: every one of them present must name it.
		var named string
		for _, c := range m.Children {
			s, present := subjectOf[c.Digest]
			switch {
			case !present:
				continue
			case s == "" || named != "" && s != named:
				return "", "", nil
			}
			named = s
		}
		return named, "", nil
	}
	// An SBOM attached by tag says nothing of its subject.
	return "", "", nil
}

func readProof(ctx context.Context, read blobReader, l layerRef) ([]byte, string, error) {
	if l.Size > maxProofBlob {
		return nil, "", nil
	}
	data, err := read(ctx, l.Digest)
	if errors.Is(err, errBlobMissing) {
		return nil, fmt.Sprintf("its payload %s is missing from the registry", Short(l.Digest)), nil
	}
	if err != nil {
		return nil, "", err
	}
	return data, "", nil
}

// statementSubject returns the first subject digest of the in-toto
// statement a DSSE envelope carries.
func statementSubject(envelope []byte) string {
	var env dsse.Envelope
	if json.Unmarshal(envelope, &env) != nil {
		return ""
	}
	raw, err := env.DecodeB64Payload()
	if err != nil {
		return ""
	}
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(raw, &st) != nil {
		return ""
	}
	for _, s := range st.Subject {
		for _, alg := range []string{"sha256", "sha512"} {
			if hex := s.Digest[alg]; hex != "" {
				return alg + ":" + hex
			}
		}
	}
	return ""
}

// describe fills each artifact's Detail: what it is and its platforms.
func describe(inv *Inventory, info manifestOf) {
	childPlatform := map[string]string{}
	childOf := map[string]bool{}
	for i := range inv.Artifacts {
		m, ok := info(inv.Artifacts[i].Digest)
		if !ok {
			continue
		}
		for _, c := range m.Children {
			childOf[c.Digest] = true
			if c.Platform != "" {
				childPlatform[c.Digest] = c.Platform
			}
		}
	}
	for i := range inv.Artifacts {
		a := &inv.Artifacts[i]
		d := inv.detail(a.Digest)
		m, ok := info(a.Digest)
		if p := childPlatform[a.Digest]; p != "" && !slices.Contains(d.Platforms, p) && !strings.HasPrefix(p, "unknown/") {
			d.Platforms = append(d.Platforms, p)
		}
		d.Kind = kindOf(a, m, ok, childOf[a.Digest], childPlatform[a.Digest])
		if ok && m.IsIndex {
			d.Platforms = nil
			for _, c := range m.Children {
				if c.Platform != "" && !c.isAttestation() && !slices.Contains(d.Platforms, c.Platform) {
					d.Platforms = append(d.Platforms, c.Platform)
				}
			}
		}
	}
}

func kindOf(a *lifecycle.Artifact, m manifestInfo, known, child bool, platform string) string {
	for _, t := range a.Tags {
		if !a.Attachment(t) {
			continue
		}
		_, kind, _ := lifecycle.SubjectFromCosignTag(t)
		switch kind {
		case lifecycle.TagKindSignature:
			return KindSignature
		case lifecycle.TagKindAttestation:
			return KindInToto
		case lifecycle.TagKindSBOM:
			return KindSBOM
		case lifecycle.TagKindReferrers:
			return KindReferrers
		}
	}
	if a.Subject != "" {
		what := strings.ToLower(m.ArtifactType + " " + m.ConfigType)
		for _, l := range m.Layers {
			what += " " + strings.ToLower(l.MediaType)
		}
		switch {
		case strings.Contains(what, "sigstore.bundle") || strings.Contains(what, "simplesigning"):
			return KindSignature
		case strings.Contains(what, "in-toto") || strings.Contains(what, "dsse"):
			return KindInToto
		case strings.Contains(what, "spdx") || strings.Contains(what, "cyclonedx"):
			return KindSBOM
		}
		return KindReferrer
	}
	switch {
	case known && m.IsIndex:
		return KindIndex
	case child && strings.HasPrefix(platform, "unknown/"):
		return KindAttestation
	case child:
		return KindPlatform
	case known && m.ConfigType != "" && !strings.Contains(m.ConfigType, "image.config") && !strings.Contains(m.ConfigType, "container.image"):
		return KindArtifact
	}
	return KindImage
}
