// Package workflows checks the example workflows users copy: each must pass
// actionlint, which also checks every with: key of this action against
// action.yml.
package workflows

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// published is how users reference the action; the test lints it as the
// local action (uses: ./) so actionlint reads this repository's action.yml.
const published = "registry-actions/registry@v1"

func TestExampleWorkflowsPassActionlint(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "examples", "workflows", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no example workflows found")
	}
	project, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	localUse := false
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte("uses: ./\n")) {
			localUse = true
		}
		if !bytes.Contains(src, []byte("uses: ./")) && !bytes.Contains(src, []byte(published)) {
			t.Errorf("%s does not use this action", filepath.Base(path))
		}
		src = bytes.ReplaceAll(src, []byte(published), []byte("./"))
		var out bytes.Buffer
		linter, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{Oneline: true})
		if err != nil {
			t.Fatal(err)
		}
		errs, err := linter.Lint(path, src, project)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, e := range errs {
			t.Errorf("%s:%d:%d: %s [%s]", filepath.Base(path), e.Line, e.Column, e.Message, e.Kind)
		}
	}
	if !localUse {
		t.Error("no example uses the action as uses: ./")
	}
}

// TestActionlintCatchesAnUnknownInput proves the check can fail.
func TestActionlintCatchesAnUnknownInput(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	project, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	src := []byte(`on: push
jobs:
  x:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./
        with:
          imagez: ghcr.io/acme/app
`)
	linter, _ := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{})
	errs, err := linter.Lint("bad.yml", src, project)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range errs {
		if strings.Contains(e.Message, "imagez") {
			found = true
		}
	}
	if !found {
		t.Fatalf("actionlint did not report the unknown input: %v", errs)
	}
}
