package app

import (
	"context"
	"fmt"

	"github.com/registry-actions/registry/internal/report"
)

func runVerify(ctx context.Context, r *Run) (report.Result, error) {
	return nil, fmt.Errorf("verify: not implemented yet")
}
