package scanner

import (
	"os"
	"testing"
)

// TestMain removes the temporary directory Trivy keeps for the test process,
// as the program does at exit: tests leave nothing in the temp dir.
func TestMain(m *testing.M) {
	code := m.Run()
	_ = RemoveTempDir()
	os.Exit(code)
}
