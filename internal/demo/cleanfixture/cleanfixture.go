// Package cleanfixture builds repositories with a history for the clean
// stage's tests and demo: images of chosen ages, multi-arch indexes with
// buildx attestation manifests, cosign-style signatures tagged
// sha256-<hex>.sig, and OCI 1.1 referrers naming a subject. Content is
// derived from a seed, so the same spec always gives the same digests.
package cleanfixture

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/demo/synth"
)

// Image is one image of a repository's history.
type Image struct {
	Tags []string
	// Created is the image's creation time (config created; default
	// 2024-01-01).
	Created time.Time
	// Annotate also sets org.opencontainers.image.created on the top
	// manifest.
	Annotate bool
	// Platforms: two or more build an index; one (default linux/amd64)
	// builds a single image manifest.
	Platforms []string
	// Attestations adds a buildx attestation manifest per platform to the
	// index.
	Attestations bool
	// Signature adds a signature manifest tagged sha256-<hex>.sig.
	Signature bool
	// Referrer adds an untagged OCI 1.1 artifact whose subject is the image.
	Referrer bool
	// Seed varies the content: images with equal specs and seeds are equal.
	Seed uint64
}

// Roles of the manifests of a built image.
const (
	RoleImage       = "image"       // the top manifest: an index or a single image
	RolePlatform    = "platform"    // a platform image listed by the index
	RoleAttestation = "attestation" // a buildx attestation manifest listed by the index
	RoleSignature   = "signature"   // tagged sha256-<hex>.sig
	RoleReferrer    = "referrer"    // names the image as its subject
	// RoleReferrersIndex is the sha256-<hex> index a registry without the
	// referrers API holds in place of it (written by Push).
	RoleReferrersIndex = "referrers-index"
)

// Manifest is one manifest of a built image, as a registry stores it.
type Manifest struct {
	Digest    string
	MediaType string
	Body      []byte
	Tags      []string
	Role      string
	// Subject is the digest a referrer names.
	Subject string
	// Size is the manifest plus, for an image, its config and layers.
	Size int64
	// Blobs holds the small blobs a cleaner reads (a signature's payload
	// layer), by digest, for stand-ins that serve blobs without a registry.
	Blobs map[string][]byte
}

// Built is an image and everything that belongs to it.
type Built struct {
	// Digest is the top manifest's digest.
	Digest    string
	Manifests []Manifest

	top       v1.Image
	topIndex  v1.ImageIndex
	signature v1.Image
	referrer  v1.Image
}

// Digests lists every manifest's digest, the image's first.
func (b *Built) Digests() []string {
	out := make([]string, len(b.Manifests))
	for i, m := range b.Manifests {
		out[i] = m.Digest
	}
	return out
}

// Build makes the image and its companions in memory.
func Build(spec Image) (*Built, error) {
	created := spec.Created
	if created.IsZero() {
		created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	platforms := spec.Platforms
	if len(platforms) == 0 {
		platforms = []string{"linux/amd64"}
	}
	var annotations map[string]string
	if spec.Annotate {
		annotations = map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)}
	}
	b := &Built{}
	images := make([]synth.Image, 0, len(platforms))
	for i, ps := range platforms {
		p, err := synth.Platform(ps)
		if err != nil {
			return nil, err
		}
		images = append(images, synth.Image{
			Platform: p,
			Created:  created,
			Layers: []synth.Layer{{
				Files: map[string][]byte{"app/build": fmt.Appendf(nil, "seed %d platform %d created %s\n", spec.Seed, i, created.Format(time.RFC3339))},
				Seed:  spec.Seed,
			}},
		})
	}
	var subject v1.Descriptor
	if len(images) == 1 && !spec.Attestations {
		images[0].Annotations = annotations
		img, err := synth.NewImage(images[0])
		if err != nil {
			return nil, err
		}
		b.top = img
		m, err := manifestOf(img, RoleImage, spec.Tags)
		if err != nil {
			return nil, err
		}
		b.Manifests = append(b.Manifests, m)
		subject = descriptorOf(m)
	} else {
		idx, err := synth.NewIndex(synth.Index{Images: images, Attestations: spec.Attestations, Annotations: annotations})
		if err != nil {
			return nil, err
		}
		b.topIndex = idx
		raw, err := idx.RawManifest()
		if err != nil {
			return nil, err
		}
		d, _ := idx.Digest()
		top := Manifest{Digest: d.String(), MediaType: string(types.OCIImageIndex), Body: raw, Tags: spec.Tags, Role: RoleImage, Size: int64(len(raw))}
		b.Manifests = append(b.Manifests, top)
		subject = descriptorOf(top)
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, desc := range im.Manifests {
			img, err := idx.Image(desc.Digest)
			if err != nil {
				return nil, err
			}
			role := RolePlatform
			if desc.Platform != nil && desc.Platform.OS == "unknown" {
				role = RoleAttestation
			}
			m, err := manifestOf(img, role, nil)
			if err != nil {
				return nil, err
			}
			b.Manifests = append(b.Manifests, m)
		}
	}
	b.Digest = b.Manifests[0].Digest

	if spec.Signature {
		sig, err := signature(b.Digest, spec.Seed)
		if err != nil {
			return nil, err
		}
		b.signature = sig
		h, _ := v1.NewHash(b.Digest)
		m, err := manifestOf(sig, RoleSignature, []string{fmt.Sprintf("%s-%s.sig", h.Algorithm, h.Hex)})
		if err != nil {
			return nil, err
		}
		if m.Blobs, err = layerBlobs(sig); err != nil {
			return nil, err
		}
		b.Manifests = append(b.Manifests, m)
	}
	if spec.Referrer {
		ref, err := referrer(subject, spec.Seed)
		if err != nil {
			return nil, err
		}
		b.referrer = ref
		m, err := manifestOf(ref, RoleReferrer, nil)
		if err != nil {
			return nil, err
		}
		m.Subject = b.Digest
		b.Manifests = append(b.Manifests, m)
	}
	return b, nil
}

