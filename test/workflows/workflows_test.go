// Package workflows checks the example workflows users copy and the
// project's own workflows: each must pass actionlint, which also checks
// every with: key of this action against action.yml; every action is called
// at one major version everywhere (examples, workflows, README), and
// Dependabot watches what the project builds on.
package workflows

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

// published is how users reference the action; the test lints it as the
// local action (uses: ./) so actionlint reads this repository's action.yml.
const published = "registry-actions/registry@v1"

func TestExampleWorkflowsPassActionlint(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "examples", "workflows", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no example workflows found")
	}
	lintAll(t, root, files, true)
}

// TestProjectWorkflowsPassActionlint lints .github/workflows, which run the
// action from the checkout (uses: ./).
func TestProjectWorkflowsPassActionlint(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	for _, want := range []string{"ci.yml", "release.yml"} {
		if !slices.Contains(files, filepath.Join(root, ".github", "workflows", want)) {
			t.Errorf(".github/workflows/%s is missing", want)
		}
	}
	lintAll(t, root, files, false)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// lintAll runs actionlint on files as the project's own workflows, with the
// published action read as the local one. examples must each use the action.
func lintAll(t *testing.T, root string, files []string, examples bool) {
	t.Helper()
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
		if examples && !bytes.Contains(src, []byte("uses: ./")) && !bytes.Contains(src, []byte(published)) {
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
		t.Error("no workflow uses the action as uses: ./")
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

var usesLine = regexp.MustCompile("uses:\\s+([A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+)@([^\\s#`]+)")

// majors maps each action called in the given texts to the versions it is
// called at, and those to the files calling them.
func majors(texts map[string]string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for file, text := range texts {
		for _, m := range usesLine.FindAllStringSubmatch(text, -1) {
			if out[m[1]] == nil {
				out[m[1]] = map[string][]string{}
			}
			if !slices.Contains(out[m[1]][m[2]], file) {
				out[m[1]][m[2]] = append(out[m[1]][m[2]], file)
			}
		}
	}
	return out
}

// TestActionsAreCalledAtOneMajorEverywhere: Dependabot moves the project's
// workflows to new majors; the examples and the README must follow, so
// users never copy an older major than the project runs.
func TestActionsAreCalledAtOneMajorEverywhere(t *testing.T) {
	root := repoRoot(t)
	texts := map[string]string{}
	var files []string
	for _, pattern := range []string{"examples/workflows/*.yml", ".github/workflows/*.yml", "README.md", "docs/*.md"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		files = append(files, m...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		texts[rel] = string(data)
	}
	all := majors(texts)
	if len(all) < 5 {
		t.Fatalf("found only %d actions: the pattern no longer matches", len(all))
	}
	for action, versions := range all {
		if len(versions) > 1 {
			t.Errorf("%s is called at %d versions: %v", action, len(versions), versions)
		}
		for v := range versions {
			if !regexp.MustCompile(`^v\d+$`).MatchString(v) {
				t.Errorf("%s@%s: call actions at their major version tag (Dependabot moves them)", action, v)
			}
		}
	}
	// The check can fail.
	if got := majors(map[string]string{"a": "uses: actions/checkout@v6", "b": "- uses: actions/checkout@v7"}); len(got["actions/checkout"]) != 2 {
		t.Errorf("two majors not told apart: %v", got)
	}
}

// TestDependabotWatchesModulesActionsAndBaseImages reads .github/dependabot.yml.
func TestDependabotWatchesModulesActionsAndBaseImages(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "dependabot.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version int `yaml:"version"`
		Updates []struct {
			Ecosystem string `yaml:"package-ecosystem"`
			Directory string `yaml:"directory"`
			Schedule  struct {
				Interval string `yaml:"interval"`
			} `yaml:"schedule"`
		} `yaml:"updates"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 2 {
		t.Errorf("version %d, want 2", cfg.Version)
	}
	found := map[string]bool{}
	for _, u := range cfg.Updates {
		if u.Directory == "/" && u.Schedule.Interval != "" {
			found[u.Ecosystem] = true
		}
	}
	for _, eco := range []string{"gomod", "github-actions", "docker"} {
		if !found[eco] {
			t.Errorf("no scheduled %s updates for the repository root", eco)
		}
	}
}
