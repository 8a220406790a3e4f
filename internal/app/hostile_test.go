package app

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/clean"
	"github.com/registry-actions/registry/internal/steps/push"
	"github.com/registry-actions/registry/internal/steps/scan"
	"github.com/registry-actions/registry/internal/steps/sign"
	"github.com/registry-actions/registry/test/mdcheck"
)

// hostileText is what a platform variant, an annotation, a tag or repository
// listed from a registry, a package title from a vulnerability DB, an ECR
// finding or a server's error body could carry: line breaks that start
// workflow commands, markdown that breaks a table, HTML, terminal escapes.
const hostileText = "x\nINJECTED ::error::pwned\r\n::add-mask::hunter2\n##[warning]old-style|cell|break`code`<img src=x onerror=alert(1)>\x1b[2J\u202e"

// fillHostile sets every exported string reachable from v (through
// structs, pointers, slices and maps, a few levels deep) to hostileText,
// every slice to one element and every map to one entry, so that each field
// a stage's result renders carries the text.
func fillHostile(v reflect.Value, depth int) {
	if depth > 7 || !v.CanSet() && v.Kind() != reflect.Pointer && v.Kind() != reflect.Struct {
		return
	}
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(hostileText)
		}
	case reflect.Pointer:
		if v.IsNil() {
			if !v.CanSet() {
				return
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillHostile(v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type().PkgPath() == "time" {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillHostile(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if !v.CanSet() || v.Type().Elem().Kind() == reflect.Uint8 {
			// Raw bytes (json.RawMessage): valid JSON with the text inside.
			if v.CanSet() && v.Type().Elem().Kind() == reflect.Uint8 {
				data, _ := json.Marshal(map[string]string{"description": hostileText})
				v.SetBytes(data)
			}
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillHostile(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		if !v.CanSet() {
			return
		}
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fillHostile(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fillHostile(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	}
}

// TestEveryStageNeutralisesUntrustedTextInEverySink fills every string of
// every stage's result with hostile text and checks each sink: the summary
// keeps its tables and shows no HTML or line from the data, the outputs keep
// their shape, and the CLI's text (which a runner reads too when the CLI
// runs in a workflow step) starts no workflow command.
func TestEveryStageNeutralisesUntrustedTextInEverySink(t *testing.T) {
	results := map[inputs.Stage]report.Result{
		inputs.Push:   &push.Result{},
		inputs.Scan:   &scan.Result{},
		inputs.Sign:   &sign.Result{},
		inputs.Verify: &sign.VerifyResult{},
		inputs.Clean:  &clean.Result{},
	}
	for st, res := range results {
		t.Run(string(st), func(t *testing.T) {
			fillHostile(reflect.ValueOf(res), 0)

			var md report.Markdown
			res.Summary(&md)
			summary := md.String()
			if !strings.Contains(summary, "pwned") {
				t.Fatalf("the hostile text did not reach the %s summary: the test fills the wrong fields\n%s", st, summary)
			}
			for _, p := range mdcheck.Problems(summary, "INJECTED", "::") {
				t.Errorf("%s summary: %s", st, p)
			}

			outs, err := stageOutputs(st, res.Outputs())
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outs {
				decl, _ := inputs.LookupOutput(st, o.Name)
				switch decl.Format {
				case inputs.SingleLine:
					if strings.ContainsAny(o.Value, "\r\n") {
						t.Errorf("%s output %s is single-line but holds a line break: %q", st, o.Name, o.Value)
					}
				case inputs.JSONDocument:
					if o.Value != "" && !json.Valid([]byte(o.Value)) {
						t.Errorf("%s output %s is not JSON: %q", st, o.Name, o.Value)
					}
				}
				for _, line := range strings.Split(o.Value, "\n") {
					if strings.HasPrefix(line, "INJECTED") || strings.HasPrefix(line, "::") {
						t.Errorf("%s output %s: data forged a line: %q", st, o.Name, line)
					}
				}
			}

			var text bytes.Buffer
			w := report.GuardLines(&text)
			res.Text(w)
			report.Flush(w)
			for _, line := range strings.Split(text.String(), "\n") {
				if trimmed := strings.TrimLeft(line, " \t"); strings.HasPrefix(trimmed, "::") || strings.Contains(line, "##[") {
					t.Errorf("%s CLI text starts a workflow command: %q", st, line)
				}
				if strings.ContainsAny(line, "\r\x1b\u202e") {
					t.Errorf("%s CLI text holds a control character: %q", st, line)
				}
			}
		})
	}
}
