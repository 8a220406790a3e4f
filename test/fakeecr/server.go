// Package fakeecr is a local server speaking Amazon ECR's API wire protocol
// (awsJson1_1: POST /, X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Op>,
// Content-Type application/x-amz-json-1.1, epoch-second timestamps, errors as
// HTTP 400 {"__type": "...", "message": "..."}), so that the real
// aws-sdk-go-v2 client, or the built binary through AWS_ENDPOINT_URL_ECR, can
// be tested without AWS.
//
// Supported operations:
//
//   - GetAuthorizationToken: base64 "AWS:<password>", 12 h expiry.
//   - CreateRepository, DescribeRepositories (paginated).
//   - DescribeImages: nextToken/maxResults pagination (default 100, max
//     1000), imageIds, filter.tagStatus and filter.imageStatus (ACTIVE unless
//     asked otherwise).
//   - BatchGetImage: up to 100 ids, acceptedMediaTypes honoured.
//   - BatchDeleteImage: up to 100 ids, per-image failures in failures[]
//     (ImageNotFound, InvalidImageDigest, ImageTagDoesNotMatchDigest,
//     ImageReferencedByManifestList when an index still lists the image or a
//     test marked it); deleting the last tag of an image deletes the image.
//   - PutLifecyclePolicy, GetLifecyclePolicy.
//   - StartLifecyclePolicyPreview, GetLifecyclePolicyPreview: a scripted
//     state machine (see Preview); the fake never evaluates a policy.
//   - DescribeImageScanFindings: scripted statuses and findings, basic and
//     enhanced (see Scan), paginated.
//
// State is in memory and seeded by the test. Every request is counted per
// operation; faults (throttling, 5xx, AccessDeniedException, any error) can be
// injected per operation; requests must carry a SigV4 Authorization header
// scoped to service "ecr" and the server's region unless AcceptUnsigned is
// called.
package fakeecr

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults of a new server.
const (
	DefaultRegistryID = "123456789012"
	DefaultRegion     = "us-east-1"
	DefaultPassword   = "fake-ecr-password"
)

const targetPrefix = "AmazonEC2ContainerRegistry_V20150921."

// Operation names, as in X-Amz-Target and Count.
const (
	OpGetAuthorizationToken       = "GetAuthorizationToken"
	OpCreateRepository            = "CreateRepository"
	OpDescribeRepositories        = "DescribeRepositories"
	OpDescribeImages              = "DescribeImages"
	OpBatchGetImage               = "BatchGetImage"
	OpBatchDeleteImage            = "BatchDeleteImage"
	OpPutLifecyclePolicy          = "PutLifecyclePolicy"
	OpGetLifecyclePolicy          = "GetLifecyclePolicy"
	OpStartLifecyclePolicyPreview = "StartLifecyclePolicyPreview"
	OpGetLifecyclePolicyPreview   = "GetLifecyclePolicyPreview"
	OpDescribeImageScanFindings   = "DescribeImageScanFindings"
)

// Fault is an error response the server gives instead of handling a request.
type Fault struct {
	Status  int    // HTTP status; 400 when zero
	Code    string // __type, e.g. "ThrottlingException"
	Message string
}

// Throttling is ECR's rate-limit answer, retried by the SDK.
func Throttling() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "ThrottlingException", Message: "Rate exceeded"}
}

// ServerError is a 500 ECR answers on an internal failure, retried by the SDK.
func ServerError() Fault {
	return Fault{Status: http.StatusInternalServerError, Code: "ServerException", Message: "We encountered an internal error. Please try again."}
}

// AccessDenied is the answer to a principal lacking ecr:<op>, worded as IAM words it.
func AccessDenied(op string) Fault {
	return Fault{Status: http.StatusBadRequest, Code: "AccessDeniedException", Message: fmt.Sprintf(
		"User: arn:aws:sts::%s:assumed-role/ci/run is not authorized to perform: ecr:%s on resource: arn:aws:ecr:%s:%s:repository/* because no identity-based policy allows the ecr:%s action",
		DefaultRegistryID, op, DefaultRegion, DefaultRegistryID, op)}
}

