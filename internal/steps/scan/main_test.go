package scan

import (
	"os"
	"testing"

	"github.com/registry-actions/registry/internal/scanner"
	"github.com/registry-actions/registry/test/fakeecr"
)

// The Inspector tests use the real AWS SDK: keep it away from this
// machine's AWS configuration.
func TestMain(m *testing.M) {
	fakeecr.IsolateAWS()
	code := m.Run()
	// Trivy keeps a temporary directory for the process; the program removes
	// it at exit, and so do the tests.
	_ = scanner.RemoveTempDir()
	os.Exit(code)
}
