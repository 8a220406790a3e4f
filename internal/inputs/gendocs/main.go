// Command gendocs writes action.yml and the README's input and output tables
// from the inputs table (run it with make docs).
//
// With -image it writes only action.yml, running the given published image
// instead of building the Dockerfile: the release workflow pins the release
// ref to the image it signed (-image docker://ghcr.io/owner/registry@sha256:…).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/registry-actions/registry/internal/inputs"
)

func main() {
	if err := run(".", os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

// run regenerates the files in dir, the repository's root.
func run(dir string, args []string) error {
	fs := flag.NewFlagSet("gendocs", flag.ContinueOnError)
	image := fs.String("image", "", "write action.yml for this published image (docker://registry/repository@sha256:…) and nothing else")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *image != "" {
		data, err := inputs.PinnedActionYAML(*image)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "action.yml"), data, 0o644)
	}
	if err := os.WriteFile(filepath.Join(dir, "action.yml"), inputs.ActionYAML(), 0o644); err != nil {
		return err
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		return err
	}
	doc, err := inputs.ReplaceBetween(string(readme), inputs.InputsBegin, inputs.InputsEnd, inputs.ReadmeInputs())
	if err != nil {
		return fmt.Errorf("README.md: %w", err)
	}
	doc, err = inputs.ReplaceBetween(doc, inputs.OutputsBegin, inputs.OutputsEnd, inputs.ReadmeOutputs())
	if err != nil {
		return fmt.Errorf("README.md: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(doc), 0o644)
}
