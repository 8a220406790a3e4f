package outdir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/registry-actions/registry/internal/failure"
)

func TestClaimCreatesReusesMarkedAndRefusesForeignDirectories(t *testing.T) {
	root := t.TempDir()

	fresh := filepath.Join(root, "a", "b")
	if err := Claim(fresh); err != nil {
		t.Fatalf("a missing directory must be created: %v", err)
	}
	if ok, _ := IsMarked(fresh); !ok {
		t.Fatal("a claimed directory must carry the marker")
	}
	os.WriteFile(filepath.Join(fresh, "report.sarif"), []byte("{}"), 0o644)
	if err := Claim(fresh); err != nil {
		t.Fatalf("a marked directory must be reusable: %v", err)
	}

	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o755)
	if err := Claim(empty); err != nil {
		t.Fatalf("an empty directory must be usable: %v", err)
	}

	foreign := filepath.Join(root, "checkout")
	os.MkdirAll(filepath.Join(foreign, ".git"), 0o755)
	os.WriteFile(filepath.Join(foreign, "main.go"), []byte("package main"), 0o644)
	err := Claim(foreign)
	if failure.Code(err) != failure.ExitInvalid {
		t.Fatalf("a directory with someone else's files must be refused as invalid input, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, MarkerName)); !os.IsNotExist(err) {
		t.Fatal("a refused directory must not be touched")
	}
	if _, err := os.Stat(filepath.Join(foreign, "main.go")); err != nil {
		t.Fatal("a refused directory lost a file")
	}

	file := filepath.Join(root, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if failure.Code(Claim(file)) != failure.ExitInvalid {
		t.Fatal("a file must be refused")
	}

	link := filepath.Join(root, "link")
	os.Symlink(fresh, link)
	if failure.Code(Claim(link)) != failure.ExitInvalid {
		t.Fatal("a symbolic link must be refused")
	}

	// A marker that is a directory (or a link) is not our marker.
	fake := filepath.Join(root, "fake")
	os.MkdirAll(filepath.Join(fake, MarkerName), 0o755)
	if failure.Code(Claim(fake)) != failure.ExitInvalid {
		t.Fatal("a directory named like the marker must not count as the marker")
	}
}
