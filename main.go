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
	"github.com/registry-actions/registry/internal/scanner"
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
	// Trivy keeps one temporary directory per process that its own CLI
	// removes on exit; in a container action it would stay in /tmp.
	if err := scanner.RemoveTempDir(); err != nil {
		fmt.Fprintf(os.Stderr, "registry: remove temporary files: %v\n", err)
	}
	os.Exit(code)
}
