package app

import (
	"context"

	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/scanner"
)

// sourceOpener opens a source spec the way push does (registry.Client).
type sourceOpener interface {
	OpenSource(ctx context.Context, spec string) (*registry.Source, error)
}

// pushedLocally is the image a chain's push read from an OCI layout or OCI
// archive, opened again for the stages after it, when it is the very
// manifest push wrote (a platform subset or a build is not): a scan reads
// its layers from disk instead of pulling back what push just uploaded.
// The caller closes it.
func (r *Run) pushedLocally(ctx context.Context, open sourceOpener) (scanner.Artifact, func(), bool) {
	if r.State.Source == "" || r.State.Digest == "" {
		return nil, nil, false
	}
	src, err := open.OpenSource(ctx, r.State.Source)
	if err != nil {
		return nil, nil, false
	}
	closeFn := func() { src.Close() }
	switch src.Kind {
	case registry.SourceLayout, registry.SourceOCIArchive:
	default:
		// A registry is no nearer than the target; a docker-save tarball
		// holds its layers uncompressed, unlike what push uploaded.
		closeFn()
		return nil, nil, false
	}
	if d, err := src.Root.Digest(); err != nil || d.String() != r.State.Digest {
		closeFn()
		return nil, nil, false
	}
	return src.Root, closeFn, true
}