type pendingFault struct {
	fault     Fault
	remaining int // < 0: forever
}

// Server is a running fake ECR API.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu             sync.Mutex
	registryID     string
	region         string
	registryHost   string
	password       string
	proxyEndpoint  string
	acceptUnsigned bool
	accessKeyID    string
	repos          map[string]*repository
	repoOrder      []string
	counts         map[string]int
	calls          map[string]int
	retrying       bool // the request being handled is a retried attempt
	bodies         map[string][][]byte
	faults         map[string][]*pendingFault
	hooks          []hook
	hookCalls      map[string]int
	inspector      []InspectorFinding
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:          t,
		registryID: DefaultRegistryID,
		region:     DefaultRegion,
		password:   DefaultPassword,
		repos:      map[string]*repository{},
		counts:     map[string]int{},
		calls:      map[string]int{},
		bodies:     map[string][][]byte{},
		faults:     map[string][]*pendingFault{},
		hookCalls:  map[string]int{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the endpoint to give the SDK (BaseEndpoint, AWS_ENDPOINT_URL_ECR).
func (s *Server) URL() string { return s.srv.URL }

// RegistryID is the account ID the server answers for.
func (s *Server) RegistryID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.registryID
}

// SetRegistryID changes the account ID the server answers for; requests
// naming another registryId find no repositories.
func (s *Server) SetRegistryID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registryID = id
}

// SetRegion changes the region requests must be signed for and that
// repository URIs and ARNs name.
func (s *Server) SetRegion(region string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.region = region
}

// SetRegistryHost makes repository URIs point at host (e.g. a local
// registry's 127.0.0.1:port) instead of <id>.dkr.ecr.<region>.amazonaws.com.
func (s *Server) SetRegistryHost(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registryHost = host
}

// SetPassword sets the password GetAuthorizationToken hands out (user "AWS").
func (s *Server) SetPassword(password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password = password
}

// SetProxyEndpoint sets the proxyEndpoint GetAuthorizationToken reports.
func (s *Server) SetProxyEndpoint(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxyEndpoint = endpoint
}

// AcceptUnsigned lets requests without a SigV4 Authorization header through.
func (s *Server) AcceptUnsigned() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acceptUnsigned = true
}

// RequireAccessKey makes the server answer UnrecognizedClientException to
// requests signed with another access key ID.
func (s *Server) RequireAccessKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessKeyID = id
}

// AddRepository seeds a repository.
func (s *Server) AddRepository(r Repository) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repos[r.Name]; ok {
		s.t.Fatalf("fakeecr: repository %q added twice", r.Name)
	}
	s.addRepositoryLocked(r)
}

func (s *Server) addRepositoryLocked(r Repository) *repository {
	if r.TagMutability == "" {
		r.TagMutability = "MUTABLE"
	}
	if r.EncryptionType == "" {
		r.EncryptionType = "AES256"
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.MutabilityExclusions = slices.Clone(r.MutabilityExclusions)
	repo := &repository{Repository: r, scans: map[string]*scanState{}, referenced: map[string]bool{}}
	s.repos[r.Name] = repo
	s.repoOrder = append(s.repoOrder, r.Name)
	return repo
}

// AddImages seeds images into an existing repository, in listing order.
// It returns the images as stored (digests and media types filled in).
func (s *Server) AddImages(repo string, images ...Image) []Image {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	out := make([]Image, 0, len(images))
	for _, img := range images {
		img = normaliseImage(img)
		if img.Digest == "" {
			s.t.Fatalf("fakeecr: image in %q has neither digest nor manifest", repo)
		}
		if r.image(img.Digest) != nil {
			s.t.Fatalf("fakeecr: image %s added twice to %q", img.Digest, repo)
		}
		for _, tag := range img.Tags {
			if other := r.imageByTag(tag); other != nil {
				s.t.Fatalf("fakeecr: tag %q already on %s in %q", tag, other.Digest, repo)
			}
		}
		stored := img
		r.images = append(r.images, &stored)
		out = append(out, cloneImage(&stored))
	}
	return out
}

// MarkReferenced makes BatchDeleteImage refuse digest with
// ImageReferencedByManifestList, as if an index nobody listed referenced it.
// (Indexes seeded with their manifest bytes are detected without marking.)
func (s *Server) MarkReferenced(repo, digest string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustRepo(repo).referenced[digest] = true
}

// SetLifecyclePolicy seeds a repository's lifecycle policy.
func (s *Server) SetLifecyclePolicy(repo, text string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustRepo(repo).policy = &text
}

// ScriptPreview scripts the repository's lifecycle policy previews.
func (s *Server) ScriptPreview(repo string, p Preview) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	p.Statuses = slices.Clone(p.Statuses)
	p.Results = slices.Clone(p.Results)
	r.preview = &previewState{script: p}
}

