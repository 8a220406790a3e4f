package registry

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/registry-actions/registry/internal/failure"
)

// ErrCorruptBlob means bytes read from a source do not match the digest or
// size that refer to them.
var ErrCorruptBlob = errors.New("content does not match its descriptor")

// CorruptError says which blob of which source failed its check. It is the
// caller's input that is wrong (exit 2): the source, not the registry.
type CorruptError struct {
	Source string // the source as the user named it
	What   string // "layer", "config", "manifest", "index"
	Want   v1.Descriptor
	// Got describes what was read instead: a digest, a size, "missing".
	Got string
}

func (e *CorruptError) Error() string {
	size := ""
	if e.Want.Size > 0 {
		size = fmt.Sprintf(" (%d bytes)", e.Want.Size)
	}
	return fmt.Sprintf("source %s is corrupt: %s %s%s %s: re-export or rebuild the image",
		e.Source, e.What, e.Want.Digest, size, e.Got)
}

func (e *CorruptError) Unwrap() error { return ErrCorruptBlob }

// corrupt builds the error a check returns: marked as the caller's input.
func corrupt(source, what string, want v1.Descriptor, got string) error {
	return failure.Invalid(&CorruptError{Source: source, What: what, Want: want, Got: got})
}

// checkBytes verifies bytes held in memory (manifests, configs) against
// the descriptor that refers to them.
func checkBytes(source, what string, want v1.Descriptor, b []byte) error {
	if int64(len(b)) != want.Size {
		return corrupt(source, what, want, fmt.Sprintf("is %d bytes", len(b)))
	}
	h, err := v1.Hasher(want.Digest.Algorithm)
	if err != nil {
		return failure.Invalidf("source %s: %s %s uses an unsupported digest algorithm", source, what, want.Digest)
	}
	h.Write(b)
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Digest.Hex {
		return corrupt(source, what, want, "hashes to "+want.Digest.Algorithm+":"+got)
	}
	return nil
}

// verifyingReader hashes a blob as it streams and fails the read that
// completes it when the bytes do not match: a consumer (an upload, a scan)
// sees an error instead of a clean end, so nothing built on a corrupt blob
// is committed. One pass: the bytes are read once, by whoever consumes them.
type verifyingReader struct {
	rc     io.ReadCloser
	h      hash.Hash // nil when the store already verified the digest
	source string
	what   string
	want   v1.Descriptor
	n      int64
	done   bool
	// verified is called once the blob matched.
	verified func()
}

func newVerifyingReader(rc io.ReadCloser, source, what string, want v1.Descriptor, hashed bool, verified func()) (io.ReadCloser, error) {
	vr := &verifyingReader{rc: rc, source: source, what: what, want: want, verified: verified}
	if !hashed {
		h, err := v1.Hasher(want.Digest.Algorithm)
		if err != nil {
			rc.Close()
			return nil, failure.Invalidf("source %s: %s %s uses an unsupported digest algorithm", source, what, want.Digest)
		}
		vr.h = h
	}
	return vr, nil
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.done {
		return 0, io.EOF
	}
	rest := v.want.Size - v.n
	if rest == 0 {
		if err := v.finish(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	// Never read past the recorded size: a consumer that knows the length
	// (an upload with Content-Length) stops there, so the read that
	// delivers the last byte is the one that must report a mismatch.
	if int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := v.rc.Read(p)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	v.n += int64(n)
	switch {
	case v.n == v.want.Size:
		if ferr := v.finish(); ferr != nil {
			// Withhold the last bytes: a consumer that counts them (an
			// upload with Content-Length) must never see a complete body.
			return 0, ferr
		}
		return n, nil
	case err == io.EOF:
		return n, corrupt(v.source, v.what, v.want, fmt.Sprintf("is truncated (%d of %d bytes)", v.n, v.want.Size))
	case errors.Is(err, errStoreMismatch):
		return 0, corrupt(v.source, v.what, v.want, "does not match the bytes the registry sent")
	}
	return n, err
}

// finish runs once every recorded byte was read: the source must hold no
// more, and the bytes must hash to the digest.
func (v *verifyingReader) finish() error {
	v.done = true
	var one [1]byte
	for empty := 0; ; empty++ {
		if empty == 100 {
			return io.ErrNoProgress
		}
		n, err := v.rc.Read(one[:])
		if n > 0 {
			return corrupt(v.source, v.what, v.want, fmt.Sprintf("is longer than %d bytes", v.want.Size))
		}
		if err == io.EOF {
			break
		}
		if errors.Is(err, errStoreMismatch) {
			return corrupt(v.source, v.what, v.want, "does not match the bytes the registry sent")
		}
		if err != nil {
			return err
		}
	}
	if v.h != nil {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Digest.Hex {
			return corrupt(v.source, v.what, v.want, "hashes to "+v.want.Digest.Algorithm+":"+got)
		}
	}
	if v.verified != nil {
		v.verified()
	}
	return nil
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

// checkPlatform refuses control characters in a platform's fields: they
// come from the image, and a newline there could start a workflow command
// wherever the platform is printed.
func checkPlatform(source, where string, p *v1.Platform) error {
	if p == nil {
		return nil
	}
	fields := append([]string{p.OS, p.Architecture, p.Variant, p.OSVersion}, p.OSFeatures...)
	fields = append(fields, p.Features...)
	for _, f := range fields {
		if strings.ContainsFunc(f, unicode.IsControl) {
			return failure.Invalidf("source %s: %s has a platform field with control characters (%q): the image is malformed", source, where, f)
		}
	}
	return nil
}
