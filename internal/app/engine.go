//go:build !lean

package app

import (
	"io"

	"github.com/registry-actions/registry/internal/scanner"
)

// engineLinked says whether this build holds the scan engine (Trivy). The
// default build holds everything; the lean build (-tags lean) leaves it out
// so that push, sign, verify and clean start without Trivy's package
// initialisation, and hands anything that scans to the full build.
const engineLinked = true

// configureEngineLogging sends Trivy's log lines where the stages write;
// until configured, Trivy's default logger buffers every record in memory.
func configureEngineLogging(w io.Writer, debug bool) {
	scanner.ConfigureTrivyLogging(w, debug)
}

func runFullBuild(IO) int {
	// Unreachable: this is the full build.
	return ExitFailed
}
