package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/outdir"
	"github.com/registry-actions/registry/internal/scanner"
)

// Files and directories this program writes follow one rule: it deletes or
// overwrites only what it made. The helpers here apply it to paths the user
// names (cache-dir, the CLI's --summary); the stages claim output-dir
// themselves (internal/outdir), and everything else they write lives in
// temporary directories they create and remove.

// claimTrivyCache makes cache-dir usable: new, empty, marked, or a Trivy
// cache (only entries Trivy writes: db, java-db, fanal, …), which is reused
// across runs by design — actions/cache restores it, and a cache shared with
// the trivy command line holds the same entries. A directory holding
// anything else (a checkout, a home directory) is refused untouched.
func (r *Run) claimTrivyCache(dir string) error {
	if err := outdir.ClaimCache(dir, "Trivy", scanner.IsCacheEntry); err != nil {
		return fmt.Errorf("cache-dir: %w", err)
	}
	return nil
}

// summaryMarker opens every summary file the CLI writes, so that a later run
// can tell its own file from one it must not overwrite.
const summaryMarker = "<!-- job summary written by registry; a later run may replace this file -->\n"

// checkSummaryFile allows --summary FILE when FILE does not exist or is a
// summary an earlier run wrote.
func checkSummaryFile(path string) error {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--summary %s: %w", path, err)
	case !info.Mode().IsRegular():
		return failure.Invalidf("--summary %s exists and is not a regular file: name a new file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--summary %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(summaryMarker))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte(summaryMarker)) {
		return failure.Invalidf("--summary %s already exists and was not written by this program: name a new file (nothing was changed)", path)
	}
	return nil
}

// writeSummaryFile writes the summary behind the marker.
func writeSummaryFile(path, md string) error {
	if err := os.WriteFile(path, []byte(summaryMarker+md), 0o644); err != nil {
		return fmt.Errorf("write --summary: %w", err)
	}
	return nil
}

// resolvePath resolves a user-given path against the working directory.
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