// Push builds the image and writes it to repo: the image under its tags,
// the signature under its sha256-<hex>.sig tag, the referrer by digest (a
// registry without the referrers API then also holds a sha256-<hex> index
// listing it, which is added to the result).
func Push(ctx context.Context, repo name.Repository, spec Image, opts ...remote.Option) (*Built, error) {
	b, err := Build(spec)
	if err != nil {
		return nil, err
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	opts = append(opts, remote.Reuse(pusher))
	var target name.Reference = repo.Digest(b.Digest)
	if len(spec.Tags) > 0 {
		target = repo.Tag(spec.Tags[0])
	}
	if b.topIndex != nil {
		err = remote.WriteIndex(target, b.topIndex, opts...)
	} else {
		err = remote.Write(target, b.top, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", target, err)
	}
	for _, t := range spec.Tags[min(1, len(spec.Tags)):] {
		var tagged remote.Taggable = b.top
		if b.topIndex != nil {
			tagged = b.topIndex
		}
		if err := remote.Tag(repo.Tag(t), tagged, opts...); err != nil {
			return nil, fmt.Errorf("tag %s: %w", t, err)
		}
	}
	for _, m := range b.Manifests {
		switch m.Role {
		case RoleSignature:
			if err := remote.Write(repo.Tag(m.Tags[0]), b.signature, opts...); err != nil {
				return nil, fmt.Errorf("push signature: %w", err)
			}
		case RoleReferrer:
			if err := remote.Write(repo.Digest(m.Digest), b.referrer, opts...); err != nil {
				return nil, fmt.Errorf("push referrer: %w", err)
			}
		}
	}
	if spec.Referrer {
		h, _ := v1.NewHash(b.Digest)
		fallback := repo.Tag(h.Algorithm + "-" + h.Hex)
		desc, err := remote.Get(fallback, opts...)
		if err == nil {
			b.Manifests = append(b.Manifests, Manifest{
				Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Body: desc.Manifest,
				Tags: []string{fallback.TagStr()}, Role: RoleReferrersIndex, Size: int64(len(desc.Manifest)),
			})
		}
	}
	return b, nil
}

// signature is a cosign signature manifest about digest, as cosign writes
// it: one layer holding the simple-signing payload itself (JSON naming the
// signed digest), the signature in an annotation.
func signature(digest string, seed uint64) (v1.Image, error) {
	payload := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":"fixture"},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":{"seed":%d}}`, digest, seed)
	layer := static.NewLayer(payload, SimpleSigningMediaType)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: SimpleSigningMediaType,
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": fmt.Sprintf("MEUCIQ-fixture-%d", seed)}})
}

// SimpleSigningMediaType is the media type of a cosign signature's payload layer.
const SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"

// referrer is an OCI 1.1 artifact (an SBOM, say) naming subject.
func referrer(subject v1.Descriptor, seed uint64) (v1.Image, error) {
	layer, err := synth.NewLayer(synth.Layer{Files: map[string][]byte{"sbom.json": fmt.Appendf(nil, `{"bomFormat":"CycloneDX","seed":%d}`, seed)}})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: "application/vnd.cyclonedx+json"})
	if err != nil {
		return nil, err
	}
	return mutate.Subject(img, subject).(v1.Image), nil
}

func layerBlobs(img v1.Image) (map[string][]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out[d.String()] = data
	}
	return out, nil
}

func manifestOf(img v1.Image, role string, tags []string) (Manifest, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return Manifest{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return Manifest{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return Manifest{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Manifest{}, err
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return Manifest{Digest: d.String(), MediaType: string(mt), Body: raw, Tags: tags, Role: role, Size: size}, nil
}

func descriptorOf(m Manifest) v1.Descriptor {
	h, _ := v1.NewHash(m.Digest)
	return v1.Descriptor{MediaType: types.MediaType(m.MediaType), Digest: h, Size: int64(len(m.Body))}
}