// ScriptScan scripts the scan of an image (by digest).
func (s *Server) ScriptScan(repo, digest string, sc Scan) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	sc.Statuses = slices.Clone(sc.Statuses)
	r.scans[digest] = &scanState{script: sc}
}

// FailNext answers the next n requests for op with f (n < 0: all of them).
// Faults queue up per operation.
func (s *Server) FailNext(op string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Status == 0 {
		f.Status = http.StatusBadRequest
	}
	s.faults[op] = append(s.faults[op], &pendingFault{fault: f, remaining: n})
}

// Count is the number of requests received for op, faulted ones included.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Calls is the number of times a client invoked op: the attempts an SDK
// retried after a transient failure count once. API-economy assertions use
// it, so a connection hiccup on a loaded machine does not read as an extra
// page; Count is for tests about the retries themselves.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// firstAttempt reports whether r is the first attempt of an operation, from
// the amz-sdk-request header the AWS SDKs send ("attempt=2; max=8" on a
// retry). Clients that send no such header make one attempt per call.
func firstAttempt(r *http.Request) bool {
	h := r.Header.Get("amz-sdk-request")
	for part := range strings.SplitSeq(h, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			return v == "1"
		}
	}
	return true
}

// Counts returns the request count of every operation called.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Requests returns the JSON bodies received for op, in order.
func (s *Server) Requests(op string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies[op])
}

// Repository returns a repository's current settings.
func (s *Server) Repository(name string) (Repository, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[name]
	if !ok {
		return Repository{}, false
	}
	out := r.Repository
	out.MutabilityExclusions = slices.Clone(out.MutabilityExclusions)
	return out, true
}

// Images returns a repository's images, in listing order.
func (s *Server) Images(repo string) []Image {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	out := make([]Image, len(r.images))
	for i, img := range r.images {
		out[i] = cloneImage(img)
	}
	return out
}

// LifecyclePolicy returns a repository's lifecycle policy text.
func (s *Server) LifecyclePolicy(repo string) (string, bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if r.policy == nil {
		return "", false
	}
	return *r.policy, true
}

// PreviewStarts returns the policy texts of the StartLifecyclePolicyPreview
// calls received for a repository.
func (s *Server) PreviewStarts(repo string) []string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if r.preview == nil {
		return nil
	}
	return slices.Clone(r.preview.starts)
}

func (s *Server) mustRepo(name string) *repository {
	s.t.Helper()
	r, ok := s.repos[name]
	if !ok {
		s.t.Fatalf("fakeecr: no repository %q (AddRepository first)", name)
	}
	return r
}

// apiError is an error answer of a handler.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func clientError(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

type handler func(s *Server, body []byte) (any, *apiError)

