package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SourceKind is where an image to publish comes from.
type SourceKind string

const (
	SourceLayout        SourceKind = "oci-layout"
	SourceOCIArchive    SourceKind = "oci-archive"
	SourceDockerArchive SourceKind = "docker-archive"
	SourceRegistry      SourceKind = "registry"
)

// Artifact is an image or an index: what a tag can point at.
type Artifact interface {
	MediaType() (types.MediaType, error)
	Digest() (v1.Hash, error)
	RawManifest() ([]byte, error)
}

// Source is an opened image source.
type Source struct {
	Kind SourceKind
	// Spec is what the user wrote.
	Spec string
	// Root is a v1.Image or a v1.ImageIndex.
	Root Artifact
	// Ref is set for registry sources: blobs may be mounted from it when a
	// target lives on the same registry.
	Ref name.Reference
	// Note explains anything the user should know about this source, e.g.
	// that a docker-save tarball's manifest was regenerated.
	Note  string
	close func() error
}

// Close releases files the source holds open.
func (s *Source) Close() error {
	if s.close != nil {
		return s.close()
	}
	return nil
}

// Prefixes that say what a source is, as skopeo spells its transports, for
// when the type cannot be guessed.
var sourcePrefixes = map[string]SourceKind{
	"oci:":            SourceLayout,
	"oci-layout:":     SourceLayout,
	"oci-archive:":    SourceOCIArchive,
	"docker-archive:": SourceDockerArchive,
	"docker://":       SourceRegistry,
	"registry:":       SourceRegistry,
}

// OpenSource opens what spec names: an OCI layout directory, an OCI archive,
// a docker-save tarball or a registry reference. The kind is detected; a
// prefix (oci:, oci-archive:, docker-archive:, docker://) settles ambiguity.
func (c *Client) OpenSource(ctx context.Context, spec string) (*Source, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("no source: set source to an OCI layout directory, an OCI archive, a docker-save tarball or an image reference (or set context to build)")
	}
	for prefix, kind := range sourcePrefixes {
		if strings.HasPrefix(spec, prefix) {
			return c.openAs(ctx, kind, strings.TrimPrefix(spec, prefix), spec)
		}
	}
	info, statErr := os.Stat(spec)
	_, refErr := c.Reference(spec)
	looksRemote := refErr == nil && strings.Contains(strings.SplitN(spec, "/", 2)[0], ".") && strings.Contains(spec, "/")
	switch {
	case statErr == nil && looksRemote:
		return nil, fmt.Errorf("source %q is both a local path and an image reference: write oci:%s (or oci-archive:, docker-archive:) for the file, or docker://%s for the registry", spec, spec, spec)
	case statErr == nil && info.IsDir():
		return c.openAs(ctx, SourceLayout, spec, spec)
	case statErr == nil:
		kind, err := archiveKind(spec)
		if err != nil {
			return nil, err
		}
		return c.openAs(ctx, kind, spec, spec)
	case refErr == nil && !strings.HasPrefix(spec, ".") && !strings.HasPrefix(spec, "/"):
		return c.openAs(ctx, SourceRegistry, spec, spec)
	}
	return nil, fmt.Errorf("source %q not found: it is neither an existing file or directory nor a valid image reference", spec)
}

func (c *Client) openAs(ctx context.Context, kind SourceKind, target, spec string) (*Source, error) {
	switch kind {
	case SourceLayout:
		root, err := openLayout(target)
		if err != nil {
			return nil, err
		}
		return &Source{Kind: kind, Spec: spec, Root: root}, nil
	case SourceOCIArchive:
		root, closeFn, err := openOCIArchive(target)
		if err != nil {
			return nil, err
		}
		return &Source{Kind: kind, Spec: spec, Root: root, close: closeFn}, nil
	case SourceDockerArchive:
		return openDockerArchive(target, spec)
	case SourceRegistry:
		ref, err := c.Reference(target)
		if err != nil {
			return nil, err
		}
		desc, err := remote.Get(ref, c.Remote(ctx)...)
		if err != nil {
			return nil, Explain(err, "read source", ref.String(), Read)
		}
		var root Artifact
		if desc.MediaType.IsIndex() {
			root, err = desc.ImageIndex()
		} else {
			root, err = desc.Image()
		}
		if err != nil {
			return nil, fmt.Errorf("read source %s: %w", ref, err)
		}
		return &Source{Kind: kind, Spec: spec, Root: root, Ref: ref}, nil
	}
	return nil, fmt.Errorf("unknown source kind %q", kind)
}

// archiveKind tells an OCI archive from a docker-save tarball by their
// marker files. docker save from the containerd image store writes both;
// the OCI side keeps the original digests, so it wins.
func archiveKind(path string) (SourceKind, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("source %s: %w", path, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var hasLayout, hasManifest bool
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("source %s is not a tar archive (an OCI archive or docker-save tarball): %v", path, err)
		}
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "oci-layout":
			hasLayout = true
		case "manifest.json":
			hasManifest = true
		}
	}
	switch {
	case hasLayout:
		return SourceOCIArchive, nil
	case hasManifest:
		return SourceDockerArchive, nil
	}
	return "", fmt.Errorf("source %s is a tar archive but neither an OCI archive (no oci-layout file) nor a docker-save tarball (no manifest.json)", path)
}

func openLayout(dir string) (Artifact, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("source %s is a directory but not an OCI layout (no oci-layout file): write one with docker buildx build --output type=oci,tar=false,dest=%s", dir, dir)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("source %s: read index.json: %w", dir, err)
	}
	return pickRoot(dir, idx)
}

// pickRoot chooses what an OCI layout's index.json designates: its single
// entry, or — when every entry is a platform image, as some exporters write
// multi-arch images — the index.json itself.
func pickRoot(where string, top v1.ImageIndex) (Artifact, error) {
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("source %s: index.json: %w", where, err)
	}
	switch len(im.Manifests) {
	case 0:
		return nil, fmt.Errorf("source %s holds no image (index.json is empty)", where)
	case 1:
		return childOf(top, im.Manifests[0])
	}
	allPlatforms := true
	var names []string
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			allPlatforms = false
		}
		n := d.Annotations["org.opencontainers.image.ref.name"]
		if n == "" {
			n = d.Digest.String()
		}
		names = append(names, n)
	}
	if allPlatforms {
		return top, nil
	}
	return nil, fmt.Errorf("source %s holds %d images (%s): export one image per layout", where, len(im.Manifests), strings.Join(names, ", "))
}

func childOf(idx v1.ImageIndex, d v1.Descriptor) (Artifact, error) {
	switch {
	case d.MediaType.IsIndex():
		return idx.ImageIndex(d.Digest)
	case d.MediaType.IsImage():
		return idx.Image(d.Digest)
	}
	return nil, fmt.Errorf("unsupported manifest media type %q", d.MediaType)
}

func openDockerArchive(path, spec string) (*Source, error) {
	mf, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return nil, fmt.Errorf("source %s: read docker-save manifest.json: %w", path, err)
	}
	if len(mf) != 1 {
		var tags []string
		for _, d := range mf {
			tags = append(tags, d.RepoTags...)
		}
		return nil, fmt.Errorf("source %s holds %d images (%s): save one image per tarball", path, len(mf), strings.Join(tags, ", "))
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	return &Source{Kind: SourceDockerArchive, Spec: spec, Root: img,
		Note: "docker save stores no registry manifest: the manifest was rebuilt, so the digest is computed here (save with the containerd image store, or push an OCI archive, to keep the build's digest)"}, nil
}
