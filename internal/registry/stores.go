package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// dirStore is an OCI layout directory. A blob is an *os.File, which the
// kernel can copy to a plain-HTTP socket without passing through this
// process when nothing needs to read it.
type dirStore struct{ dir string }

func (s dirStore) path(d v1.Descriptor) string {
	// A parsed v1.Hash is an algorithm name and hex digits: no path
	// separators can reach the file system.
	return filepath.Join(s.dir, "blobs", d.Digest.Algorithm, d.Digest.Hex)
}

func (s dirStore) manifest(d v1.Descriptor, limit int64) ([]byte, error) {
	f, err := os.Open(s.path(d))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

func (s dirStore) blob(d v1.Descriptor) (io.ReadCloser, error) { return os.Open(s.path(d)) }
func (s dirStore) hashes() bool                                { return false }

// tarFiles is a tar archive read in place: one pass over its headers
// records where each file's data lies, then files are read straight from
// those offsets. No extraction, so a multi-gigabyte archive costs no extra
// disk or copy time.
type tarFiles struct {
	path  string
	f     *os.File
	files map[string]tarEntry
	links map[string]string // symbolic and hard links: name → target
}

type tarEntry struct{ offset, size int64 }

func indexTar(p string) (*tarFiles, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	t := &tarFiles{path: p, f: f, files: map[string]tarEntry{}, links: map[string]string{}}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("not a tar archive (an OCI archive or docker-save tarball): %s", oneLineErr(err))
		}
		name := cleanTarName(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			// archive/tar reads headers straight from the file in 512-byte
			// blocks, so the file's offset now is the start of the data.
			pos, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				f.Close()
				return nil, err
			}
			t.files[name] = tarEntry{offset: pos, size: hdr.Size}
		case tar.TypeSymlink:
			t.links[name] = path.Join(path.Dir(name), hdr.Linkname)
		case tar.TypeLink:
			t.links[name] = cleanTarName(hdr.Linkname)
		}
	}
	return t, nil
}

func cleanTarName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(n, "./")), "/")
}

func (t *tarFiles) has(name string) bool {
	_, ok := t.lookup(name)
	return ok
}

// lookup follows links (a bounded number of them) to a regular file.
func (t *tarFiles) lookup(name string) (tarEntry, bool) {
	name = cleanTarName(name)
	for range 16 {
		if e, ok := t.files[name]; ok {
			return e, true
		}
		target, ok := t.links[name]
		if !ok {
			return tarEntry{}, false
		}
		name = cleanTarName(target)
	}
	return tarEntry{}, false
}

func (t *tarFiles) open(name string) (*io.SectionReader, error) {
	e, ok := t.lookup(name)
	if !ok {
		return nil, fs.ErrNotExist
	}
	return io.NewSectionReader(t.f, e.offset, e.size), nil
}

func (t *tarFiles) readAll(name string, limit int64) ([]byte, error) {
	r, err := t.open(name)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, limit+1))
}

func (t *tarFiles) Close() error { return t.f.Close() }

// tarStore is an OCI archive: a layout's files inside a tar.
type tarStore struct{ t *tarFiles }

func blobName(d v1.Descriptor) string { return "blobs/" + d.Digest.Algorithm + "/" + d.Digest.Hex }

func (s tarStore) manifest(d v1.Descriptor, limit int64) ([]byte, error) {
	return s.t.readAll(blobName(d), limit)
}

func (s tarStore) blob(d v1.Descriptor) (io.ReadCloser, error) {
	r, err := s.t.open(blobName(d))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(r), nil
}

func (s tarStore) hashes() bool { return false }

// registryStore is a repository of a registry. go-containerregistry checks
// the digest of every blob and of every manifest fetched by digest.
type registryStore struct {
	ctx    context.Context
	repo   name.Repository
	puller *remote.Puller
}

func (s registryStore) manifest(d v1.Descriptor, limit int64) ([]byte, error) {
	desc, err := s.puller.Get(s.ctx, s.repo.Digest(d.Digest.String()))
	if err != nil {
		if mismatch(err) {
			return nil, errStoreMismatch
		}
		return nil, notFoundAsMissing(Explain(err, "read source", s.repo.String(), Read), err)
	}
	return desc.Manifest, nil
}

func (s registryStore) blob(d v1.Descriptor) (io.ReadCloser, error) {
	l, err := s.puller.Layer(s.ctx, s.repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, Explain(err, "read source", s.repo.String(), Read)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, notFoundAsMissing(Explain(err, "read blob "+d.Digest.String()+" of source", s.repo.String(), Read), err)
	}
	return mismatchReader{rc}, nil
}

func (s registryStore) hashes() bool { return true }

// errStoreMismatch is a store's own check failing: the registry sent bytes
// that do not hash to the digest asked for.
var errStoreMismatch = errors.New("the registry sent bytes that do not match the digest")

// mismatch recognises go-containerregistry's digest checks, which return
// plain errors: "manifest digest: … does not match requested digest" and
// "error verifying sha256 checksum …" / "error verifying size …".
func mismatch(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "does not match requested digest") || strings.Contains(msg, "error verifying")
}

// mismatchReader turns go-containerregistry's blob check into
// errStoreMismatch, so the source is named corrupt.
type mismatchReader struct{ io.ReadCloser }

func (r mismatchReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF && mismatch(err) {
		err = errStoreMismatch
	}
	return n, err
}

// notFoundAsMissing lets a 404 read as a missing blob of the source (the
// caller's input), while any other failure stays the registry's.
func notFoundAsMissing(explained, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == 404 {
		return fmt.Errorf("%w: %w", fs.ErrNotExist, explained)
	}
	return explained
}
