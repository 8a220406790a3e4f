package scanner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/registry"
)

// Target is one image to scan: a registry reference or a local source.
type Target struct {
	// Ref is an image in a registry. A tag is resolved to its digest first,
	// so what is scanned and reported is always one immutable manifest.
	Ref name.Reference
	// Path is a local source as registry.Sources reads it: an OCI layout
	// directory, an OCI archive (tar of a layout) or a docker-save tarball,
	// an absolute path optionally with its kind's prefix.
	Path string
	// Local, with a digest Ref, is the image or index Ref names already at
	// hand with its layers compressed — the OCI layout or archive a chain
	// has just pushed as Ref: it is read from there instead of being pulled
	// back from the registry, and reported as Ref.
	Local Artifact
}

// Artifact is a v1.Image or a v1.ImageIndex.
type Artifact interface {
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
}

// LocalTarget scans local, a copy of the image ref names.
func LocalTarget(ref name.Digest, local Artifact) Target { return Target{Ref: ref, Local: local} }

// RemoteTarget scans an image in a registry.
func RemoteTarget(ref name.Reference) Target { return Target{Ref: ref} }

// PathTarget scans an OCI layout directory, OCI archive or docker-save tarball.
func PathTarget(p string) Target { return Target{Path: p} }

func (t Target) String() string {
	if t.Ref != nil {
		return t.Ref.String()
	}
	return t.Path
}

// resolvedImage is a target resolved to the platform images to scan.
type resolvedImage struct {
	reference  string // what the user asked for, pinned to a digest when remote
	repository string // registry/repository for remote images
	digest     string // manifest or index digest
	tag        string
	platforms  []platformImage
	cleanup    func()
	// fastGunzip is set for sources whose layers are stored compressed
	// (registries, OCI layouts), not docker-save tarballs, which would
	// compress a layer only to decompress it again.
	fastGunzip bool
}

type platformImage struct {
	platform string
	digest   string
	image    v1.Image
}

func resolve(ctx context.Context, t Target, n normalized) (*resolvedImage, error) {
	filter, err := parsePlatforms(n.Platforms)
	if err != nil {
		return nil, err
	}
	switch {
	case t.Ref != nil && t.Local != nil:
		return resolveLocal(t.Ref, t.Local, filter)
	case t.Ref != nil && t.Path != "":
		return nil, invalid("target sets both a reference and a path: use one")
	case t.Ref != nil:
		return resolveRemote(ctx, t.Ref, n.RemoteOptions, filter)
	case t.Path != "":
		return resolvePath(ctx, t.Path, filter)
	}
	return nil, invalid("empty target: set an image reference or a path")
}

func resolveRemote(ctx context.Context, ref name.Reference, opts []remote.Option, filter []v1.Platform) (*resolvedImage, error) {
	opts = append(slices.Clone(opts), remote.WithContext(ctx))
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, imageError(ctx, ref.String(), err)
	}
	out := &resolvedImage{
		reference:  ref.Context().Digest(desc.Digest.String()).String(),
		repository: ref.Context().Name(),
		digest:     desc.Digest.String(),
		cleanup:    func() {},
		fastGunzip: true,
	}
	if tag, ok := ref.(name.Tag); ok {
		out.tag = tag.TagStr()
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, imageError(ctx, ref.String(), err)
		}
		out.platforms, err = indexPlatforms(idx, filter, ref.String())
		if err != nil {
			return nil, err
		}
	case desc.MediaType.IsImage():
		if desc.ArtifactType != "" && !types.MediaType(desc.ArtifactType).IsConfig() {
			return nil, &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("%s is an OCI artifact of type %s, not a container image: scan an image reference", ref, desc.ArtifactType)}
		}
		img, err := desc.Image()
		if err != nil {
			return nil, imageError(ctx, ref.String(), err)
		}
		p, err := singlePlatform(img, desc.Digest.String(), filter, ref.String())
		if err != nil {
			return nil, err
		}
		out.platforms = []platformImage{p}
	default:
		return nil, &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("%s has media type %s, which is neither an image nor an index: scan an image reference", ref, desc.MediaType)}
	}
	return out, nil
}

