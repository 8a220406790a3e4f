package fakeecr

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Amazon Inspector (inspector2) operations, served on the same endpoint as
// ECR's (AWS_ENDPOINT_URL_INSPECTOR2): its restJson1 protocol is told apart
// by method and path, requests are signed for service "inspector2", errors
// carry the HTTP status Inspector uses and X-Amzn-ErrorType.
//
//   - ListFindings (POST /findings/list): filterCriteria awsAccountId,
//     resourceType, findingType, findingStatus, ecrImageRepositoryName,
//     ecrImageTags, ecrImageHash and severity with EQUALS (NOT_EQUALS and
//     PREFIX too), values of one criterion OR'ed, criteria AND'ed;
//     maxResults 1–100 (default 100), nextToken paging.

// OpListFindings counts Inspector's ListFindings (Count, Calls, FailNext).
const OpListFindings = "inspector2.ListFindings"

var inspectorRoutes = map[string]string{
	http.MethodPost + " /findings/list": OpListFindings,
}

// InspectorFinding is one Inspector finding about one ECR image.
type InspectorFinding struct {
	Repository   string
	Digest       string
	Tags         []string
	Architecture string // e.g. amd64
	Platform     string // the OS, e.g. DEBIAN_12
	PushedAt     time.Time
	// Type defaults to PACKAGE_VULNERABILITY; ResourceType to
	// AWS_ECR_CONTAINER_IMAGE.
	Type         string
	ResourceType string
	EnhancedFinding
}

// AddInspectorFindings seeds Inspector's findings, in listing order.
func (s *Server) AddInspectorFindings(fs ...InspectorFinding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		f.Tags = slices.Clone(f.Tags)
		s.inspector = append(s.inspector, f)
	}
}

// routeInspector handles an Inspector request; false when it is not one.
func (s *Server) routeInspector(w http.ResponseWriter, r *http.Request) bool {
	op, ok := inspectorRoutes[r.Method+" "+r.URL.Path]
	if !ok {
		return false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeRESTError(w, &apiError{status: http.StatusBadRequest, code: "ValidationException", msg: "cannot read body"})
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[op]++
	s.retrying = !firstAttempt(r)
	if !s.retrying {
		s.calls[op]++
	}
	s.bodies[op] = append(s.bodies[op], body)
	if apiErr := s.checkSignatureFor(r, "inspector2"); apiErr != nil {
		apiErr.status = http.StatusForbidden
		writeRESTError(w, apiErr)
		return true
	}
	if f := s.takeFault(op); f != nil {
		writeRESTError(w, &apiError{status: f.Status, code: f.Code, msg: f.Message})
		return true
	}
	out, apiErr := s.listFindings(body)
	if apiErr != nil {
		writeRESTError(w, apiErr)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", fmt.Sprintf("fake-%s-%d", op, s.counts[op]))
	if err := json.NewEncoder(w).Encode(out); err != nil {
		s.t.Errorf("fakeecr: encode %s response: %v", op, err)
	}
	return true
}

func writeRESTError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": e.msg})
}

type stringFilter struct {
	Comparison string `json:"comparison"`
	Value      string `json:"value"`
}

// matches applies one criterion: no filters match everything; EQUALS and
// PREFIX filters are OR'ed; a NOT_EQUALS filter excludes.
func matches(filters []stringFilter, values ...string) bool {
	positive, hit := false, false
	for _, f := range filters {
		switch f.Comparison {
		case "NOT_EQUALS":
			if slices.Contains(values, f.Value) {
				return false
			}
		case "PREFIX":
			positive = true
			hit = hit || slices.ContainsFunc(values, func(v string) bool { return strings.HasPrefix(v, f.Value) })
		default:
			positive = true
			hit = hit || slices.Contains(values, f.Value)
		}
	}
	return !positive || hit
}

type wireInspectorFinding struct {
	AwsAccountID                string                      `json:"awsAccountId"`
	Description                 string                      `json:"description,omitempty"`
	FindingArn                  string                      `json:"findingArn"`
	FirstObservedAt             *epoch                      `json:"firstObservedAt,omitempty"`
	LastObservedAt              *epoch                      `json:"lastObservedAt,omitempty"`
	UpdatedAt                   *epoch                      `json:"updatedAt,omitempty"`
	PackageVulnerabilityDetails packageVulnerabilityDetails `json:"packageVulnerabilityDetails"`
	Remediation                 *remediation                `json:"remediation,omitempty"`
	Resources                   []wireResource              `json:"resources"`
	Severity                    string                      `json:"severity"`
	Status                      string                      `json:"status"`
	Title                       string                      `json:"title,omitempty"`
	Type                        string                      `json:"type"`
	FixAvailable                string                      `json:"fixAvailable,omitempty"`
	InspectorScore              float64                     `json:"inspectorScore,omitempty"`
	InspectorScoreDetails       *inspectorScoreDetails      `json:"inspectorScoreDetails,omitempty"`
}

type inspectorScoreDetails struct {
	AdjustedCvss cvssScoreDetails `json:"adjustedCvss"`
}

type wireResource struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Region  string          `json:"region"`
	Details resourceDetails `json:"details"`
}

