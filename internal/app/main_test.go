package app

import (
	"os"
	"testing"

	"github.com/registry-actions/registry/internal/scanner"
)

// TestMain removes the temporary directory Trivy keeps for the test process,
// as main does at exit: tests leave nothing in the temp dir.
func TestMain(m *testing.M) {
	code := m.Run()
	_ = scanner.RemoveTempDir()
	os.Exit(code)
}
