//go:build lean

package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/registry-actions/registry/internal/report"
)

// FullBuildName is the full build's file name, beside the lean one.
const FullBuildName = "registry-full"

const engineLinked = false

func configureEngineLogging(io.Writer, bool) {}

// runScan is never reached in the lean build: Main hands every chain with
// scan to the full build first.
func runScan(context.Context, *Run) (report.Result, error) {
	return nil, fmt.Errorf("scan: this build has no scan engine: run %s", FullBuildName)
}

// runFullBuild replaces this process with the full build, same arguments,
// same environment, same standard streams: to the runner it is one step.
func runFullBuild(pio IO) int {
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		fmt.Fprintf(pio.Stderr, "registry: cannot locate the scan engine: %v\n", err)
		return ExitFailed
	}
	full := filepath.Join(filepath.Dir(self), FullBuildName)
	if _, err := os.Stat(full); err != nil {
		fmt.Fprintf(pio.Stderr, "registry: scanning needs %s next to this binary (%s not found): install both binaries (make build does), or build the single binary with go build .\n", FullBuildName, full)
		return ExitFailed
	}
	env := os.Environ()
	if pio.Environ != nil {
		env = pio.Environ()
	}
	err = syscall.Exec(full, append([]string{full}, pio.Args...), env)
	fmt.Fprintf(pio.Stderr, "registry: start %s: %v\n", full, err)
	return ExitFailed
}
