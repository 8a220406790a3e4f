package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/report"
)

// SourceKind is where an image comes from.
type SourceKind string

const (
	SourceLayout        SourceKind = "oci-layout"
	SourceOCIArchive    SourceKind = "oci-archive"
	SourceDockerArchive SourceKind = "docker-archive"
	SourceRegistry      SourceKind = "registry"
	// sourceArchive is a tar file whose content decides between an OCI
	// archive and a docker-save tarball when it is opened.
	sourceArchive SourceKind = "archive"
)

// sourcePrefixes say what a source is, as skopeo spells its transports, for
// when the kind cannot be guessed. This is the only place they are spelled.
var sourcePrefixes = []struct {
	prefix string
	kind   SourceKind
}{
	{"oci:", SourceLayout},
	{"oci-layout:", SourceLayout},
	{"oci-archive:", SourceOCIArchive},
	{"docker-archive:", SourceDockerArchive},
	{"docker://", SourceRegistry},
	{"registry:", SourceRegistry},
}

// Artifact is an image or an index: what a tag can point at.
type Artifact interface {
	MediaType() (types.MediaType, error)
	Digest() (v1.Hash, error)
	RawManifest() ([]byte, error)
}

// SourceSpec is a parsed source: its kind and where it is.
type SourceSpec struct {
	// Spec is what the user wrote; messages name the source by it.
	Spec string
	Kind SourceKind
	// Path is the absolute path of a local source.
	Path string
	// Ref is a registry source's reference.
	Ref name.Reference
}

// Local reports whether the source is on disk.
func (s SourceSpec) Local() bool { return s.Kind != SourceRegistry }

// String spells the source with its kind, so that it means the same from
// any directory.
func (s SourceSpec) String() string {
	switch s.Kind {
	case SourceRegistry:
		return "docker://" + s.Ref.String()
	case SourceLayout, SourceOCIArchive, SourceDockerArchive:
		return string(s.Kind) + ":" + s.Path
	}
	return s.Path
}

// Sources is the one way in for images: it parses a source spec (an OCI
// layout directory, an OCI archive, a docker-save tarball or a registry
// reference, each optionally with its prefix), opens it and checks every
// byte it hands out against the digest and size that refer to it.
type Sources struct {
	// Dir is what relative paths are relative to (the workspace).
	Dir string
	// Client reads registry sources; without it they are refused.
	Client *Client
}

// Parse tells what spec names without reading it (a file's content decides
// between the archive kinds when it is opened).
func (s Sources) Parse(spec string) (SourceSpec, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return SourceSpec{}, failure.Invalidf("no source: set source to an OCI layout directory, an OCI archive, a docker-save tarball or an image reference (or set context to build)")
	}
	for _, p := range sourcePrefixes {
		rest, ok := strings.CutPrefix(spec, p.prefix)
		if !ok {
			continue
		}
		if p.kind == SourceRegistry {
			return s.parseRef(spec, rest)
		}
		if rest == "" {
			return SourceSpec{}, failure.Invalidf("source %q names no path after %s", spec, p.prefix)
		}
		path, err := s.abs(rest)
		if err != nil {
			return SourceSpec{}, err
		}
		return SourceSpec{Spec: spec, Kind: p.kind, Path: path}, nil
	}
	explicitPath := strings.HasPrefix(spec, ".") || filepath.IsAbs(spec)
	var path string
	var info fs.FileInfo
	statErr := fs.ErrNotExist
	if explicitPath || s.Dir != "" {
		var err error
		if path, err = s.abs(spec); err != nil {
			return SourceSpec{}, err
		}
		info, statErr = os.Stat(path)
	}
	_, refErr := s.resolver().Reference(spec)
	first, _, hasSlash := strings.Cut(spec, "/")
	looksRemote := refErr == nil && hasSlash && strings.ContainsAny(first, ".:")
	switch {
	case statErr == nil && looksRemote && !explicitPath:
		return SourceSpec{}, failure.Invalidf("source %q is both a local path and an image reference: write oci:%s (or oci-archive:, docker-archive:) for the file, or docker://%s for the registry", spec, spec, spec)
	case statErr == nil && info.IsDir():
		return SourceSpec{Spec: spec, Kind: SourceLayout, Path: path}, nil
	case statErr == nil || explicitPath:
		// A path that does not exist is reported by Open.
		return SourceSpec{Spec: spec, Kind: sourceArchive, Path: path}, nil
	case refErr == nil && !explicitPath:
		return s.parseRef(spec, spec)
	}
	return SourceSpec{}, failure.Invalid(notFoundError{fmt.Sprintf("source %q not found: it is neither an existing file or directory nor a valid image reference", spec)})
}

// notFoundError is a source that does not exist (fs.ErrNotExist).
type notFoundError struct{ msg string }

func (e notFoundError) Error() string { return e.msg }
func (e notFoundError) Unwrap() error { return fs.ErrNotExist }

func (s Sources) resolver() Resolver {
	if s.Client != nil {
		return s.Client.Resolver
	}
	return Resolver{}
}

