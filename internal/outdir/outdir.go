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
	if dir == "" {
		return failure.Invalidf("no output directory given: name a directory (it is created if missing)")
	}
	info, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create output directory %s: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("output directory %s: %w", dir, err)
	case info.Mode()&os.ModeSymlink != 0:
		return failure.Invalidf("output directory %s is a symbolic link: name the directory itself, or an empty or new one", dir)
	case !info.IsDir():
		return failure.Invalidf("output directory %s is a file, not a directory: name a new or empty directory", dir)
	default:
		marked, err := IsMarked(dir)
		if err != nil {
			return err
		}
		if !marked {
			empty, err := isEmpty(dir)
			if err != nil {
				return fmt.Errorf("output directory %s: %w", dir, err)
			}
			if !empty {
				return failure.Invalidf("output directory %s already holds files this program did not write: name a new or empty directory (nothing in it was changed)", dir)
			}
		}
	}
	marker := filepath.Join(dir, MarkerName)
	if _, err := os.Lstat(marker); err == nil {
		return nil
	}
	if err := os.WriteFile(marker, []byte(markerText), 0o644); err != nil {
		return fmt.Errorf("mark output directory %s: %w", dir, err)
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

func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
