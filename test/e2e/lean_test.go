package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-actions/registry/test/harness"
)

// TestLeanBuildNeedsItsFullBuildToScan covers the two-binary layout the
// Makefile and Dockerfile ship: the lean registry hands scanning to
// registry-full, and says what to do when it is missing.
func TestLeanBuildNeedsItsFullBuildToScan(t *testing.T) {
	bin := harness.Binary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "lean build") {
		t.Skip("the binary under test is the single full build")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "registry-full")); err != nil {
		t.Fatalf("the lean build under test has no registry-full beside it: %v", err)
	}
	alone := filepath.Join(t.TempDir(), "registry")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(alone, "scan", "--images", "127.0.0.1:1/app@sha256:"+strings.Repeat("a", 64))
	msg, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || !strings.Contains(string(msg), "scanning needs registry-full next to this binary") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	// Push does not need the engine at all.
	cmd = exec.Command(alone, "push", "--help")
	if msg, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(msg), "--images") {
		t.Fatalf("push without the full build: %v %s", err, msg)
	}
}