// resolveLocal reads a copy of ref's image that is at hand, after checking
// it is the very manifest ref names.
func resolveLocal(ref name.Reference, local Artifact, filter []v1.Platform) (*resolvedImage, error) {
	d, err := local.Digest()
	if err != nil {
		return nil, &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("local copy of %s: %v", ref, err), Err: err}
	}
	if rd, ok := ref.(name.Digest); !ok || rd.DigestStr() != d.String() {
		return nil, invalid("the local copy of %s has digest %s: scan the reference itself", ref, d)
	}
	out := &resolvedImage{
		reference:  ref.String(),
		repository: ref.Context().Name(),
		digest:     d.String(),
		cleanup:    func() {},
		fastGunzip: true,
	}
	switch a := local.(type) {
	case v1.ImageIndex:
		if out.platforms, err = indexPlatforms(a, filter, ref.String()); err != nil {
			return nil, err
		}
	case v1.Image:
		p, err := singlePlatform(a, d.String(), filter, ref.String())
		if err != nil {
			return nil, err
		}
		out.platforms = []platformImage{p}
	default:
		return nil, invalid("the local copy of %s is neither an image nor an index", ref)
	}
	return out, nil
}

// resolvePath opens a local source through the one source resolver, which
// checks every manifest and config it reads and every layer as Trivy
// streams it: no extraction, no copy.
func resolvePath(ctx context.Context, p string, filter []v1.Platform) (*resolvedImage, error) {
	src, err := registry.Sources{}.Open(ctx, p)
	if err != nil {
		// Err keeps the resolver's verdict: a corrupt source is the
		// caller's input.
		kind := ErrImageAccess
		if errors.Is(err, fs.ErrNotExist) {
			kind = ErrImageNotFound
		}
		return nil, &Error{Kind: kind, Msg: err.Error(), Err: err}
	}
	ri, err := resolveSource(src, filter, func() { src.Close() })
	if err != nil {
		src.Close()
		return nil, err
	}
	return ri, nil
}

// resolveSource lists the platform images of an opened local source.
func resolveSource(src *registry.Source, filter []v1.Platform, cleanup func()) (*resolvedImage, error) {
	display := sourceName(src)
	digest, err := src.Root.Digest()
	if err != nil {
		return nil, &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("%s: %v", display, err), Err: err}
	}
	out := &resolvedImage{reference: display, digest: digest.String(), cleanup: cleanup,
		// docker-save layers are stored as plain tars: nothing to inflate.
		fastGunzip: src.Kind != registry.SourceDockerArchive}
	switch root := src.Root.(type) {
	case v1.ImageIndex:
		out.platforms, err = indexPlatforms(root, filter, display)
	case v1.Image:
		var p platformImage
		p, err = singlePlatform(root, digest.String(), filter, display)
		out.platforms = []platformImage{p}
	default:
		err = &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("%s is neither an image nor an index", display)}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sourceName is how reports name a local source: its path.
func sourceName(src *registry.Source) string {
	if src.Path != "" {
		return src.Path
	}
	return src.Spec
}

// indexPlatforms lists the images of an index (descending into nested
// indexes), skipping attestation manifests and anything without a real
// platform, then applies the platform filter.
func indexPlatforms(idx v1.ImageIndex, filter []v1.Platform, display string) ([]platformImage, error) {
	var all []platformImage
	var walk func(v1.ImageIndex) error
	walk = func(idx v1.ImageIndex) error {
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range im.Manifests {
			switch {
			case d.MediaType.IsIndex():
				child, err := idx.ImageIndex(d.Digest)
				if err != nil {
					return err
				}
				if err := walk(child); err != nil {
					return err
				}
				continue
			case !d.MediaType.IsImage():
				continue
			case d.Annotations["vnd.docker.reference.type"] == "attestation-manifest":
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			p := d.Platform
			if p == nil {
				if p, err = configPlatform(img); err != nil {
					return err
				}
			}
			if p.OS == "" || p.OS == "unknown" || p.Architecture == "unknown" {
				continue
			}
			all = append(all, platformImage{platform: p.String(), digest: d.Digest.String(), image: img})
		}
		return nil
	}
	if err := walk(idx); err != nil {
		return nil, &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("read index of %s: %v", display, err), Err: err}
	}
	if len(all) == 0 {
		return nil, &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("%s holds no container image for a known platform (only attestations or artifacts)", display)}
	}
	return filterPlatforms(all, filter, display)
}

