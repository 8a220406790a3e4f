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
