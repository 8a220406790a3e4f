package app

import (
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/scanner"
)

// pushedLocally is the image a chain's push read from an OCI layout or OCI
// archive, kept open by push for the stages after it (a platform subset
// included: it is what push wrote): a scan reads its layers from disk
// instead of pulling back what push just uploaded. The caller closes it;
// it is handed out once.
func (r *Run) pushedLocally() (scanner.Artifact, func(), bool) {
	src := r.State.Source
	if src == nil {
		return nil, nil, false
	}
	r.State.Source = nil
	closeFn := func() { src.Close() }
	switch src.Kind {
	case registry.SourceLayout, registry.SourceOCIArchive:
	default:
		// A docker-save tarball holds its layers uncompressed, unlike what
		// push uploaded.
		closeFn()
		return nil, nil, false
	}
	if d, err := src.Root.Digest(); err != nil || d.String() != r.State.Digest {
		closeFn()
		return nil, nil, false
	}
	return src.Root, closeFn, true
}
