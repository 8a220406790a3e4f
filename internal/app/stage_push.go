package app

import (
	"context"
	"fmt"

	"github.com/registry-actions/registry/internal/report"
)

func runPush(ctx context.Context, r *Run) (report.Result, error) {
	return nil, fmt.Errorf("push: not implemented yet")
}