func (s Sources) parseRef(spec, ref string) (SourceSpec, error) {
	r, err := s.resolver().Reference(ref)
	if err != nil {
		return SourceSpec{}, failure.Invalid(fmt.Errorf("source: %w", err))
	}
	return SourceSpec{Spec: spec, Kind: SourceRegistry, Ref: r}, nil
}

func (s Sources) abs(p string) (string, error) {
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	if s.Dir == "" {
		return "", fmt.Errorf("source %q is a relative path and no working directory was given", p)
	}
	return filepath.Join(s.Dir, p), nil
}

// Source is an opened image source.
type Source struct {
	SourceSpec
	// Root is a v1.Image or a v1.ImageIndex. Its manifests and configs
	// were checked against the descriptors referring to them; its layers
	// are checked as they are read.
	Root Artifact
	// Note explains anything the user should know about this source, e.g.
	// that a docker-save tarball's manifest was rebuilt.
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

// WithRoot is the source narrowed to root (a subset of its index, as push
// selects platforms). It shares the source's open files: closing either
// closes them.
func (s *Source) WithRoot(root Artifact) *Source {
	c := *s
	c.Root = root
	return &c
}

// Borrow is a view of the source for a reader that does not own it: its
// Close does nothing, and the owner's Close ends every view.
func (s *Source) Borrow() *Source {
	c := *s
	c.close = nil
	return &c
}

// Open parses spec and opens it.
func (s Sources) Open(ctx context.Context, spec string) (*Source, error) {
	parsed, err := s.Parse(spec)
	if err != nil {
		return nil, err
	}
	return s.OpenSpec(ctx, parsed)
}

// OpenSpec opens a parsed source. Errors in the source itself are the
// caller's input (failure.Invalid); a registry that cannot be reached is not.
func (s Sources) OpenSpec(ctx context.Context, spec SourceSpec) (*Source, error) {
	switch spec.Kind {
	case SourceLayout:
		return openLayout(spec)
	case SourceOCIArchive, SourceDockerArchive, sourceArchive:
		return openArchive(spec)
	case SourceRegistry:
		if s.Client == nil {
			return nil, failure.Invalidf("source %s is an image reference, which is not accepted here", spec.Spec)
		}
		return s.Client.openRegistry(ctx, spec)
	}
	return nil, fmt.Errorf("unknown source kind %q", spec.Kind)
}

func openLayout(spec SourceSpec) (*Source, error) {
	if _, err := os.Stat(spec.Path); err != nil {
		return nil, failure.Invalid(notFoundError{fmt.Sprintf("source %q not found: check the path (a relative path is relative to the workspace)", spec.Spec)})
	}
	if _, err := os.Stat(filepath.Join(spec.Path, "oci-layout")); err != nil {
		return nil, failure.Invalidf("source %s is not an OCI layout (no oci-layout file): write one with docker buildx build --output type=oci,tar=false,dest=%s", spec.Spec, spec.Spec)
	}
	c := &content{source: spec.Spec, store: dirStore{dir: spec.Path}}
	raw, err := readIndexJSON(spec.Spec, func() ([]byte, error) {
		f, err := os.Open(filepath.Join(spec.Path, "index.json"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, maxManifestBytes)
	})
	if err != nil {
		return nil, err
	}
	root, err := rootOfIndexJSON(c, raw)
	if err != nil {
		return nil, err
	}
	return &Source{SourceSpec: spec, Root: root}, nil
}

func openArchive(spec SourceSpec) (*Source, error) {
	t, err := indexTar(spec.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, failure.Invalid(notFoundError{fmt.Sprintf("source %q not found: check the path (a relative path is relative to the workspace)", spec.Spec)})
	}
	if err != nil {
		return nil, failure.Invalidf("source %s: %s", spec.Spec, oneLineErr(err))
	}
	src, err := openTar(spec, t)
	if err != nil {
		t.Close()
		return nil, err
	}
	src.close = t.Close
	return src, nil
}

// openTar decides the archive's kind by its marker files. docker save
// from the containerd image store writes both an OCI layout and a
// manifest.json; the OCI side keeps the build's digests, so it wins.
func openTar(spec SourceSpec, t *tarFiles) (*Source, error) {
	hasOCI := t.has("index.json")
	hasDocker := t.has("manifest.json")
	kind := spec.Kind
	if kind == sourceArchive {
		switch {
		case hasOCI:
			kind = SourceOCIArchive
		case hasDocker:
			kind = SourceDockerArchive
		default:
			return nil, failure.Invalidf("source %s is a tar archive but neither an OCI archive (no index.json) nor a docker-save tarball (no manifest.json)", spec.Spec)
		}
	}
	spec.Kind = kind
	switch kind {
	case SourceDockerArchive:
		if !hasDocker {
			return nil, failure.Invalidf("source %s has no manifest.json: it is not a docker-save tarball", spec.Spec)
		}
		img, err := openDockerArchive(t, spec.Spec)
		if err != nil {
			return nil, err
		}
		return &Source{SourceSpec: spec, Root: img, Note: dockerSaveNote}, nil
	}
	if !hasOCI {
		return nil, failure.Invalidf("source %s has no index.json: it is not an OCI archive", spec.Spec)
	}
	c := &content{source: spec.Spec, store: tarStore{t: t}}
	raw, err := readIndexJSON(spec.Spec, func() ([]byte, error) { return t.readAll("index.json", maxManifestBytes) })
	if err != nil {
		return nil, err
	}
	root, err := rootOfIndexJSON(c, raw)
	if err != nil {
		return nil, err
	}
	if idx, ok := root.(*verifiedIndex); ok && hasDocker {
		if err := allPlatformsSaved(spec.Spec, t, idx); err != nil {
			return nil, err
		}
	}
	return &Source{SourceSpec: spec, Root: root}, nil
}

// allPlatformsSaved explains the commonest incomplete archive: docker save
// of a multi-platform image keeps only the platforms pulled locally.
func allPlatformsSaved(source string, t *tarFiles, idx *verifiedIndex) error {
	var missing []string
	for _, d := range idx.im.Manifests {
		if !t.has(blobName(d)) && d.Platform != nil && d.Platform.OS != "unknown" {
			missing = append(missing, d.Platform.String())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return failure.Invalidf("source %s lacks the manifests of %s (docker save keeps only the platforms pulled locally): save with --platform, or write docker-archive:%s to push the docker-save side with a rebuilt manifest", source, strings.Join(missing, ", "), source)
}

func readIndexJSON(source string, read func() ([]byte, error)) ([]byte, error) {
	raw, err := read()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, failure.Invalidf("source %s has no index.json: it is not an OCI layout", source)
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: read index.json: %w", source, err)
	}
	if int64(len(raw)) > maxManifestBytes {
		return nil, failure.Invalidf("source %s: index.json is larger than %d bytes", source, maxManifestBytes)
	}
	return raw, nil
}

// rootOfIndexJSON opens what an OCI layout's index.json designates: its
// single entry, checked against that entry's digest and size, or — when
// every entry is a platform image, as some exporters write multi-platform
// images — the index.json itself.
func rootOfIndexJSON(c *content, raw []byte) (Artifact, error) {
	sum := sha256.Sum256(raw)
	top, err := c.index(v1.Descriptor{
		MediaType: types.OCIImageIndex,
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		Size:      int64(len(raw)),
	}, raw)
	if err != nil {
		return nil, fmt.Errorf("%w (in index.json)", err)
	}
	entries := top.im.Manifests
	switch len(entries) {
	case 0:
		return nil, failure.Invalidf("source %s holds no image (index.json is empty)", c.source)
	case 1:
		return c.open(entries[0])
	}
	allPlatforms := true
	var names []string
	for _, d := range entries {
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
	return nil, failure.Invalidf("source %s holds %d images (%s): export one image per layout", c.source, len(entries), report.Clip(report.OneLine(strings.Join(names, ", ")), 200))
}

// openRegistry reads a registry source's root manifest. A digest reference
// must get back bytes with that digest; children and blobs are checked by
// digest as they are read.
func (c *Client) openRegistry(ctx context.Context, spec SourceSpec) (*Source, error) {
	puller, err := remote.NewPuller(c.Remote(ctx)...)
	if err != nil {
		return nil, err
	}
	desc, err := puller.Get(ctx, spec.Ref)
	if err != nil && mismatch(err) {
		d, _ := v1.NewHash(spec.Ref.Identifier())
		return nil, corrupt(spec.Spec, "manifest", v1.Descriptor{Digest: d}, "does not match the bytes the registry sent")
	}
	if err != nil {
		explained := Explain(err, "read source", spec.Ref.String(), Read)
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == 404 {
			return nil, failure.Invalid(fmt.Errorf("%w: check the source reference", explained))
		}
		return nil, explained
	}
	rootDesc := desc.Descriptor
	if d, ok := spec.Ref.(name.Digest); ok {
		want, err := v1.NewHash(d.DigestStr())
		if err != nil {
			return nil, failure.Invalid(err)
		}
		rootDesc.Digest, rootDesc.Size = want, int64(len(desc.Manifest))
		if err := checkBytes(spec.Spec, "manifest", rootDesc, desc.Manifest); err != nil {
			return nil, err
		}
	}
	content := &content{source: spec.Spec, store: registryStore{ctx: ctx, repo: spec.Ref.Context(), puller: puller}}
	var root Artifact
	switch {
	case rootDesc.MediaType.IsIndex():
		root, err = content.index(rootDesc, desc.Manifest)
	case rootDesc.MediaType.IsImage():
		root, err = content.image(rootDesc, desc.Manifest)
	default:
		return nil, failure.Invalidf("source %s has media type %q, neither an image nor an index", spec.Spec, rootDesc.MediaType)
	}
	if err != nil {
		return nil, err
	}
	return &Source{SourceSpec: spec, Root: root}, nil
}
