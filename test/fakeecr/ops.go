package fakeecr

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	repositoryNamePattern = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	digestPattern         = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return clientError("SerializationException", "cannot decode request: %v", err)
	}
	return nil
}

func (s *Server) repo(registryID, name string) (*repository, *apiError) {
	if name == "" {
		return nil, clientError("InvalidParameterException", "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must not be null'")
	}
	if registryID != "" && registryID != s.registryID {
		return nil, clientError("RepositoryNotFoundException", "The repository with name '%s' does not exist in the registry with id '%s'", name, registryID)
	}
	r, ok := s.repos[name]
	if !ok {
		return nil, clientError("RepositoryNotFoundException", "The repository with name '%s' does not exist in the registry with id '%s'", name, s.registryID)
	}
	return r, nil
}

// page slices items for nextToken/maxResults pagination. Tokens are opaque
// to clients; here they encode the offset of the next item.
func page[T any](items []T, token string, maxResults *int, def, limit int, kind string) ([]T, string, *apiError) {
	n := def
	if maxResults != nil {
		n = *maxResults
		if n < 1 || n > limit {
			return nil, "", clientError("InvalidParameterException", "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and %d'", limit)
		}
	}
	start := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		off, cut := strings.CutPrefix(string(raw), kind+":")
		i, convErr := strconv.Atoi(off)
		if err != nil || !cut || convErr != nil || i < 0 || i > len(items) {
			return nil, "", clientError("InvalidParameterException", "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'")
		}
		start = i
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d", kind, end))
	}
	return items[start:end], next, nil
}

// --- GetAuthorizationToken

func (s *Server) getAuthorizationToken(body []byte) (any, *apiError) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	ids := in.RegistryIDs
	if len(ids) == 0 {
		ids = []string{s.registryID}
	}
	type authData struct {
		AuthorizationToken string `json:"authorizationToken"`
		ExpiresAt          *epoch `json:"expiresAt"`
		ProxyEndpoint      string `json:"proxyEndpoint"`
	}
	var data []authData
	for _, id := range ids {
		endpoint := s.proxyEndpoint
		if endpoint == "" {
			endpoint = fmt.Sprintf("https://%s.dkr.ecr.%s.amazonaws.com", id, s.region)
		}
		data = append(data, authData{AuthorizationToken: s.authToken(), ExpiresAt: ts(time.Now().Add(12 * time.Hour)), ProxyEndpoint: endpoint})
	}
	return map[string]any{"authorizationData": data}, nil
}

// --- repositories

func (s *Server) wireRepository(r *repository) wireRepository {
	w := wireRepository{
		RepositoryArn:              fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", s.region, s.registryID, r.Name),
		RegistryID:                 s.registryID,
		RepositoryName:             r.Name,
		RepositoryURI:              s.repositoryURI(r.Name),
		CreatedAt:                  ts(r.CreatedAt),
		ImageTagMutability:         r.TagMutability,
		ImageScanningConfiguration: scanningConfiguration{ScanOnPush: r.ScanOnPush},
		EncryptionConfiguration:    encryption{EncryptionType: r.EncryptionType, KMSKey: r.KMSKey},
	}
	for _, f := range r.MutabilityExclusions {
		w.ImageTagMutabilityExclusionFilters = append(w.ImageTagMutabilityExclusionFilters, exclusionFilter{FilterType: "WILDCARD", Filter: f})
	}
	return w
}