type resourceDetails struct {
	AwsEcrContainerImage ecrImageDetails `json:"awsEcrContainerImage"`
}

type ecrImageDetails struct {
	Registry       string   `json:"registry"`
	RepositoryName string   `json:"repositoryName"`
	ImageHash      string   `json:"imageHash"`
	ImageTags      []string `json:"imageTags,omitempty"`
	Architecture   string   `json:"architecture,omitempty"`
	Platform       string   `json:"platform,omitempty"`
	PushedAt       *epoch   `json:"pushedAt,omitempty"`
}

func (s *Server) listFindings(body []byte) (any, *apiError) {
	var in struct {
		FilterCriteria map[string][]stringFilter `json:"filterCriteria"`
		MaxResults     *int                      `json:"maxResults"`
		NextToken      string                    `json:"nextToken"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{status: http.StatusBadRequest, code: "ValidationException", msg: "request body is not valid JSON"}
	}
	for k := range in.FilterCriteria {
		switch k {
		case "awsAccountId", "resourceType", "findingType", "findingStatus", "ecrImageRepositoryName", "ecrImageTags", "ecrImageHash", "severity":
		default:
			return nil, &apiError{status: http.StatusBadRequest, code: "ValidationException", msg: fmt.Sprintf("filter criterion %s is not supported by this server", k)}
		}
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 100) {
		return nil, &apiError{status: http.StatusBadRequest, code: "ValidationException", msg: "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"}
	}
	var selected []wireInspectorFinding
	for i, f := range s.inspector {
		typ, res, status := cmp.Or(f.Type, "PACKAGE_VULNERABILITY"), cmp.Or(f.ResourceType, "AWS_ECR_CONTAINER_IMAGE"), cmp.Or(f.Status, "ACTIVE")
		c := in.FilterCriteria
		if !matches(c["awsAccountId"], s.registryID) || !matches(c["resourceType"], res) || !matches(c["findingType"], typ) ||
			!matches(c["findingStatus"], status) || !matches(c["ecrImageRepositoryName"], f.Repository) ||
			!matches(c["ecrImageTags"], f.Tags...) || !matches(c["ecrImageHash"], f.Digest) || !matches(c["severity"], f.Severity) {
			continue
		}
		selected = append(selected, s.wireInspector(i, f, typ, res, status))
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "findings-"))
		if err != nil || n < 0 || n > len(selected) {
			return nil, &apiError{status: http.StatusBadRequest, code: "ValidationException", msg: "invalid nextToken"}
		}
		start = n
	}
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	end := min(start+size, len(selected))
	out := map[string]any{"findings": append([]wireInspectorFinding{}, selected[start:end]...)}
	if end < len(selected) {
		out["nextToken"] = fmt.Sprintf("findings-%d", end)
	}
	return out, nil
}

func (s *Server) wireInspector(i int, f InspectorFinding, typ, resType, status string) wireInspectorFinding {
	w := wireInspectorFinding{
		AwsAccountID:    s.registryID,
		Description:     f.Description,
		FindingArn:      fmt.Sprintf("arn:aws:inspector2:%s:%s:finding/%s-%d", s.region, s.registryID, shortDigest(f.Digest), i),
		FirstObservedAt: ts(f.FirstObservedAt),
		Severity:        f.Severity,
		Status:          status,
		Title:           f.Title,
		Type:            typ,
		FixAvailable:    f.FixAvailable,
		InspectorScore:  f.Score,
		PackageVulnerabilityDetails: packageVulnerabilityDetails{
			ReferenceUrls: f.ReferenceURLs, Source: "NVD", SourceURL: f.SourceURL, VulnerabilityID: f.VulnerabilityID,
		},
		Resources: []wireResource{{
			ID:     fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s/%s", s.region, s.registryID, f.Repository, f.Digest),
			Type:   resType,
			Region: s.region,
			Details: resourceDetails{AwsEcrContainerImage: ecrImageDetails{
				Registry: s.registryID, RepositoryName: f.Repository, ImageHash: f.Digest, ImageTags: f.Tags,
				Architecture: f.Architecture, Platform: f.Platform, PushedAt: ts(f.PushedAt),
			}},
		}},
	}
	if f.CVSSVector != "" {
		w.InspectorScoreDetails = &inspectorScoreDetails{AdjustedCvss: cvssScoreDetails{Score: f.Score, ScoringVector: f.CVSSVector, ScoreSource: "NVD", Version: "3.1"}}
		w.PackageVulnerabilityDetails.Cvss = []cvssScore{{BaseScore: f.Score, ScoringVector: f.CVSSVector, Source: "NVD", Version: "3.1"}}
	}
	w.Remediation, w.PackageVulnerabilityDetails.VulnerablePackages = f.wireRemediationAndPackages()
	return w
}
