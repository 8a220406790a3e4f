package app

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/registry-actions/registry/internal/inputs"
)

// TestEveryInputTheAppReadsIsInTheTable reads this package's source: a call
// like Values.String("name") with a name the inputs table lacks would fail
// at run time with a bug report instead of reading the user's value.
func TestEveryInputTheAppReadsIsInTheTable(t *testing.T) {
	readers := map[string]bool{"String": true, "Bool": true, "Int": true, "List": true, "Duration": true, "Raw": true, "IsSet": true, "Set": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !readers[sel.Sel.Name] {
				return true
			}
			recv := receiverName(sel.X)
			if recv != "v" && recv != "Values" && recv != "values" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			checked++
			if _, ok := inputs.Lookup(name); !ok {
				t.Errorf("%s: input %q is read but not in the inputs table", fset.Position(lit.Pos()), name)
			}
			return true
		})
	}
	if checked < 50 {
		t.Fatalf("only %d input reads found: the test no longer sees how the app reads inputs", checked)
	}
}

// receiverName names the receiver of a selector: v in v.String, Values in
// r.Values.String.
func receiverName(x ast.Expr) string {
	switch e := x.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}
