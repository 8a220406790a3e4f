package fakeecr

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"
)

// Repository seeds a repository. Zero values mean ECR's defaults: MUTABLE,
// scan on push off, AES256 encryption.
type Repository struct {
	Name          string
	TagMutability string // MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION
	// MutabilityExclusions are WILDCARD filters for the *_WITH_EXCLUSION settings.
	MutabilityExclusions []string
	ScanOnPush           bool
	EncryptionType       string // AES256 (default), KMS, KMS_DSSE
	KMSKey               string
	CreatedAt            time.Time
}

// Image seeds an image (one manifest) of a repository.
type Image struct {
	// Digest defaults to the sha256 of Manifest.
	Digest       string
	Tags         []string
	PushedAt     time.Time
	LastPulledAt time.Time
	SizeBytes    int64
	// Manifest is what BatchGetImage returns; MediaType defaults to the
	// manifest's own mediaType field.
	Manifest          []byte
	MediaType         string
	ArtifactMediaType string
	// SubjectDigest marks an OCI 1.1 referrer (signature, attestation).
	SubjectDigest string
	// Status is ACTIVE (default), ARCHIVED or ACTIVATING.
	Status          string
	LastArchivedAt  time.Time
	LastActivatedAt time.Time
	// Blobs are blobs of the image served through GetDownloadUrlForLayer
	// (a signature's payload), by digest.
	Blobs map[string][]byte
}

// Preview scripts the lifecycle policy preview of a repository. The fake does
// not evaluate policies: the test decides what AWS would answer.
type Preview struct {
	// Statuses are answered by successive GetLifecyclePolicyPreview polls
	// (requests without nextToken), across StartLifecyclePolicyPreview calls;
	// the last one repeats. E.g. IN_PROGRESS, EXPIRED, IN_PROGRESS, COMPLETE
	// expires the first preview and completes the restarted one.
	// Default: COMPLETE.
	Statuses []string
	// Results are returned, paginated, while the status is COMPLETE.
	Results []PreviewResult
}

// PreviewResult is one image of a scripted preview.
type PreviewResult struct {
	Digest             string
	Tags               []string
	PushedAt           time.Time
	RulePriority       int
	Action             string // EXPIRE (default) or TRANSITION
	StorageClass       string // STANDARD (default) or ARCHIVE
	TargetStorageClass string
}

// Scan scripts an image's scan as DescribeImageScanFindings reports it.
type Scan struct {
	// Statuses are answered by successive DescribeImageScanFindings calls
	// (requests without nextToken); the last one repeats. Besides ECR's
	// statuses (PENDING, IN_PROGRESS, COMPLETE, ACTIVE, FAILED,
	// UNSUPPORTED_IMAGE, ...), SCAN_NOT_FOUND answers ScanNotFoundException.
	// Default: COMPLETE.
	Statuses []string
	// Description accompanies the status (e.g. why a scan FAILED).
	Description                  string
	CompletedAt                  time.Time
	VulnerabilitySourceUpdatedAt time.Time
	Findings                     []BasicFinding
	Enhanced                     []EnhancedFinding
}

// BasicFinding is a finding of ECR's basic scanning.
type BasicFinding struct {
	Name        string // the CVE ID
	Description string
	URI         string
	Severity    string // CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED
	// Attributes such as package_name, package_version, CVSS3_SCORE, CVSS3_VECTOR.
	Attributes []Attribute
}

// Attribute is a key/value pair of a basic finding.
type Attribute struct{ Key, Value string }

// EnhancedFinding is a finding of enhanced scanning (Amazon Inspector).
type EnhancedFinding struct {
	VulnerabilityID string
	Severity        string
	Title           string
	Description     string
	Status          string // ACTIVE (default), SUPPRESSED, CLOSED
	Score           float64
	CVSSVector      string
	SourceURL       string
	ReferenceURLs   []string
	FixAvailable    string // YES, NO, PARTIAL
	Packages        []VulnerablePackage
	FirstObservedAt time.Time
}

// VulnerablePackage is a package an enhanced finding affects.
type VulnerablePackage struct {
	Name, Version, Release string
	Epoch                  int
	FixedInVersion         string
	PackageManager         string
	FilePath               string
	Arch                   string
}

type repository struct {
	Repository
	images     []*Image
	policy     *string
	preview    *previewState
	scans      map[string]*scanState
	referenced map[string]bool // digests a test marked as referenced by a manifest list
}

type previewState struct {
	script  Preview
	cursor  int
	started bool
	text    string
	status  string // status answered by the last poll
	starts  []string
}

type scanState struct {
	script Scan
	cursor int
	status string
}

func (r *repository) image(digest string) *Image {
	for _, img := range r.images {
		if img.Digest == digest {
			return img
		}
	}
	return nil
}

func (r *repository) imageByTag(tag string) *Image {
	for _, img := range r.images {
		if slices.Contains(img.Tags, tag) {
			return img
		}
	}
	return nil
}

func (r *repository) remove(digest string) {
	r.images = slices.DeleteFunc(r.images, func(img *Image) bool { return img.Digest == digest })
}

// referencingIndex returns the digest of an image whose manifest is an index
// listing digest, or "" when none.
func (r *repository) referencingIndex(digest string) string {
	if r.referenced[digest] {
		return "marked"
	}
	for _, img := range r.images {
		if img.Digest == digest || len(img.Manifest) == 0 {
			continue
		}
		var idx struct {
			Manifests []struct {
				Digest string `json:"digest"`
			} `json:"manifests"`
		}
		if json.Unmarshal(img.Manifest, &idx) != nil {
			continue
		}
		for _, m := range idx.Manifests {
			if m.Digest == digest {
				return img.Digest
			}
		}
	}
	return ""
}

func normaliseImage(img Image) Image {
	if img.Digest == "" && len(img.Manifest) > 0 {
		sum := sha256.Sum256(img.Manifest)
		img.Digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	if img.MediaType == "" && len(img.Manifest) > 0 {
		var m struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(img.Manifest, &m) == nil {
			img.MediaType = m.MediaType
		}
	}
	if img.Status == "" {
		img.Status = "ACTIVE"
	}
	if img.PushedAt.IsZero() {
		img.PushedAt = time.Now()
	}
	img.Tags = slices.Clone(img.Tags)
	img.Manifest = slices.Clone(img.Manifest)
	return img
}

func cloneImage(img *Image) Image {
	c := *img
	c.Tags = slices.Clone(img.Tags)
	c.Manifest = slices.Clone(img.Manifest)
	return c
}
