package scanner

import (
	"io"
	"log/slog"

	trivytemp "github.com/aquasecurity/trivy/pkg/x/os"

	tlog "github.com/aquasecurity/trivy/pkg/log"
)

// ConfigureTrivyLogging routes Trivy's log records to w (nil discards them),
// at Info level or Debug when debug is set.
//
// Trivy logs through slog's default logger, and importing it installs a
// default handler that buffers every record, debug included, until Trivy's
// CLI configures logging. A program embedding the scanner calls this once at
// start so records are neither lost nor accumulated. It replaces slog's
// default logger.
func ConfigureTrivyLogging(w io.Writer, debug bool) {
	if w == nil {
		w = io.Discard
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	h := tlog.NewHandler(w, &tlog.Options{Level: level})
	if d, ok := slog.Default().Handler().(*tlog.DeferredHandler); ok {
		d.Flush(h)
	}
	slog.SetDefault(tlog.New(h))
}

// ensureLogging replaces Trivy's buffering default handler when the program
// did not call ConfigureTrivyLogging: that handler keeps every record in
// memory and is not safe for concurrent use, and platforms are scanned
// concurrently. Records then go nowhere.
func ensureLogging() {
	if _, ok := slog.Default().Handler().(*tlog.DeferredHandler); ok {
		ConfigureTrivyLogging(nil, false)
	}
}

// RemoveTempDir removes the temporary directory Trivy keeps for the whole
// process (its CLI does this on exit). Call it once, when the process is
// about to end: Trivy does not create the directory again.
func RemoveTempDir() error { return trivytemp.Cleanup() }
