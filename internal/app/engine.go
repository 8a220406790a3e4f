package app

import (
	"io"

	"github.com/registry-actions/registry/internal/scanner"
)

// configureEngineLogging sends Trivy's log lines where the stages write;
// until configured, Trivy's default logger buffers every record in memory.
func configureEngineLogging(w io.Writer, debug bool) {
	scanner.ConfigureTrivyLogging(w, debug)
}

// Cleanup removes what this process made in the temp directory that outlives
// a single stage (Trivy's per-process directory). Call it once, as the
// process exits.
func Cleanup() error { return scanner.RemoveTempDir() }
