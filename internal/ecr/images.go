package ecr

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"golang.org/x/sync/errgroup"

	"github.com/registry-actions/registry/internal/report"
)

const (
	opDescribeImages   = "DescribeImages"
	opBatchGetImage    = "BatchGetImage"
	opBatchDeleteImage = "BatchDeleteImage"

	// API limits: DescribeImages pages hold at most 1000 images, the batch
	// calls take at most 100 image IDs.
	describeImagesPageSize = 1000
	batchSize              = 100
	// Concurrent BatchGetImage calls: enough to hide latency, few enough not
	// to provoke throttling (BatchGetImage's default quota is in the
	// thousands per second, the retryer absorbs bursts).
	manifestFetchConcurrency = 4
)

// Image status values (DescribeImages' imageStatus).
const (
	StatusActive     = "ACTIVE"
	StatusArchived   = "ARCHIVED"
	StatusActivating = "ACTIVATING"
	StatusAny        = "ANY" // filter only: every status
)

// Image is one image (manifest) of a repository, as DescribeImages reports it.
type Image struct {
	Digest    string
	Tags      []string
	PushedAt  time.Time
	SizeBytes int64
	// LastPulledAt is ECR's last recorded pull; zero when never pulled.
	LastPulledAt time.Time
	// ManifestMediaType is the manifest's media type, e.g. an OCI index.
	ManifestMediaType string
	// ArtifactMediaType is the config media type for artifacts (signatures,
	// SBOMs), the image config type otherwise.
	ArtifactMediaType string
	// SubjectDigest is the OCI 1.1 subject of a referrer (signature,
	// attestation), "" for ordinary images.
	SubjectDigest string
	// Status is ACTIVE, ARCHIVED or ACTIVATING (storage class lifecycle).
	Status          string
	LastArchivedAt  time.Time
	LastActivatedAt time.Time
	// ScanStatus is the status of the image's latest scan, "" when none.
	ScanStatus string
}

// ListImages returns every ACTIVE image of a repository (DescribeImages, all
// pages of up to 1000 images).
func (c *Client) ListImages(ctx context.Context, repo string) ([]Image, error) {
	return c.listImages(ctx, repo, "")
}

// ListImagesByStatus is ListImages for a given image status: StatusActive,
// StatusArchived, StatusActivating or StatusAny (a lifecycle engine that
// honours archive rules needs StatusAny).
func (c *Client) ListImagesByStatus(ctx context.Context, repo, status string) ([]Image, error) {
	switch status {
	case StatusActive, StatusArchived, StatusActivating, StatusAny:
	default:
		return nil, fmt.Errorf("list ECR images of %q: unknown image status %q (want ACTIVE, ARCHIVED, ACTIVATING or ANY)", repo, status)
	}
	return c.listImages(ctx, repo, status)
}

func (c *Client) listImages(ctx context.Context, repo, status string) ([]Image, error) {
	in := &ecr.DescribeImagesInput{
		RegistryId:     c.registry(),
		RepositoryName: aws.String(repo),
		MaxResults:     aws.Int32(describeImagesPageSize),
	}
	if status != "" {
		in.Filter = &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilter(status)}
	}
	var images []Image
	pages := ecr.NewDescribeImagesPaginator(c.api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, c.mapError(opDescribeImages, repo, err)
		}
		for _, d := range page.ImageDetails {
			images = append(images, imageFrom(d))
		}
	}
	return images, nil
}

func imageFrom(d types.ImageDetail) Image {
	img := Image{
		Digest:            aws.ToString(d.ImageDigest),
		Tags:              d.ImageTags,
		PushedAt:          aws.ToTime(d.ImagePushedAt),
		SizeBytes:         aws.ToInt64(d.ImageSizeInBytes),
		LastPulledAt:      aws.ToTime(d.LastRecordedPullTime),
		ManifestMediaType: aws.ToString(d.ImageManifestMediaType),
		ArtifactMediaType: aws.ToString(d.ArtifactMediaType),
		SubjectDigest:     aws.ToString(d.SubjectManifestDigest),
		Status:            string(d.ImageStatus),
		LastArchivedAt:    aws.ToTime(d.LastArchivedAt),
		LastActivatedAt:   aws.ToTime(d.LastActivatedAt),
	}
	if img.Status == "" {
		img.Status = StatusActive
	}
	if d.ImageScanStatus != nil {
		img.ScanStatus = string(d.ImageScanStatus.Status)
	}
	return img
}

