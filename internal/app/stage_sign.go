package app

import (
	"context"
	"fmt"

	"github.com/registry-actions/registry/internal/report"
)

func runSign(ctx context.Context, r *Run) (report.Result, error) {
	return nil, fmt.Errorf("sign: not implemented yet")
}
