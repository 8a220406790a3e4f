// Package awsconfig loads the AWS SDK's configuration the one way every AWS
// client of this program needs it: the default credential chain, a region
// that must be known, and a standard retryer bounded in attempts and backoff
// without the client-side retry quota (which would fail calls outright during
// a long throttling episode; the bounded attempts are limit enough).
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/registry-actions/registry/internal/report"
)

// Defaults for the retryer. Throttling backs off from 1 s doubling up to
// MaxBackoff, so eight attempts ride out roughly a minute of throttling.
const (
	DefaultMaxAttempts = 8
	DefaultMaxBackoff  = 20 * time.Second
)

// Options override parts of the default configuration; zero values keep it.
type Options struct {
	// Region; empty means the environment's (AWS_REGION, AWS_DEFAULT_REGION)
	// or the shared config's.
	Region string
	// HTTPClient replaces the SDK's default HTTP client.
	HTTPClient *http.Client
	// Credentials replaces the default credential chain (environment, web
	// identity, shared profiles, container and instance roles).
	Credentials aws.CredentialsProvider
	// MaxAttempts bounds the attempts per call, retries included (default
	// 8); AWS_MAX_ATTEMPTS, when set, still takes precedence.
	MaxAttempts int
	// MaxBackoff caps the delay between two attempts (default 20s).
	MaxBackoff time.Duration
}

// Load returns the configuration. It does not contact AWS: missing or
// invalid credentials surface on the first call.
func Load(ctx context.Context, opts Options) (aws.Config, error) {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	load := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				o.MaxBackoff = opts.MaxBackoff
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.HTTPClient != nil {
		load = append(load, config.WithHTTPClient(opts.HTTPClient))
	}
	if opts.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %s", report.OneLine(err.Error()))
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION (aws-actions/configure-aws-credentials sets it from its aws-region input)")
	}
	return cfg, nil
}