// manifestMediaTypes are accepted by GetManifests so that ECR returns every
// manifest as stored instead of converting it.
var manifestMediaTypes = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
}

// Manifest is a manifest's raw bytes as stored in the registry.
type Manifest struct {
	Digest    string
	MediaType string
	Body      []byte
}

// Failure is one image a batch call could not process.
type Failure struct {
	Digest string
	Code   string // ECR failure code, e.g. "ImageReferencedByManifestList"
	Reason string
}

// GetManifests fetches the manifests of many images with BatchGetImage, 100
// per call and a few calls at a time, so that a cleaner can map indexes to
// their children and subjects to their referrers without one registry GET per
// manifest. Images ECR could not return (e.g. deleted meanwhile) are listed in
// failed; err is for calls that failed as a whole.
func (c *Client) GetManifests(ctx context.Context, repo string, digests []string) (manifests map[string]Manifest, failed []Failure, err error) {
	digests = unique(digests)
	manifests = make(map[string]Manifest, len(digests))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(manifestFetchConcurrency)
	for _, batch := range batches(digests, batchSize) {
		g.Go(func() error {
			out, err := c.api.BatchGetImage(gctx, &ecr.BatchGetImageInput{
				RegistryId:         c.registry(),
				RepositoryName:     aws.String(repo),
				ImageIds:           imageIDs(batch),
				AcceptedMediaTypes: manifestMediaTypes,
			})
			if err != nil {
				return c.mapError(opBatchGetImage, repo, err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, img := range out.Images {
				if img.ImageId == nil || img.ImageId.ImageDigest == nil {
					continue
				}
				body := []byte(aws.ToString(img.ImageManifest))
				mediaType := aws.ToString(img.ImageManifestMediaType)
				if mediaType == "" {
					mediaType = sniffMediaType(body)
				}
				d := *img.ImageId.ImageDigest
				manifests[d] = Manifest{Digest: d, MediaType: mediaType, Body: body}
			}
			failed = append(failed, failuresFrom(out.Failures)...)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return manifests, failed, nil
}

// sniffMediaType reads the mediaType field every OCI and Docker v2 manifest
// carries, for the rare response without imageManifestMediaType.
func sniffMediaType(body []byte) string {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	return m.MediaType
}

// DeleteResult is the outcome of DeleteImages.
type DeleteResult struct {
	Deleted []string  // digests ECR deleted
	Failed  []Failure // images ECR refused, one entry each
	// NotAttempted are digests never sent because a call failed as a whole
	// (the returned error says why). Re-running converges: deleted images no
	// longer show up in listings.
	NotAttempted []string
}

// DeleteImages deletes images by digest with BatchDeleteImage, 100 per call,
// in the given order. ECR refuses to delete a platform manifest while an index
// still references it (ImageReferencedByManifestList); such images are retried
// once after the other batches, so that an index and its children may be
// passed in any order. Per-image refusals are reported in Failed, not as err.
func (c *Client) DeleteImages(ctx context.Context, repo string, digests []string) (DeleteResult, error) {
	var res DeleteResult
	digests = unique(digests)
	pending := digests
	for pass := 0; pass < 2 && len(pending) > 0; pass++ {
		var referenced []Failure
		var failures []Failure
		deletedThisPass := 0
		chunks := batches(pending, batchSize)
		for i, batch := range chunks {
			out, err := c.api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{
				RegistryId:     c.registry(),
				RepositoryName: aws.String(repo),
				ImageIds:       imageIDs(batch),
			})
			if err != nil {
				for _, rest := range chunks[i:] {
					res.NotAttempted = append(res.NotAttempted, rest...)
				}
				res.Failed = append(res.Failed, failures...)
				res.Failed = append(res.Failed, referenced...)
				return res, c.mapError(opBatchDeleteImage, repo, err)
			}
			seen := map[string]bool{}
			for _, id := range out.ImageIds {
				d := aws.ToString(id.ImageDigest)
				if d != "" && !seen[d] {
					seen[d] = true
					res.Deleted = append(res.Deleted, d)
					deletedThisPass++
				}
			}
			for _, f := range failuresFrom(out.Failures) {
				if f.Code == string(types.ImageFailureCodeImageReferencedByManifestList) && pass == 0 {
					referenced = append(referenced, f)
				} else {
					failures = append(failures, f)
				}
			}
		}
		res.Failed = append(res.Failed, failures...)
		pending = nil
		if deletedThisPass == 0 {
			// Nothing changed, so a retry would be refused the same way.
			res.Failed = append(res.Failed, referenced...)
			break
		}
		for _, f := range referenced {
			pending = append(pending, f.Digest)
		}
	}
	return res, nil
}

func failuresFrom(fs []types.ImageFailure) []Failure {
	out := make([]Failure, 0, len(fs))
	for _, f := range fs {
		var d string
		if f.ImageId != nil {
			d = aws.ToString(f.ImageId.ImageDigest)
			if d == "" {
				d = aws.ToString(f.ImageId.ImageTag)
			}
		}
		out = append(out, Failure{Digest: d, Code: string(f.FailureCode), Reason: report.OneLine(aws.ToString(f.FailureReason))})
	}
	return out
}

func imageIDs(digests []string) []types.ImageIdentifier {
	ids := make([]types.ImageIdentifier, len(digests))
	for i, d := range digests {
		ids[i] = types.ImageIdentifier{ImageDigest: aws.String(d)}
	}
	return ids
}

func batches(items []string, size int) [][]string {
	var out [][]string
	for len(items) > size {
		out = append(out, items[:size:size])
		items = items[size:]
	}
	if len(items) > 0 {
		out = append(out, items)
	}
	return out
}

func unique(items []string) []string {
	seen := make(map[string]bool, len(items))
	out := make([]string, 0, len(items))
	for _, s := range items {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

const opGetDownloadURLForLayer = "GetDownloadUrlForLayer"

// maxBlobBytes bounds Blob: it reads small blobs (signature payloads,
// attestation envelopes), never layers of images.
const maxBlobBytes = 4 << 20

// Blob reads a small blob of a repository through the ECR API
// (GetDownloadUrlForLayer, then the pre-signed URL it returns), checking its
// digest, so that a cleaner can read what a signature says without registry
// credentials.
func (c *Client) Blob(ctx context.Context, repo, digest string) ([]byte, error) {
	out, err := c.api.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{
		RegistryId:     c.registry(),
		RepositoryName: aws.String(repo),
		LayerDigest:    aws.String(digest),
	})
	if err != nil {
		return nil, c.mapError(opGetDownloadURLForLayer, repo, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, aws.ToString(out.DownloadUrl), nil)
	if err != nil {
		return nil, fmt.Errorf("ECR blob %s of %q: %v", digest, repo, err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("ECR blob %s of %q: %s", digest, repo, report.OneLine(unwrapURL(err).Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ECR blob %s of %q: HTTP %d from its download URL", digest, repo, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBlobBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ECR blob %s of %q: %v", digest, repo, err)
	}
	if len(data) > maxBlobBytes {
		return nil, fmt.Errorf("ECR blob %s of %q is larger than %d bytes", digest, repo, maxBlobBytes)
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(data)); got != digest {
		return nil, fmt.Errorf("ECR blob %s of %q: the download has digest %s", digest, repo, got)
	}
	return data, nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
