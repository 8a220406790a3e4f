package signer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Resolve returns the digest a reference points at, so that nothing is
// ever signed or verified by tag. A digest reference is checked to exist.
func Resolve(ctx context.Context, ref name.Reference, opts []remote.Option) (name.Digest, error) {
	d, err := resolve(ctx, ref, opts)
	return d, singleLine(err)
}

func resolve(ctx context.Context, ref name.Reference, opts []remote.Option) (name.Digest, error) {
	ropts := withContext(ctx, opts)
	desc, err := remote.Head(ref, ropts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return name.Digest{}, registryError(ref.String(), err)
		}
		// Some registries answer HEAD poorly; GET is authoritative.
		got, gerr := remote.Get(ref, ropts...)
		if gerr != nil {
			return name.Digest{}, registryError(ref.String(), gerr)
		}
		desc = &got.Descriptor
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// node is a manifest to sign or verify and, for an index, what it lists.
type node struct {
	digest   name.Digest
	platform string
	children []*node
}

// tree fetches the manifest of d and, when recursive, the manifests of any
// nested index, so the whole image is known before anything is written.
func tree(ctx context.Context, d name.Digest, opts []remote.Option, recursive bool) (*node, error) {
	desc, err := remote.Get(d, withContext(ctx, opts)...)
	if err != nil {
		return nil, registryError(d.String(), err)
	}
	n := &node{digest: d}
	if !recursive || !desc.MediaType.IsIndex() {
		return n, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	for _, m := range im.Manifests {
		cd := d.Context().Digest(m.Digest.String())
		var child *node
		if m.MediaType.IsIndex() {
			if child, err = tree(ctx, cd, opts, true); err != nil {
				return nil, err
			}
		} else {
			child = &node{digest: cd}
		}
		if m.Platform != nil {
			child.platform = m.Platform.String()
		}
		n.children = append(n.children, child)
	}
	return n, nil
}

// postOrder lists children before their parent: the signing order that
// never leaves a signed index above an unsigned platform manifest.
func (n *node) postOrder() []*node {
	var out []*node
	for _, c := range n.children {
		out = append(out, c.postOrder()...)
	}
	return append(out, n)
}

func withContext(ctx context.Context, opts []remote.Option) []remote.Option {
	out := make([]remote.Option, 0, len(opts)+1)
	out = append(out, opts...)
	return append(out, remote.WithContext(ctx))
}