func (s *Server) createRepository(body []byte) (any, *apiError) {
	var in struct {
		RegistryID                         string                `json:"registryId"`
		RepositoryName                     string                `json:"repositoryName"`
		ImageTagMutability                 string                `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []exclusionFilter     `json:"imageTagMutabilityExclusionFilters"`
		ImageScanningConfiguration         scanningConfiguration `json:"imageScanningConfiguration"`
		EncryptionConfiguration            *encryption           `json:"encryptionConfiguration"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if n := len(in.RepositoryName); n < 2 || n > 256 || !repositoryNamePattern.MatchString(in.RepositoryName) {
		return nil, clientError("InvalidParameterException", "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '%s''", repositoryNamePattern)
	}
	if in.RegistryID != "" && in.RegistryID != s.registryID {
		return nil, accessDeniedErr(OpCreateRepository)
	}
	if _, exists := s.repos[in.RepositoryName]; exists {
		return nil, clientError("RepositoryAlreadyExistsException", "The repository with name '%s' already exists in the registry with id '%s'", in.RepositoryName, s.registryID)
	}
	switch in.ImageTagMutability {
	case "", "MUTABLE", "IMMUTABLE":
	case "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION":
		if len(in.ImageTagMutabilityExclusionFilters) == 0 {
			return nil, clientError("InvalidParameterException", "imageTagMutabilityExclusionFilters must be provided with %s", in.ImageTagMutability)
		}
	default:
		return nil, clientError("InvalidParameterException", "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]'")
	}
	repo := Repository{
		Name:          in.RepositoryName,
		TagMutability: in.ImageTagMutability,
		ScanOnPush:    in.ImageScanningConfiguration.ScanOnPush,
	}
	for _, f := range in.ImageTagMutabilityExclusionFilters {
		repo.MutabilityExclusions = append(repo.MutabilityExclusions, f.Filter)
	}
	if e := in.EncryptionConfiguration; e != nil {
		switch e.EncryptionType {
		case "AES256":
			if e.KMSKey != "" {
				return nil, clientError("InvalidParameterException", "Invalid parameter: kmsKey must not be set with encryption type AES256")
			}
		case "KMS", "KMS_DSSE":
		default:
			return nil, clientError("InvalidParameterException", "Invalid parameter at 'encryptionType' failed to satisfy constraint: 'Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]'")
		}
		repo.EncryptionType, repo.KMSKey = e.EncryptionType, e.KMSKey
		if repo.KMSKey == "" && e.EncryptionType != "AES256" {
			repo.KMSKey = fmt.Sprintf("arn:aws:kms:%s:%s:alias/aws/ecr", s.region, s.registryID)
		}
	}
	r := s.addRepositoryLocked(repo)
	return map[string]any{"repository": s.wireRepository(r)}, nil
}

// accessDeniedErr is the handler form of AccessDenied.
func accessDeniedErr(op string) *apiError {
	f := AccessDenied(op)
	return &apiError{status: f.Status, code: f.Code, msg: f.Message}
}

func (s *Server) describeRepositories(body []byte) (any, *apiError) {
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       string   `json:"nextToken"`
		MaxResults      *int     `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var repos []wireRepository
	if len(in.RepositoryNames) > 0 {
		if in.MaxResults != nil || in.NextToken != "" {
			return nil, clientError("InvalidParameterException", "maxResults and nextToken cannot be used with repositoryNames")
		}
		for _, name := range in.RepositoryNames {
			r, err := s.repo(in.RegistryID, name)
			if err != nil {
				return nil, err
			}
			repos = append(repos, s.wireRepository(r))
		}
		return map[string]any{"repositories": repos}, nil
	}
	for _, name := range s.repoOrder {
		if r, ok := s.repos[name]; ok {
			repos = append(repos, s.wireRepository(r))
		}
	}
	items, next, err := page(repos, in.NextToken, in.MaxResults, 100, 1000, "repositories")
	if err != nil {
		return nil, err
	}
	out := map[string]any{"repositories": items}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// --- images

func (s *Server) imageDetail(r *repository, img *Image) imageDetail {
	d := imageDetail{
		RegistryID:             s.registryID,
		RepositoryName:         r.Name,
		ImageDigest:            img.Digest,
		ImageTags:              img.Tags,
		ImageSizeInBytes:       img.SizeBytes,
		ImagePushedAt:          ts(img.PushedAt),
		ImageManifestMediaType: img.MediaType,
		ArtifactMediaType:      img.ArtifactMediaType,
		LastRecordedPullTime:   ts(img.LastPulledAt),
		SubjectManifestDigest:  img.SubjectDigest,
		ImageStatus:            img.Status,
		LastArchivedAt:         ts(img.LastArchivedAt),
		LastActivatedAt:        ts(img.LastActivatedAt),
	}
	if sc, ok := r.scans[img.Digest]; ok {
		status := sc.status
		if status == "" {
			status = "PENDING"
		}
		if status != "SCAN_NOT_FOUND" {
			d.ImageScanStatus = &imageScanStatus{Status: status, Description: sc.script.Description}
		}
	}
	return d
}

type imageIDsRequest struct {
	RegistryID     string            `json:"registryId"`
	RepositoryName string            `json:"repositoryName"`
	ImageIDs       []imageIdentifier `json:"imageIds"`
}

func (s *Server) describeImages(body []byte) (any, *apiError) {
	var in struct {
		imageIDsRequest
		NextToken  string `json:"nextToken"`
		MaxResults *int   `json:"maxResults"`
		Filter     *struct {
			TagStatus   string `json:"tagStatus"`
			ImageStatus string `json:"imageStatus"`
		} `json:"filter"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if len(in.ImageIDs) > 0 {
		if in.MaxResults != nil || in.NextToken != "" || in.Filter != nil {
			return nil, clientError("InvalidParameterException", "maxResults, nextToken and filter cannot be used with imageIds")
		}
		var details []imageDetail
		for _, id := range in.ImageIDs {
			img := s.findImage(r, id)
			if img == nil {
				return nil, clientError("ImageNotFoundException", "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
					orNull(id.ImageDigest), orNull(id.ImageTag), r.Name, s.registryID)
			}
			details = append(details, s.imageDetail(r, img))
		}
		return map[string]any{"imageDetails": details}, nil
	}
	tagStatus, imageStatus := "ANY", "ACTIVE"
	if in.Filter != nil {
		if in.Filter.TagStatus != "" {
			tagStatus = in.Filter.TagStatus
		}
		if in.Filter.ImageStatus != "" {
			imageStatus = in.Filter.ImageStatus
		}
	}
	if !slices.Contains([]string{"TAGGED", "UNTAGGED", "ANY"}, tagStatus) {
		return nil, clientError("InvalidParameterException", "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]'")
	}
	if !slices.Contains([]string{"ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"}, imageStatus) {
		return nil, clientError("InvalidParameterException", "Invalid parameter at 'filter.imageStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]'")
	}
	var matching []imageDetail
	for _, img := range r.images {
		if tagStatus == "TAGGED" && len(img.Tags) == 0 || tagStatus == "UNTAGGED" && len(img.Tags) > 0 {
			continue
		}
		if imageStatus != "ANY" && img.Status != imageStatus {
			continue
		}
		matching = append(matching, s.imageDetail(r, img))
	}
	items, next, err := page(matching, in.NextToken, in.MaxResults, 100, 1000, "images")
	if err != nil {
		return nil, err
	}
	out := map[string]any{"imageDetails": items}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

func (s *Server) findImage(r *repository, id imageIdentifier) *Image {
	if id.ImageDigest != "" {
		img := r.image(id.ImageDigest)
		if img != nil && id.ImageTag != "" && !slices.Contains(img.Tags, id.ImageTag) {
			return nil
		}
		return img
	}
	if id.ImageTag != "" {
		return r.imageByTag(id.ImageTag)
	}
	return nil
}

func checkBatch(ids []imageIdentifier) *apiError {
	if len(ids) == 0 || len(ids) > 100 {
		return clientError("InvalidParameterException", "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length less than or equal to 100 and greater than or equal to 1'")
	}
	return nil
}

// idFailure validates an image identifier as the batch operations do.
func idFailure(id imageIdentifier) *imageFailure {
	switch {
	case id.ImageDigest == "" && id.ImageTag == "":
		return &imageFailure{ImageID: id, FailureCode: "MissingDigestAndTag", FailureReason: "Invalid request parameters: image digest or image tag must be specified"}
	case id.ImageDigest != "" && !digestPattern.MatchString(id.ImageDigest):
		return &imageFailure{ImageID: id, FailureCode: "InvalidImageDigest", FailureReason: "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"}
	}
	return nil
}

func (s *Server) batchGetImage(body []byte) (any, *apiError) {
	var in struct {
		imageIDsRequest
		AcceptedMediaTypes []string `json:"acceptedMediaTypes"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if err := checkBatch(in.ImageIDs); err != nil {
		return nil, err
	}
	images := []wireImage{}
	failures := []imageFailure{}
	for _, id := range in.ImageIDs {
		if f := idFailure(id); f != nil {
			failures = append(failures, *f)
			continue
		}
		img := s.findImage(r, id)
		switch {
		case img == nil:
			failures = append(failures, imageFailure{ImageID: id, FailureCode: "ImageNotFound", FailureReason: "Requested image not found"})
		case len(img.Manifest) == 0:
			failures = append(failures, imageFailure{ImageID: id, FailureCode: "ImageNotFound", FailureReason: "Requested image has no manifest in this fake (seed Image.Manifest)"})
		case len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, img.MediaType):
			failures = append(failures, imageFailure{ImageID: id, FailureCode: "UnsupportedImageType", FailureReason: "Image manifest media type " + img.MediaType + " is not accepted"})
		default:
			wid := imageIdentifier{ImageDigest: img.Digest, ImageTag: id.ImageTag}
			images = append(images, wireImage{RegistryID: s.registryID, RepositoryName: r.Name, ImageID: wid, ImageManifest: string(img.Manifest), ImageManifestMediaType: img.MediaType})
		}
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func (s *Server) batchDeleteImage(body []byte) (any, *apiError) {
	var in imageIDsRequest
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if err := checkBatch(in.ImageIDs); err != nil {
		return nil, err
	}
	deleted := []imageIdentifier{}
	failures := []imageFailure{}
	for _, id := range in.ImageIDs {
		if f := idFailure(id); f != nil {
			failures = append(failures, *f)
			continue
		}
		img := s.findImage(r, id)
		if img == nil {
			code, reason := "ImageNotFound", "Requested image not found"
			if id.ImageDigest != "" && id.ImageTag != "" && r.image(id.ImageDigest) != nil {
				code, reason = "ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag does not map to the given digest"
			}
			failures = append(failures, imageFailure{ImageID: id, FailureCode: code, FailureReason: reason})
			continue
		}
		if id.ImageDigest == "" {
			// By tag: untag; the image goes with its last tag.
			img.Tags = slices.DeleteFunc(img.Tags, func(t string) bool { return t == id.ImageTag })
			deleted = append(deleted, imageIdentifier{ImageDigest: img.Digest, ImageTag: id.ImageTag})
			if len(img.Tags) == 0 && r.referencingIndex(img.Digest) == "" {
				r.remove(img.Digest)
			}
			continue
		}
		if parent := r.referencingIndex(img.Digest); parent != "" {
			failures = append(failures, imageFailure{ImageID: id, FailureCode: "ImageReferencedByManifestList",
				FailureReason: fmt.Sprintf("Requested image referenced by manifest list: [%s]", parent)})
			continue
		}
		if len(img.Tags) == 0 {
			deleted = append(deleted, imageIdentifier{ImageDigest: img.Digest})
		}
		for _, tag := range img.Tags {
			deleted = append(deleted, imageIdentifier{ImageDigest: img.Digest, ImageTag: tag})
		}
		r.remove(img.Digest)
	}
	return map[string]any{"imageIds": deleted, "failures": failures}, nil
}

// --- lifecycle policies

func checkPolicyText(text string) *apiError {
	if n := len(text); n < 100 || n > 30720 {
		return clientError("InvalidParameterException", "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Member must have length between 100 and 30720'")
	}
	if !json.Valid([]byte(text)) {
		return clientError("InvalidParameterException", "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: could not parse JSON'")
	}
	return nil
}

type policyRequest struct {
	RegistryID          string `json:"registryId"`
	RepositoryName      string `json:"repositoryName"`
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
}

func (s *Server) putLifecyclePolicy(body []byte) (any, *apiError) {
	var in policyRequest
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if err := checkPolicyText(in.LifecyclePolicyText); err != nil {
		return nil, err
	}
	text := in.LifecyclePolicyText
	r.policy = &text
	return map[string]any{"registryId": s.registryID, "repositoryName": r.Name, "lifecyclePolicyText": text}, nil
}

func (s *Server) getLifecyclePolicy(body []byte) (any, *apiError) {
	var in policyRequest
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if r.policy == nil {
		return nil, clientError("LifecyclePolicyNotFoundException", "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", r.Name, s.registryID)
	}
	return map[string]any{"registryId": s.registryID, "repositoryName": r.Name, "lifecyclePolicyText": *r.policy}, nil
}

func (s *Server) startLifecyclePolicyPreview(body []byte) (any, *apiError) {
	var in policyRequest
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	text := in.LifecyclePolicyText
	if text == "" {
		if r.policy == nil {
			return nil, clientError("LifecyclePolicyNotFoundException", "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", r.Name, s.registryID)
		}
		text = *r.policy
	}
	if err := checkPolicyText(text); err != nil {
		return nil, err
	}
	if r.preview == nil {
		r.preview = &previewState{}
	}
	p := r.preview
	p.started, p.text, p.status = true, text, "IN_PROGRESS"
	p.starts = append(p.starts, text)
	return map[string]any{"registryId": s.registryID, "repositoryName": r.Name, "lifecyclePolicyText": text, "status": "IN_PROGRESS"}, nil
}

func (s *Server) getLifecyclePolicyPreview(body []byte) (any, *apiError) {
	var in struct {
		imageIDsRequest
		NextToken  string `json:"nextToken"`
		MaxResults *int   `json:"maxResults"`
		Filter     *struct {
			TagStatus string `json:"tagStatus"`
		} `json:"filter"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	p := r.preview
	if p == nil || !p.started {
		return nil, clientError("LifecyclePolicyPreviewNotFoundException", "There is no lifecycle policy preview for the repository with name '%s' in the registry with id '%s'", r.Name, s.registryID)
	}
	// A retried attempt replays the status its failed attempt was given, so a
	// transient connection error does not skip a step of the script.
	if in.NextToken == "" && !s.retrying {
		status := "COMPLETE"
		if n := len(p.script.Statuses); n > 0 {
			status = p.script.Statuses[min(p.cursor, n-1)]
		}
		p.cursor++
		p.status = status
	}
	out := map[string]any{
		"registryId":          s.registryID,
		"repositoryName":      r.Name,
		"lifecyclePolicyText": p.text,
		"status":              p.status,
	}
	if p.status != "COMPLETE" {
		return out, nil
	}
	var results []previewResult
	expiring := 0
	for _, res := range p.script.Results {
		if in.Filter != nil && (in.Filter.TagStatus == "TAGGED" && len(res.Tags) == 0 || in.Filter.TagStatus == "UNTAGGED" && len(res.Tags) > 0) {
			continue
		}
		if len(in.ImageIDs) > 0 && !slices.ContainsFunc(in.ImageIDs, func(id imageIdentifier) bool { return id.ImageDigest == res.Digest }) {
			continue
		}
		action := res.Action
		if action == "" {
			action = "EXPIRE"
		}
		if action == "EXPIRE" {
			expiring++
		}
		storage := res.StorageClass
		if storage == "" {
			storage = "STANDARD"
		}
		results = append(results, previewResult{
			ImageTags: res.Tags, ImageDigest: res.Digest, ImagePushedAt: ts(res.PushedAt),
			Action:              previewRule{Type: action, TargetStorageClass: res.TargetStorageClass},
			AppliedRulePriority: res.RulePriority, StorageClass: storage,
		})
	}
	items, next, perr := page(results, in.NextToken, in.MaxResults, 100, 100, "preview")
	if perr != nil {
		return nil, perr
	}
	out["previewResults"] = items
	out["summary"] = map[string]any{"expiringImageTotalCount": expiring}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// --- scan findings

func (s *Server) describeImageScanFindings(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string          `json:"registryId"`
		RepositoryName string          `json:"repositoryName"`
		ImageID        imageIdentifier `json:"imageId"`
		NextToken      string          `json:"nextToken"`
		MaxResults     *int            `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	img := s.findImage(r, in.ImageID)
	if img == nil {
		return nil, clientError("ImageNotFoundException", "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
			orNull(in.ImageID.ImageDigest), orNull(in.ImageID.ImageTag), r.Name, s.registryID)
	}
	notFound := clientError("ScanNotFoundException", "Image scan does not exist for the image with '{imageDigest:'%s', imageTag:'%s'}' in the repository with name '%s' in the registry with id '%s'",
		img.Digest, orNull(in.ImageID.ImageTag), r.Name, s.registryID)
	sc, ok := r.scans[img.Digest]
	if !ok {
		return nil, notFound
	}
	if in.NextToken == "" && !s.retrying { // a retry replays its attempt's status
		status := "COMPLETE"
		if n := len(sc.script.Statuses); n > 0 {
			status = sc.script.Statuses[min(sc.cursor, n-1)]
		}
		sc.cursor++
		sc.status = status
	}
	if sc.status == "SCAN_NOT_FOUND" {
		return nil, notFound
	}
	out := map[string]any{
		"registryId":      s.registryID,
		"repositoryName":  r.Name,
		"imageId":         imageIdentifier{ImageDigest: img.Digest, ImageTag: in.ImageID.ImageTag},
		"imageScanStatus": imageScanStatus{Status: sc.status, Description: sc.script.Description},
	}
	if sc.status != "COMPLETE" && sc.status != "ACTIVE" {
		return out, nil
	}

	// Basic findings first, then enhanced ones, paginated as one sequence.
	type item struct {
		basic    *basicFinding
		enhanced *enhancedFinding
	}
	var all []item
	counts := map[string]int{}
	for _, f := range sc.script.Findings {
		w := basicFinding{Name: f.Name, Description: f.Description, URI: f.URI, Severity: f.Severity}
		for _, a := range f.Attributes {
			w.Attributes = append(w.Attributes, attribute{Key: a.Key, Value: a.Value})
		}
		counts[f.Severity]++
		all = append(all, item{basic: &w})
	}
	for i, f := range sc.script.Enhanced {
		w := s.wireEnhanced(img, i, f)
		counts[f.Severity]++
		all = append(all, item{enhanced: &w})
	}
	items, next, perr := page(all, in.NextToken, in.MaxResults, 100, 1000, "findings")
	if perr != nil {
		return nil, perr
	}
	findings := imageScanFindings{
		ImageScanCompletedAt:         ts(sc.script.CompletedAt),
		VulnerabilitySourceUpdatedAt: ts(sc.script.VulnerabilitySourceUpdatedAt),
		FindingSeverityCounts:        counts,
	}
	for _, it := range items {
		if it.basic != nil {
			findings.Findings = append(findings.Findings, *it.basic)
		} else {
			findings.EnhancedFindings = append(findings.EnhancedFindings, *it.enhanced)
		}
	}
	out["imageScanFindings"] = findings
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (s *Server) wireEnhanced(img *Image, i int, f EnhancedFinding) enhancedFinding {
	status := f.Status
	if status == "" {
		status = "ACTIVE"
	}
	w := enhancedFinding{
		AwsAccountID:    s.registryID,
		Description:     f.Description,
		FindingArn:      fmt.Sprintf("arn:aws:inspector2:%s:%s:finding/%s-%d", s.region, s.registryID, shortDigest(img.Digest), i),
		FirstObservedAt: ts(f.FirstObservedAt),
		Score:           f.Score,
		Severity:        f.Severity,
		Status:          status,
		Title:           f.Title,
		Type:            "PACKAGE_VULNERABILITY",
		FixAvailable:    f.FixAvailable,
		PackageVulnerabilityDetails: packageVulnerabilityDetails{
			ReferenceUrls:   f.ReferenceURLs,
			Source:          "NVD",
			SourceURL:       f.SourceURL,
			VulnerabilityID: f.VulnerabilityID,
		},
	}
	if f.CVSSVector != "" {
		w.ScoreDetails = &scoreDetails{Cvss: cvssScoreDetails{Score: f.Score, ScoringVector: f.CVSSVector, ScoreSource: "NVD", Version: "3.1"}}
		w.PackageVulnerabilityDetails.Cvss = []cvssScore{{BaseScore: f.Score, ScoringVector: f.CVSSVector, Source: "NVD", Version: "3.1"}}
	}
	w.Remediation, w.PackageVulnerabilityDetails.VulnerablePackages = f.wireRemediationAndPackages()
	return w
}

// wireRemediationAndPackages is the part of a finding's wire form that ECR's
// enhanced findings and Inspector's share.
func (f EnhancedFinding) wireRemediationAndPackages() (*remediation, []vulnerablePackage) {
	var rem *remediation
	if f.SourceURL != "" {
		rem = &remediation{Recommendation: recommendation{URL: f.SourceURL, Text: "None Provided"}}
	}
	var pkgs []vulnerablePackage
	for _, p := range f.Packages {
		pkgs = append(pkgs, vulnerablePackage{
			Arch: p.Arch, Epoch: p.Epoch, FilePath: p.FilePath, Name: p.Name, PackageManager: p.PackageManager,
			Release: p.Release, Version: p.Version, FixedInVersion: p.FixedInVersion,
		})
	}
	return rem, pkgs
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	return d[:min(12, len(d))]
}
