package outdir

import (
	"os"
	"path/filepath"
	"strings"
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

func TestClaimCacheAcceptsTheOwnersCacheAndRefusesAnythingElse(t *testing.T) {
	root := t.TempDir()
	known := func(name string) bool { return name == "db" || name == "fanal" }

	trivy := filepath.Join(root, "trivy")
	os.MkdirAll(filepath.Join(trivy, "db"), 0o755)
	os.MkdirAll(filepath.Join(trivy, "fanal"), 0o755)
	if err := ClaimCache(trivy, "Trivy", known); err != nil {
		t.Fatalf("a cache holding only the owner's entries must be usable: %v", err)
	}
	if ok, _ := IsMarked(trivy); !ok {
		t.Fatal("a claimed cache must carry the marker")
	}

	checkout := filepath.Join(root, "checkout")
	os.MkdirAll(filepath.Join(checkout, "db"), 0o755)
	os.WriteFile(filepath.Join(checkout, "go.mod"), []byte("module x"), 0o644)
	err := ClaimCache(checkout, "Trivy", known)
	if failure.Code(err) != failure.ExitInvalid || !strings.Contains(err.Error(), "go.mod") || !strings.Contains(err.Error(), "not a Trivy cache") {
		t.Fatalf("a directory with other files must be refused naming one of them, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(checkout, MarkerName)); !os.IsNotExist(err) {
		t.Fatal("a refused cache directory must not be touched")
	}

	// Claim itself knows no owner: the same Trivy cache is foreign to it.
	other := filepath.Join(root, "other")
	os.MkdirAll(filepath.Join(other, "db"), 0o755)
	if failure.Code(Claim(other)) != failure.ExitInvalid {
		t.Fatal("an output directory holding a cache must be refused")
	}
}
