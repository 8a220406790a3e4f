package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"

	"github.com/registry-actions/registry/internal/inputs"
)

const image = "docker://ghcr.io/acme/registry@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestPinnedActionYAMLIsValidAndMatchesTheTable runs the release's pinning
// step and reads its action.yml the way the runner and actionlint do.
func TestPinnedActionYAMLIsValidAndMatchesTheTable(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir, []string{"-image", image}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Valid YAML running the image, with every input and output...
	var af struct {
		Inputs  map[string]any                `yaml:"inputs"`
		Outputs map[string]any                `yaml:"outputs"`
		Runs    struct{ Using, Image string } `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &af); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if af.Runs.Using != "docker" || af.Runs.Image != image {
		t.Fatalf("runs %+v, want docker with %s", af.Runs, image)
	}
	if len(af.Inputs) != len(inputs.All()) || len(af.Outputs) != len(inputs.AllOutputs()) {
		t.Errorf("%d inputs and %d outputs, the table has %d and %d", len(af.Inputs), len(af.Outputs), len(inputs.All()), len(inputs.AllOutputs()))
	}
	// ...and apart from the image, the branch's action.yml, which the inputs
	// package's tests compare with the table entry by entry.
	if !bytes.Equal(bytes.Replace(data, []byte(`"`+image+`"`), []byte(inputs.SourceImage), 1), inputs.ActionYAML()) {
		t.Error("the pinned action.yml differs from the branch's in more than the image")
	}

	// actionlint reads it as the action's metadata: a known input passes,
	// an unknown one is reported.
	project, err := actionlint.NewProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		input string
		ok    bool
	}{{"images", true}, {"imagez", false}} {
		src := []byte("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./\n        with:\n          " + tc.input + ": ghcr.io/acme/app\n")
		linter, _ := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{})
		errs, err := linter.Lint(filepath.Join(dir, ".github", "workflows", "x.yml"), src, project)
		if err != nil {
			t.Fatal(err)
		}
		if (len(errs) == 0) != tc.ok {
			t.Errorf("input %s: actionlint said %v", tc.input, errs)
		}
	}
}

func TestPinningRefusesAnythingButADigest(t *testing.T) {
	digest := "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, bad := range []string{
		"ghcr.io/acme/registry" + digest,             // not docker://
		"docker://ghcr.io/acme/registry:v1",          // a tag moves
		"docker://ghcr.io/acme/registry:v1" + digest, // tag and digest
		"docker://ghcr.io/acme/registry@sha256:abc",  // short digest
		"docker://ghcr.io/Acme/registry" + digest,    // not a valid repository
		"Dockerfile",
	} {
		dir := t.TempDir()
		if err := run(dir, []string{"-image", bad}); err == nil {
			t.Errorf("%s was accepted", bad)
		}
		if _, err := os.Stat(filepath.Join(dir, "action.yml")); err == nil {
			t.Errorf("%s: action.yml written anyway", bad)
		}
	}
	if err := run(t.TempDir(), []string{"-image", "docker://localhost:5000/acme/registry" + digest}); err != nil {
		t.Errorf("a registry with a port: %v", err)
	}
}
