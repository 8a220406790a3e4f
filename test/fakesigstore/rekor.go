package fakesigstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/types"
	sgca "github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"

	// The entry kinds cosign uploads: hashedrekord for image signatures,
	// dsse for attestations and bundles.
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
)

// The transparency log answers POST /api/v1/log/entries like Rekor v1: it
// canonicalises the proposed entry with Rekor's own type code, and returns
// it with a signed entry timestamp and an inclusion proof made with the log
// key of sigstore-go's virtual Sigstore (a one-leaf tree per entry, which
// verifiers accept; log indexes still count up).

func (s *Sigstore) rekorHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rekorError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	pe, err := models.UnmarshalProposedEntry(http.MaxBytesReader(w, r.Body, 1<<22), runtime.JSONConsumer())
	if err != nil {
		rekorError(w, http.StatusBadRequest, "unmarshal proposed entry: "+err.Error())
		return
	}
	entry, err := types.CreateVersionedEntry(pe)
	if err != nil {
		rekorError(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := types.CanonicalizeEntry(r.Context(), entry)
	if err != nil {
		rekorError(w, http.StatusBadRequest, err.Error())
		return
	}
	logID, err := s.log.RekorLogID()
	if err != nil {
		rekorError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.mu.Lock()
	index := s.logSize
	s.logSize++
	s.mu.Unlock()
	integrated := time.Now().Unix()
	bodyB64 := base64.StdEncoding.EncodeToString(body)
	set, err := s.log.RekorSignPayload(tlog.RekorPayload{Body: bodyB64, IntegratedTime: integrated, LogIndex: index, LogID: logID})
	if err != nil {
		rekorError(w, http.StatusInternalServerError, err.Error())
		return
	}
	proof, err := s.log.GetInclusionProof(body)
	if err != nil {
		rekorError(w, http.StatusInternalServerError, err.Error())
		return
	}
	leaf := sha256.Sum256(append([]byte{0}, body...))
	uuid := hex.EncodeToString(leaf[:])
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/api/v1/log/entries/"+uuid)
	w.Header().Set("ETag", uuid)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]models.LogEntryAnon{uuid: {
		Body:           bodyB64,
		IntegratedTime: &integrated,
		LogID:          &logID,
		LogIndex:       &index,
		Verification:   &models.LogEntryAnonVerification{SignedEntryTimestamp: set, InclusionProof: proof},
	}})
}

func rekorError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": status, "message": msg})
}

func newTransparencyLog() (*sgca.VirtualSigstore, error) { return sgca.NewVirtualSigstore() }
