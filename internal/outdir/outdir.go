// Package outdir decides whether the program may write into a directory the
// user named for its output. The rule is the program's first one: never
// delete or overwrite what this program did not make. A directory is used
// when it does not exist yet (it is created), when it is empty, or when it
// carries the marker file an earlier run of this program left in it;
// anything else — a checkout, a home directory, / — is refused before a
// single byte is written.
package outdir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/registry-actions/registry/internal/failure"
)

// MarkerName is the file that marks a directory as this program's output.
const MarkerName = ".registry-output"

const markerText = "This directory holds output written by registry (github.com/registry-actions/registry).\nLater runs may replace the files in it; remove this file to stop that.\n"

// Claim makes dir usable for this run's output: it creates dir (and its
// missing parents) or reuses it if it is empty or already marked, and leaves
// the marker in it. A directory holding anything else is refused with an
// input error naming it.
func Claim(dir string) error {
	return claim(dir, "output directory", func(foreign string) error {
		return failure.Invalidf("output directory %s already holds files this program did not write (%s): name a new or empty directory (nothing in it was changed)", dir, foreign)
	}, nil)
}

// ClaimCache is Claim for a cache directory another program keeps too (for
// example Trivy's, restored by actions/cache or shared with its command
// line): besides a new, empty or marked directory, one whose every entry has
// a name known accepts — a cache that program wrote — is used and marked.
func ClaimCache(dir, owner string, known func(name string) bool) error {
	return claim(dir, "cache directory", func(foreign string) error {
		return failure.Invalidf("cache directory %s holds files that are not a %s cache (%s): name a new or empty directory, or an existing %s cache (nothing in it was changed)", dir, owner, foreign, owner)
	}, known)
}

func claim(dir, what string, refuse func(foreign string) error, known func(string) bool) error {
	if dir == "" {
		return failure.Invalidf("no %s given: name a directory (it is created if missing)", what)
	}
	info, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s %s: %w", what, dir, err)
		}
	case err != nil:
		return fmt.Errorf("%s %s: %w", what, dir, err)
	case info.Mode()&os.ModeSymlink != 0:
		return failure.Invalidf("%s %s is a symbolic link: name the directory itself, or an empty or new one", what, dir)
	case !info.IsDir():
		return failure.Invalidf("%s %s is a file, not a directory: name a new or empty directory", what, dir)
	default:
		marked, err := IsMarked(dir)
		if err != nil {
			return err
		}
		if !marked {
			foreign, err := firstForeign(dir, known)
			if err != nil {
				return fmt.Errorf("%s %s: %w", what, dir, err)
			}
			if foreign != "" {
				return refuse(foreign)
			}
		}
	}
	marker := filepath.Join(dir, MarkerName)
	if _, err := os.Lstat(marker); err == nil {
		return nil
	}
	if err := os.WriteFile(marker, []byte(markerText), 0o644); err != nil {
		return fmt.Errorf("mark %s %s: %w", what, dir, err)
	}
	return nil
}

// IsMarked reports whether dir carries the marker of an earlier run.
func IsMarked(dir string) (bool, error) {
	info, err := os.Lstat(filepath.Join(dir, MarkerName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("output directory %s: %w", dir, err)
	}
	return info.Mode().IsRegular(), nil
}

// firstForeign names an entry of dir whose name known does not accept (nil
// accepts none), or returns "" when there is none.
func firstForeign(dir string, known func(string) bool) (string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(64)
		for _, n := range names {
			if known == nil || !known(n) {
				return n, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
	}
}
