package app

import (
	"context"
	"fmt"

	"github.com/registry-actions/registry/internal/report"
)

func runScan(ctx context.Context, r *Run) (report.Result, error) {
	return nil, fmt.Errorf("scan: not implemented yet")
}
