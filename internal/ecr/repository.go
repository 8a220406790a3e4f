package ecr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

const (
	opDescribeRepositories = "DescribeRepositories"
	opCreateRepository     = "CreateRepository"
)

// Tag mutability settings of a repository.
const (
	Mutable                = "MUTABLE"
	Immutable              = "IMMUTABLE"
	ImmutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION"
	MutableWithExclusion   = "MUTABLE_WITH_EXCLUSION"
)

// Repository is what push and clean need to know about an ECR repository.
type Repository struct {
	Name       string
	URI        string // e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/app
	ARN        string
	RegistryID string
	CreatedAt  time.Time
	// TagMutability is one of Mutable, Immutable, ImmutableWithExclusion,
	// MutableWithExclusion.
	TagMutability string
	// MutabilityExclusions are the wildcard filters ("release-*") of the
	// *_WITH_EXCLUSION settings: tags they match get the opposite setting.
	MutabilityExclusions []string
	ScanOnPush           bool
	EncryptionType       string // AES256, KMS or KMS_DSSE
	KMSKey               string
}

// TagImmutable reports whether a tag, once pushed, cannot be moved to another
// image in this repository.
func (r Repository) TagImmutable(tag string) bool {
	excluded := false
	for _, f := range r.MutabilityExclusions {
		if wildcardMatch(f, tag) {
			excluded = true
			break
		}
	}
	switch r.TagMutability {
	case Immutable:
		return true
	case ImmutableWithExclusion:
		return !excluded
	case MutableWithExclusion:
		return excluded
	default:
		return false
	}
}

// wildcardMatch matches s against a pattern where '*' stands for any run of
// characters, anchored at both ends (ECR's exclusion filter syntax).
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

// Repository describes one repository. A missing repository is an *Error of
// Kind ErrRepositoryNotFound whose message suggests ecr-create-repository.
func (c *Client) Repository(ctx context.Context, name string) (Repository, error) {
	out, err := c.api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{
		RegistryId:      c.registry(),
		RepositoryNames: []string{name},
	})
	if err != nil {
		return Repository{}, c.mapError(opDescribeRepositories, name, err)
	}
	for _, r := range out.Repositories {
		if aws.ToString(r.RepositoryName) == name {
			return repositoryFrom(r), nil
		}
	}
	return Repository{}, &Error{
		Op: opDescribeRepositories, Repository: name, Kind: ErrRepositoryNotFound,
		Message: fmt.Sprintf("ECR repository %q does not exist in %s: create it, or set ecr-create-repository: true", name, c.registryLabel()),
	}
}

// CreateOptions are the settings of a repository created by CreateRepository.
type CreateOptions struct {
	// TagMutability is Mutable (default) or Immutable, case-insensitive.
	TagMutability string
	ScanOnPush    bool
	// KMSKey, when set, encrypts the repository with this KMS key (ARN, ID
	// or alias); otherwise ECR uses AES256.
	KMSKey string
}

// CreateRepository creates a repository. When it already exists that is not
// an error: the existing repository is described and returned with
// created=false (its settings are left as they are).
func (c *Client) CreateRepository(ctx context.Context, name string, opts CreateOptions) (repo Repository, created bool, err error) {
	mutability := strings.ToUpper(strings.TrimSpace(opts.TagMutability))
	switch mutability {
	case "":
		mutability = Mutable
	case Mutable, Immutable:
	default:
		return Repository{}, false, fmt.Errorf("create ECR repository %q: tag mutability must be MUTABLE or IMMUTABLE, got %q", name, opts.TagMutability)
	}
	in := &ecr.CreateRepositoryInput{
		RegistryId:                 c.registry(),
		RepositoryName:             aws.String(name),
		ImageTagMutability:         types.ImageTagMutability(mutability),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: opts.ScanOnPush},
	}
	if opts.KMSKey != "" {
		in.EncryptionConfiguration = &types.EncryptionConfiguration{
			EncryptionType: types.EncryptionTypeKms,
			KmsKey:         aws.String(opts.KMSKey),
		}
	}
	out, err := c.api.CreateRepository(ctx, in)
	if err != nil {
		var exists *types.RepositoryAlreadyExistsException
		if errors.As(err, &exists) {
			// Lost a race with another job, or the caller did not look first:
			// either way the repository is there, which is what was asked.
			repo, err := c.Repository(ctx, name)
			return repo, false, err
		}
		return Repository{}, false, c.mapError(opCreateRepository, name, err)
	}
	if out.Repository == nil {
		return Repository{}, false, fmt.Errorf("ECR %s for repository %q returned no repository", opCreateRepository, name)
	}
	return repositoryFrom(*out.Repository), true, nil
}

func repositoryFrom(r types.Repository) Repository {
	repo := Repository{
		Name:          aws.ToString(r.RepositoryName),
		URI:           aws.ToString(r.RepositoryUri),
		ARN:           aws.ToString(r.RepositoryArn),
		RegistryID:    aws.ToString(r.RegistryId),
		CreatedAt:     aws.ToTime(r.CreatedAt),
		TagMutability: string(r.ImageTagMutability),
	}
	if repo.TagMutability == "" {
		repo.TagMutability = Mutable
	}
	for _, f := range r.ImageTagMutabilityExclusionFilters {
		if f.Filter != nil {
			repo.MutabilityExclusions = append(repo.MutabilityExclusions, *f.Filter)
		}
	}
	if r.ImageScanningConfiguration != nil {
		repo.ScanOnPush = r.ImageScanningConfiguration.ScanOnPush
	}
	if r.EncryptionConfiguration != nil {
		repo.EncryptionType = string(r.EncryptionConfiguration.EncryptionType)
		repo.KMSKey = aws.ToString(r.EncryptionConfiguration.KmsKey)
	}
	return repo
}
