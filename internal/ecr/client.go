// Package ecr is a small client for the Amazon ECR API, built on
// aws-sdk-go-v2, shaped for what the push, scan and clean stages and the
// registry authentication need: authorization tokens, repositories, image
// listings, manifests in bulk, batched deletions, lifecycle policies and their
// previews, and scan findings.
//
// Every method returns plain structs and one-line, actionable errors (see
// Error and the Err* sentinels). Throttling and transient server errors are
// retried by the SDK's standard retryer, bounded in attempts and backoff.
package ecr

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/registry-actions/registry/internal/awsconfig"
)

// Options configures a Client. Only Region is usually needed; everything else
// comes from the default AWS configuration chain.
type Options struct {
	// Region of the registry, e.g. "us-east-1". Empty means the region from
	// the environment (AWS_REGION, AWS_DEFAULT_REGION) or the shared config.
	Region string
	// RegistryID is the AWS account ID owning the repositories the client
	// works on. Empty means the account of the credentials.
	RegistryID string
	// Endpoint overrides the ECR API endpoint (tests, private endpoints).
	// Without it the SDK still honours AWS_ENDPOINT_URL_ECR and
	// AWS_ENDPOINT_URL.
	Endpoint string
	// HTTPClient replaces the SDK's default HTTP client.
	HTTPClient *http.Client
	// Credentials replaces the default credential chain (environment,
	// web identity, shared profiles, container and instance roles).
	Credentials aws.CredentialsProvider
	// MaxAttempts bounds the attempts per API call, retries included
	// (default 8). AWS_MAX_ATTEMPTS, when set, still takes precedence.
	MaxAttempts int
	// MaxBackoff caps the delay between two attempts (default 20s).
	MaxBackoff time.Duration
}

// Client calls the ECR API for one region and registry.
type Client struct {
	api        *ecr.Client
	region     string
	registryID string
	http       *http.Client
}

func (c *Client) httpClient() *http.Client {
	if c.http != nil {
		return c.http
	}
	return http.DefaultClient
}

// New loads the AWS configuration and returns a client. It does not contact
// AWS: missing or invalid credentials surface on the first call.
func New(ctx context.Context, opts Options) (*Client, error) {
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{
		Region: opts.Region, HTTPClient: opts.HTTPClient, Credentials: opts.Credentials,
		MaxAttempts: opts.MaxAttempts, MaxBackoff: opts.MaxBackoff,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Credentials != nil {
		cfg.Credentials = taggedCredentials{inner: cfg.Credentials}
	}

	api := ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
	})
	return &Client{api: api, region: cfg.Region, registryID: opts.RegistryID, http: opts.HTTPClient}, nil
}

// Region is the AWS region the client talks to.
func (c *Client) Region() string { return c.region }

// RegistryID is the account ID the client was configured with ("" means the
// credentials' own account).
func (c *Client) RegistryID() string { return c.registryID }

// registry returns the registry ID to send with a request, nil for "the
// caller's account".
func (c *Client) registry() *string {
	if c.registryID == "" {
		return nil
	}
	return aws.String(c.registryID)
}

// AuthorizationToken returns Docker credentials for the registry of the given
// account (empty: the client's RegistryID, else the credentials' account).
// ECR tokens are valid for 12 hours.
func (c *Client) AuthorizationToken(ctx context.Context, registryID string) (username, password string, expiresAt time.Time, err error) {
	const op = "GetAuthorizationToken"
	if registryID == "" {
		registryID = c.registryID
	}
	in := &ecr.GetAuthorizationTokenInput{}
	if registryID != "" {
		in.RegistryIds = []string{registryID}
	}
	out, err := c.api.GetAuthorizationToken(ctx, in)
	if err != nil {
		return "", "", time.Time{}, c.mapError(op, "", err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return "", "", time.Time{}, fmt.Errorf("ECR %s returned no authorization data for registry %s", op, orDefault(registryID, "of the current account"))
	}
	data := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(*data.AuthorizationToken)
	if err != nil {
		// Never echo the token: it is a credential.
		return "", "", time.Time{}, fmt.Errorf("ECR %s returned a token that is not valid base64", op)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pass == "" {
		return "", "", time.Time{}, fmt.Errorf("ECR %s returned a token that is not of the form user:password", op)
	}
	if data.ExpiresAt != nil {
		expiresAt = *data.ExpiresAt
	}
	return user, pass, expiresAt, nil
}

// taggedCredentials marks failures of the credential chain so that they can be
// told apart from API errors after the SDK has wrapped them.
type taggedCredentials struct {
	inner aws.CredentialsProvider
}

func (p taggedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.inner.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return creds, &credentialsError{err: err}
	}
	return creds, err
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