var handlers = map[string]handler{
	OpGetAuthorizationToken:       (*Server).getAuthorizationToken,
	OpCreateRepository:            (*Server).createRepository,
	OpDescribeRepositories:        (*Server).describeRepositories,
	OpDescribeImages:              (*Server).describeImages,
	OpBatchGetImage:               (*Server).batchGetImage,
	OpBatchDeleteImage:            (*Server).batchDeleteImage,
	OpPutLifecyclePolicy:          (*Server).putLifecyclePolicy,
	OpGetLifecyclePolicy:          (*Server).getLifecyclePolicy,
	OpStartLifecyclePolicyPreview: (*Server).startLifecyclePolicyPreview,
	OpGetLifecyclePolicyPreview:   (*Server).getLifecyclePolicyPreview,
	OpDescribeImageScanFindings:   (*Server).describeImageScanFindings,
	OpGetDownloadURLForLayer:      (*Server).getDownloadURLForLayer,
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/blobs/") {
		s.serveBlob(w, r)
		return
	}
	if s.routeInspector(w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, &apiError{status: http.StatusBadRequest, code: "SerializationException", msg: "cannot read body"})
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if r.Method != http.MethodPost || r.URL.Path != "/" || !ok {
		writeError(w, clientError("UnknownOperationException", "unknown operation %q %s %s", target, r.Method, r.URL.Path))
		return
	}
	h, known := handlers[op]
	s.runHooks(op, r)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[op]++
	s.retrying = !firstAttempt(r)
	if !s.retrying {
		s.calls[op]++
	}
	s.bodies[op] = append(s.bodies[op], body)

	if !known {
		writeError(w, clientError("UnknownOperationException", "operation %q is not supported by this server", op))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, clientError("SerializationException", "unexpected Content-Type %q", ct))
		return
	}
	if apiErr := s.checkSignature(r); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if f := s.takeFault(op); f != nil {
		writeError(w, &apiError{status: f.Status, code: f.Code, msg: f.Message})
		return
	}
	out, apiErr := h(s, body)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", fmt.Sprintf("fake-%s-%d", op, s.counts[op]))
	if err := json.NewEncoder(w).Encode(out); err != nil {
		s.t.Errorf("fakeecr: encode %s response: %v", op, err)
	}
}

func (s *Server) takeFault(op string) *Fault {
	queue := s.faults[op]
	for len(queue) > 0 {
		pf := queue[0]
		if pf.remaining == 0 {
			queue = queue[1:]
			continue
		}
		if pf.remaining > 0 {
			pf.remaining--
		}
		s.faults[op] = queue
		f := pf.fault
		return &f
	}
	s.faults[op] = queue
	return nil
}

// checkSignature verifies the form of the SigV4 Authorization header:
// algorithm, credential scope (service "ecr", the server's region) and,
// when required, the access key ID. It does not recompute the signature.
func (s *Server) checkSignature(r *http.Request) *apiError { return s.checkSignatureFor(r, "ecr") }

// checkSignatureFor is checkSignature for another service's scope.
func (s *Server) checkSignatureFor(r *http.Request, service string) *apiError {
	if s.acceptUnsigned {
		return nil
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return clientError("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return clientError("IncompleteSignatureException", "Authorization header requires the AWS4-HMAC-SHA256 algorithm")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || len(fields["Signature"]) != 64 {
		return clientError("IncompleteSignatureException", "Authorization header is not a complete SigV4 signature")
	}
	if scope[3] != service {
		return clientError("InvalidSignatureException", "Credential should be scoped to correct service: '%s'.", service)
	}
	if scope[2] != s.region {
		return clientError("InvalidSignatureException", "Credential should be scoped to a valid region, not '%s'.", scope[2])
	}
	if s.accessKeyID != "" && scope[0] != s.accessKeyID {
		return clientError("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if r.Header.Get("X-Amz-Date") == "" {
		return clientError("IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	return nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(wireError{Type: e.code, Message: e.msg})
}

func (s *Server) repositoryURI(name string) string {
	host := s.registryHost
	if host == "" {
		host = fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", s.registryID, s.region)
	}
	return host + "/" + name
}

func (s *Server) authToken() string {
	return base64.StdEncoding.EncodeToString([]byte("AWS:" + s.password))
}

// IsolateAWS keeps a test process away from the machine's AWS configuration:
// no AWS_* variables, no profiles or credentials files, no instance
// metadata. Call it from TestMain before m.Run.
func IsolateAWS() {
	for _, v := range os.Environ() {
		name, _, _ := strings.Cut(v, "=")
		if strings.HasPrefix(name, "AWS_") {
			os.Unsetenv(name)
		}
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
