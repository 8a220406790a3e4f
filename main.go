// Command registry is a GitHub Action and a command-line tool that pushes,
// scans, signs and cleans container images in ECR, GHCR and any OCI registry.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/registry-actions/registry/internal/app"
)

func main() {
	// The runner cancels a job with SIGINT then SIGTERM; stop cleanly so no
	// tag is left pointing at a half-written image.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	pio, err := app.OSIO()
	if err != nil {
		fmt.Fprintf(os.Stderr, "registry: %v\n", err)
		os.Exit(1)
	}
	code := app.Main(ctx, pio)
	stop()
	// Trivy's per-process temp directory: this run made it, this run
	// removes it (os.Exit skips deferred calls).
	if err := app.Cleanup(); err != nil {
		fmt.Fprintf(os.Stderr, "registry: remove temporary files: %v\n", err)
	}
	os.Exit(code)
}
