package app

import (
	"context"

	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/push"
)

func runPush(ctx context.Context, r *Run) (report.Result, error) {
	v := r.Values
	concurrency, _ := v.Int("concurrency")
	opts := push.Options{
		Source:      v.String("source"),
		Dir:         r.IO.Dir,
		Images:      v.List("images"),
		Tags:        v.List("tags"),
		Platforms:   v.List("platforms"),
		Concurrency: concurrency,
		ECR: push.ECROptions{
			CreateRepository: v.Bool("ecr-create-repository"),
			TagMutability:    v.String("ecr-tag-mutability"),
			ScanOnPush:       v.Bool("ecr-scan-on-push"),
			KMSKey:           v.String("ecr-kms-key"),
		},
		Registry: r.Registry,
		ECRRepositories: func(ctx context.Context, host registry.ECRHost) (push.ECRRepositories, error) {
			return ecr.New(ctx, ecr.Options{Region: host.Region, RegistryID: host.AccountID})
		},
		Log:        r.Log,
		KeepSource: true,
		Ready:      r.onPushReady,
	}
	if v.IsSet("context") {
		opts.Build = buildOptions(r)
		// The build already produced only the requested platforms.
		opts.Platforms = nil
	} else if !v.IsSet("source") {
		return nil, failure.Invalidf("push: set source (an OCI layout, OCI archive, docker-save tarball or image reference) or context (to build)")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	res, err := push.Run(ctx, opts)
	if res != nil {
		r.State.Pushed = res.Pushed()
		r.State.Digest = res.Digest
		r.State.Source = res.Opened
	}
	if res == nil {
		return nil, err
	}
	return res, err
}
