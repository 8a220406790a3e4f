package inputs

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type actionFile struct {
	Inputs map[string]struct {
		Description string  `yaml:"description"`
		Default     *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Image string `yaml:"image"`
	} `yaml:"runs"`
}

func repoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestActionYAMLAgreesWithTheTable parses action.yml the way GitHub does and
// compares it input by input, so the failure names what drifted.
func TestActionYAMLAgreesWithTheTable(t *testing.T) {
	var af actionFile
	if err := yaml.Unmarshal(repoFile(t, "action.yml"), &af); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	table := map[string]Input{}
	for _, in := range All() {
		table[in.Name] = in
		got, ok := af.Inputs[in.Name]
		if !ok {
			t.Errorf("input %q is in the table but not in action.yml (run make docs)", in.Name)
			continue
		}
		if got.Description != in.Description {
			t.Errorf("input %q: action.yml description %q differs from the table's %q", in.Name, got.Description, in.Description)
		}
		want := in.Default
		if in.ActionDefault != "" {
			want = in.ActionDefault
		}
		def := ""
		if got.Default != nil {
			def = strings.TrimSuffix(*got.Default, "\n")
		}
		if def != want {
			t.Errorf("input %q: action.yml default %q differs from the table's %q", in.Name, def, want)
		}
	}
	for name := range af.Inputs {
		if _, ok := table[name]; !ok {
			t.Errorf("input %q is in action.yml but not in the table", name)
		}
	}
	outs := map[string]Output{}
	for _, o := range AllOutputs() {
		outs[o.Name] = o
		got, ok := af.Outputs[o.Name]
		if !ok || got.Description != o.Description {
			t.Errorf("output %q: action.yml has %+v, the table %q (run make docs)", o.Name, got, o.Description)
		}
	}
	for name := range af.Outputs {
		if _, ok := outs[name]; !ok {
			t.Errorf("output %q is in action.yml but not in the table", name)
		}
	}
	if af.Runs.Using != "docker" || af.Runs.Image == "" {
		t.Errorf("action.yml must run the Docker image, got %+v", af.Runs)
	}
	if string(ActionYAML()) != string(repoFile(t, "action.yml")) {
		t.Error("action.yml is not what make docs generates: run make docs")
	}
}

// TestReadmeTablesAgreeWithTheTable reads the README's tables row by row.
func TestReadmeTablesAgreeWithTheTable(t *testing.T) {
	readme := string(repoFile(t, "README.md"))
	for _, tc := range []struct {
		begin, end, want string
		names            []string
	}{
		{InputsBegin, InputsEnd, ReadmeInputs(), inputNames()},
		{OutputsBegin, OutputsEnd, ReadmeOutputs(), outputNames()},
	} {
		got, ok := Between(readme, tc.begin, tc.end)
		if !ok {
			t.Fatalf("README.md lacks the markers %s … %s", tc.begin, tc.end)
		}
		var rows []string
		for _, line := range strings.Split(got, "\n") {
			if strings.HasPrefix(line, "| `") {
				name := strings.TrimPrefix(line, "| `")
				rows = append(rows, name[:strings.IndexByte(name, '`')])
			}
		}
		sort.Strings(rows)
		want := append([]string(nil), tc.names...)
		sort.Strings(want)
		if strings.Join(rows, ",") != strings.Join(want, ",") {
			t.Errorf("README rows %v differ from the table %v (run make docs)", rows, want)
		}
		if got != tc.want {
			t.Errorf("README table between %s and %s is not what make docs generates", tc.begin, tc.end)
		}
	}
}

func inputNames() []string {
	var n []string
	for _, in := range All() {
		n = append(n, in.Name)
	}
	return n
}

func outputNames() []string {
	var n []string
	for _, o := range AllOutputs() {
		n = append(n, o.Name)
	}
	return n
}
