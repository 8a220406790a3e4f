package app

import (
	"context"
	"fmt"

	"github.com/registry-actions/registry/internal/report"
)

func runClean(ctx context.Context, r *Run) (report.Result, error) {
	return nil, fmt.Errorf("clean: not implemented yet")
}
