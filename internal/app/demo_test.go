package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/failure"
)

// TestDemoNeverDeletesADirectoryItDidNotMake is the regression test for
// `registry demo --out .` deleting a checkout: a directory holding anything
// the demo did not write is refused, untouched, with exit code 2.
func TestDemoNeverDeletesADirectoryItDidNotMake(t *testing.T) {
	checkout := t.TempDir()
	for name, body := range map[string]string{"main.go": "package main\n", ".git/HEAD": "ref: refs/heads/main\n", "reports/keep.txt": "mine\n"} {
		p := filepath.Join(checkout, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, out := range []string{".", checkout, "reports"} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), IO{Args: []string{"demo", "--out", out}, Getenv: func(string) string { return "" }, Stdout: &stdout, Stderr: &stderr, Dir: checkout})
		if code != failure.ExitInvalid {
			t.Fatalf("demo --out %s: exit %d, want %d\n%s", out, code, failure.ExitInvalid, stderr.String())
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "new or empty directory") {
			t.Fatalf("demo --out %s: want one line naming the fix, got %q", out, msg)
		}
	}
	for _, name := range []string{"main.go", ".git/HEAD", "reports/keep.txt"} {
		if _, err := os.Stat(filepath.Join(checkout, name)); err != nil {
			t.Fatalf("demo touched %s: %v", name, err)
		}
	}
	entries, _ := os.ReadDir(checkout)
	if len(entries) != 3 {
		t.Fatalf("demo wrote into a refused directory: %v", entries)
	}
}
