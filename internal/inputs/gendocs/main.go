// Command gendocs writes action.yml and the README's input and output tables
// from the inputs table (run it with make docs).
package main

import (
	"fmt"
	"os"

	"github.com/registry-actions/registry/internal/inputs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	if err := os.WriteFile("action.yml", inputs.ActionYAML(), 0o644); err != nil {
		return err
	}
	readme, err := os.ReadFile("README.md")
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
	return os.WriteFile("README.md", []byte(doc), 0o644)
}
