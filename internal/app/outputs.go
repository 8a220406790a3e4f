package app

import (
	"fmt"
	"strings"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
)

// stageOutputs checks a stage's outputs against the outputs table and
// neutralises each value for its declared shape, so that a tag or platform
// read from a registry cannot add a line to a single-line output or an item
// to a list. An output the table does not declare for the stage is a bug: it
// is dropped with an error the caller logs, never written.
func stageOutputs(st inputs.Stage, outs []report.Output) ([]report.Output, error) {
	var kept []report.Output
	var undeclared []string
	for _, o := range outs {
		decl, ok := inputs.LookupOutput(st, o.Name)
		if !ok {
			undeclared = append(undeclared, o.Name)
			continue
		}
		switch decl.Format {
		case inputs.SingleLine:
			o.Value = report.OutputValue(o.Value)
		case inputs.LineList:
			// Stages build lists with report.OutputList; this keeps any
			// stray control character out of each line.
			if o.Value != "" {
				o.Value = report.OutputList(strings.Split(o.Value, "\n"))
			}
		}
		kept = append(kept, o)
	}
	if len(undeclared) > 0 {
		return kept, fmt.Errorf("%s emitted outputs %q that the outputs table does not declare: they were not written", st, undeclared)
	}
	return kept, nil
}
