package fakeecr

import (
	"strconv"
	"time"
)

// Wire shapes of the awsJson1_1 protocol: member names as in ECR's model,
// timestamps as epoch seconds (fractional), absent members omitted.

type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	t := time.Time(e)
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)), nil
}

// ts returns nil for the zero time so that the member is omitted.
func ts(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

type wireError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

type imageIdentifier struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

type imageFailure struct {
	ImageID       imageIdentifier `json:"imageId"`
	FailureCode   string          `json:"failureCode"`
	FailureReason string          `json:"failureReason"`
}

type wireRepository struct {
	RepositoryArn                      string                `json:"repositoryArn"`
	RegistryID                         string                `json:"registryId"`
	RepositoryName                     string                `json:"repositoryName"`
	RepositoryURI                      string                `json:"repositoryUri"`
	CreatedAt                          *epoch                `json:"createdAt,omitempty"`
	ImageTagMutability                 string                `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []exclusionFilter     `json:"imageTagMutabilityExclusionFilters,omitempty"`
	ImageScanningConfiguration         scanningConfiguration `json:"imageScanningConfiguration"`
	EncryptionConfiguration            encryption            `json:"encryptionConfiguration"`
}

type exclusionFilter struct {
	FilterType string `json:"filterType"`
	Filter     string `json:"filter"`
}

type scanningConfiguration struct {
	ScanOnPush bool `json:"scanOnPush"`
}

type encryption struct {
	EncryptionType string `json:"encryptionType"`
	KMSKey         string `json:"kmsKey,omitempty"`
}

type imageDetail struct {
	RegistryID             string           `json:"registryId"`
	RepositoryName         string           `json:"repositoryName"`
	ImageDigest            string           `json:"imageDigest"`
	ImageTags              []string         `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64            `json:"imageSizeInBytes"`
	ImagePushedAt          *epoch           `json:"imagePushedAt,omitempty"`
	ImageScanStatus        *imageScanStatus `json:"imageScanStatus,omitempty"`
	ImageManifestMediaType string           `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType      string           `json:"artifactMediaType,omitempty"`
	LastRecordedPullTime   *epoch           `json:"lastRecordedPullTime,omitempty"`
	SubjectManifestDigest  string           `json:"subjectManifestDigest,omitempty"`
	ImageStatus            string           `json:"imageStatus,omitempty"`
	LastArchivedAt         *epoch           `json:"lastArchivedAt,omitempty"`
	LastActivatedAt        *epoch           `json:"lastActivatedAt,omitempty"`
}

type imageScanStatus struct {
	Status      string `json:"status"`
	Description string `json:"description,omitempty"`
}

type wireImage struct {
	RegistryID             string          `json:"registryId"`
	RepositoryName         string          `json:"repositoryName"`
	ImageID                imageIdentifier `json:"imageId"`
	ImageManifest          string          `json:"imageManifest"`
	ImageManifestMediaType string          `json:"imageManifestMediaType,omitempty"`
}

type previewResult struct {
	ImageTags           []string    `json:"imageTags,omitempty"`
	ImageDigest         string      `json:"imageDigest"`
	ImagePushedAt       *epoch      `json:"imagePushedAt,omitempty"`
	Action              previewRule `json:"action"`
	AppliedRulePriority int         `json:"appliedRulePriority"`
	StorageClass        string      `json:"storageClass,omitempty"`
}

type previewRule struct {
	Type               string `json:"type"`
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
}

type imageScanFindings struct {
	ImageScanCompletedAt         *epoch            `json:"imageScanCompletedAt,omitempty"`
	VulnerabilitySourceUpdatedAt *epoch            `json:"vulnerabilitySourceUpdatedAt,omitempty"`
	FindingSeverityCounts        map[string]int    `json:"findingSeverityCounts,omitempty"`
	Findings                     []basicFinding    `json:"findings,omitempty"`
	EnhancedFindings             []enhancedFinding `json:"enhancedFindings,omitempty"`
}

type attribute struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

type basicFinding struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	URI         string      `json:"uri,omitempty"`
	Severity    string      `json:"severity"`
	Attributes  []attribute `json:"attributes,omitempty"`
}

type enhancedFinding struct {
	AwsAccountID                string                      `json:"awsAccountId"`
	Description                 string                      `json:"description,omitempty"`
	FindingArn                  string                      `json:"findingArn"`
	FirstObservedAt             *epoch                      `json:"firstObservedAt,omitempty"`
	LastObservedAt              *epoch                      `json:"lastObservedAt,omitempty"`
	PackageVulnerabilityDetails packageVulnerabilityDetails `json:"packageVulnerabilityDetails"`
	Remediation                 *remediation                `json:"remediation,omitempty"`
	Score                       float64                     `json:"score,omitempty"`
	ScoreDetails                *scoreDetails               `json:"scoreDetails,omitempty"`
	Severity                    string                      `json:"severity"`
	Status                      string                      `json:"status"`
	Title                       string                      `json:"title,omitempty"`
	Type                        string                      `json:"type"`
	UpdatedAt                   *epoch                      `json:"updatedAt,omitempty"`
	FixAvailable                string                      `json:"fixAvailable,omitempty"`
}

type packageVulnerabilityDetails struct {
	Cvss               []cvssScore         `json:"cvss,omitempty"`
	ReferenceUrls      []string            `json:"referenceUrls,omitempty"`
	Source             string              `json:"source,omitempty"`
	SourceURL          string              `json:"sourceUrl,omitempty"`
	VulnerabilityID    string              `json:"vulnerabilityId"`
	VulnerablePackages []vulnerablePackage `json:"vulnerablePackages,omitempty"`
}

type cvssScore struct {
	BaseScore     float64 `json:"baseScore"`
	ScoringVector string  `json:"scoringVector"`
	Source        string  `json:"source"`
	Version       string  `json:"version"`
}

type vulnerablePackage struct {
	Arch           string `json:"arch,omitempty"`
	Epoch          int    `json:"epoch,omitempty"`
	FilePath       string `json:"filePath,omitempty"`
	Name           string `json:"name"`
	PackageManager string `json:"packageManager,omitempty"`
	Release        string `json:"release,omitempty"`
	Version        string `json:"version"`
	FixedInVersion string `json:"fixedInVersion,omitempty"`
}

type remediation struct {
	Recommendation recommendation `json:"recommendation"`
}

type recommendation struct {
	URL  string `json:"url,omitempty"`
	Text string `json:"text,omitempty"`
}

type scoreDetails struct {
	Cvss cvssScoreDetails `json:"cvss"`
}

type cvssScoreDetails struct {
	Score         float64 `json:"score"`
	ScoringVector string  `json:"scoringVector"`
	ScoreSource   string  `json:"scoreSource,omitempty"`
	Version       string  `json:"version,omitempty"`
}