func singlePlatform(img v1.Image, digest string, filter []v1.Platform, display string) (platformImage, error) {
	p, err := configPlatform(img)
	if err != nil {
		return platformImage{}, &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("read config of %s: %v", display, err), Err: err}
	}
	out, err := filterPlatforms([]platformImage{{platform: p.String(), digest: digest, image: img}}, filter, display)
	if err != nil {
		return platformImage{}, err
	}
	return out[0], nil
}

func configPlatform(img v1.Image) (*v1.Platform, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}, nil
}

func filterPlatforms(all []platformImage, filter []v1.Platform, display string) ([]platformImage, error) {
	if len(filter) == 0 {
		return all, nil
	}
	var out []platformImage
	for _, want := range filter {
		found := false
		for _, pi := range all {
			got, err := parsePlatform(pi.platform)
			if err != nil || !got.Satisfies(want) {
				continue
			}
			found = true
			if !slices.ContainsFunc(out, func(o platformImage) bool { return o.digest == pi.digest }) {
				out = append(out, pi)
			}
		}
		if !found {
			var have []string
			for _, pi := range all {
				have = append(have, pi.platform)
			}
			return nil, invalid("platform %s is not in %s (available: %s): fix platforms", want.String(), display, strings.Join(have, ", "))
		}
	}
	return out, nil
}

func parsePlatforms(in []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range in {
		p, err := parsePlatform(s)
		if err != nil {
			return nil, invalid("invalid platform %q (%v): write platforms as os/arch[/variant]", s, err)
		}
		out = append(out, *p)
	}
	return out, nil
}

func parsePlatform(s string) (*v1.Platform, error) {
	s = strings.TrimSpace(s)
	if strings.Count(s, "/") < 1 {
		return nil, errors.New("missing architecture")
	}
	return v1.ParsePlatform(s)
}

// imageError turns a registry error into a one-line, actionable *Error.
func imageError(ctx context.Context, ref string, err error) error {
	if ctx.Err() != nil {
		return timeoutError(ctx, err)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode):
			return &Error{Kind: ErrImageNotFound, Msg: fmt.Sprintf("image %s not found (%s): check the reference and that it was pushed", ref, terr.Error()), Err: err}
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden ||
			hasCode(terr, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			return &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("image %s cannot be read (%s): grant the workflow pull access to the repository or configure registry credentials", ref, terr.Error()), Err: err}
		}
	}
	return &Error{Kind: ErrImageAccess, Msg: fmt.Sprintf("image %s cannot be read: %v", ref, err), Err: err}
}

func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		if slices.Contains(codes, d.Code) {
			return true
		}
	}
	return false
}

// trivyImage gives a go-containerregistry image the identity Trivy's image
// artifact asks for, so Trivy analyses layers we fetched with our own client.
type trivyImage struct {
	v1.Image
	name        string
	repoTags    []string
	repoDigests []string
}

func (i trivyImage) Name() string { return i.name }

func (i trivyImage) ID() (string, error) {
	h, err := i.ConfigName()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (i trivyImage) RepoTags() []string    { return i.repoTags }
func (i trivyImage) RepoDigests() []string { return i.repoDigests }

func (r *resolvedImage) trivyImage(p platformImage) trivyImage {
	ti := trivyImage{Image: p.image, name: r.reference}
	if r.fastGunzip {
		ti.Image = fastGunzipImage{Image: p.image}
	}
	if r.repository != "" {
		ti.repoDigests = []string{r.repository + "@" + p.digest}
		if r.tag != "" {
			ti.repoTags = []string{r.repository + ":" + r.tag}
		}
	}
	return ti
}
