package fakeecr

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
)

// What the clean stage needs besides listing and deleting: reading small
// blobs through the API (GetDownloadUrlForLayer and the pre-signed URL it
// returns), and changing a repository while a client reads it.

// OpGetDownloadURLForLayer is GetDownloadUrlForLayer.
const OpGetDownloadURLForLayer = "GetDownloadUrlForLayer"

type hook struct {
	op string
	n  int
	fn func()
}

// Before runs fn just before the server handles the n-th call (from 1) of
// op, e.g. to push an image between the listing and the deletion. fn runs
// without the server's lock and may call any method.
func (s *Server) Before(op string, n int, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, hook{op: op, n: n, fn: fn})
}

// runHooks counts a request of op and runs the hooks due before it.
func (s *Server) runHooks(op string, r *http.Request) {
	if !firstAttempt(r) {
		return
	}
	s.mu.Lock()
	s.hookCalls[op]++
	var run []func()
	for _, h := range s.hooks {
		if h.op == op && h.n == s.hookCalls[op] {
			run = append(run, h.fn)
		}
	}
	s.mu.Unlock()
	for _, fn := range run {
		fn()
	}
}

// SetTags replaces an image's tags (a tag pushed onto the digest, or moved
// away), as a push would; a tag another image holds moves here.
func (s *Server) SetTags(repo, digest string, tags ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	for _, img := range r.images {
		img.Tags = slices.DeleteFunc(img.Tags, func(t string) bool { return slices.Contains(tags, t) })
	}
	img := r.image(digest)
	if img == nil {
		s.t.Fatalf("fakeecr: no image %s in %q", digest, repo)
	}
	img.Tags = slices.Clone(tags)
}

// RemoveImages deletes images by digest, as someone else would.
func (s *Server) RemoveImages(repo string, digests ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	for _, d := range digests {
		r.remove(d)
	}
}

func (s *Server) getDownloadURLForLayer(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
		LayerDigest    string `json:"layerDigest"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r, err := s.repo(in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if _, ok := r.blob(in.LayerDigest); !ok {
		return nil, clientError("LayersNotFoundException", "The layer with digest '%s' does not exist in the repository with name '%s' in the registry with id '%s'", in.LayerDigest, r.Name, s.registryID)
	}
	return map[string]any{"layerDigest": in.LayerDigest, "downloadUrl": s.srv.URL + "/blobs/" + r.Name + "/" + in.LayerDigest + "?X-Amz-Signature=fake"}, nil
}

// serveBlob answers a pre-signed download URL.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/blobs/")
	i := strings.LastIndex(rest, "/")
	if i < 0 || r.URL.Query().Get("X-Amz-Signature") == "" {
		http.Error(w, "AccessDenied", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	repo, ok := s.repos[rest[:i]]
	var data []byte
	if ok {
		data, ok = repo.blob(rest[i+1:])
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	w.Write(data)
}

// blob finds a blob any image of the repository carries.
func (r *repository) blob(digest string) ([]byte, bool) {
	for _, img := range r.images {
		if data, ok := img.Blobs[digest]; ok {
			return data, true
		}
	}
	return nil, false
}

// BlobDigest is the digest a blob is served under.
func BlobDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
