package lifecycle

import (
	"strings"
	"time"
)

// Artifact is one manifest in a repository: an image, an image index, a
// platform or attestation manifest, a signature, an SBOM. Registry clients
// fill it from their listings and from the manifests themselves.
type Artifact struct {
	Digest    string    `json:"digest"`
	Tags      []string  `json:"tags,omitempty"`
	PushedAt  time.Time `json:"pushedAt"`
	Size      int64     `json:"size,omitempty"` // bytes; 0 when unknown
	MediaType string    `json:"mediaType,omitempty"`

	// Children are the manifests an index references (its "manifests").
	Children []string `json:"children,omitempty"`
	// Subject is the OCI 1.1 "subject" of a referrer.
	Subject string `json:"subject,omitempty"`
	// AttachedTo is the digest a cosign-style tag ("sha256-<hex>.sig",
	// ".att", or the referrers tag "sha256-<hex>") names, set by the
	// registry client only when the artifact's content proves it: the
	// signature payload's docker-manifest-digest, the attestation
	// statement's subject, or the referrers it lists. A tag of that shape
	// without such proof is an ordinary tag (see Attachment).
	AttachedTo string `json:"attachedTo,omitempty"`

	// ECR only. StorageClass is "standard" (or empty) or "archive".
	StorageClass string `json:"storageClass,omitempty"`
	// LastPulledAt is ECR's last_recorded_pulltime; zero if never pulled.
	LastPulledAt time.Time `json:"lastPulledAt,omitzero"`
	// LastActivatedAt is set when an archived image was restored. Ages and
	// ranking still count from PushedAt, the time AWS's preview reports.
	LastActivatedAt time.Time `json:"lastActivatedAt,omitzero"`
	// ArchivedAt is ECR's last_archived_at for archived images.
	ArchivedAt time.Time `json:"archivedAt,omitzero"`
	// Restoring: ECR is restoring the image from archive (ACTIVATING).
	// Such an image is never selected by a rule, nor deleted.
	Restoring bool `json:"restoring,omitempty"`
	// SizeIncludesChildren: Size is what ECR reports for an index (the
	// size of its largest platform image), so the children's own sizes are
	// not added again when they are deleted with it.
	SizeIncludesChildren bool `json:"sizeIncludesChildren,omitempty"`
}

// Subjects returns the digests the artifact is about: its OCI subject and
// the digest its cosign-style tag names, when proven (AttachedTo).
func (a *Artifact) Subjects() []string {
	var out []string
	if a.Subject != "" {
		out = append(out, a.Subject)
	}
	if a.AttachedTo != "" && a.AttachedTo != a.Subject && a.AttachedTo != a.Digest {
		out = append(out, a.AttachedTo)
	}
	return out
}

// Attachment reports whether tag is the cosign-style tag that attaches this
// artifact to another one: shaped like "sha256-<hex>[.sig|.att|.sbom]" and
// naming the artifact's proven subject. Any other tag is the artifact's own.
func (a *Artifact) Attachment(tag string) bool {
	d, _, ok := SubjectFromCosignTag(tag)
	return ok && d != a.Digest && (d == a.AttachedTo || d == a.Subject)
}

// OwnTags are the tags that are not attachment tags.
func (a *Artifact) OwnTags() []string {
	var out []string
	for _, t := range a.Tags {
		if !a.Attachment(t) {
			out = append(out, t)
		}
	}
	return out
}

// Kinds of artifacts named by a cosign or referrers-schema tag.
const (
	TagKindSignature   = "signature"   // sha256-<hex>.sig
	TagKindAttestation = "attestation" // sha256-<hex>.att
	TagKindSBOM        = "sbom"        // sha256-<hex>.sbom
	// TagKindReferrers is the OCI 1.1 referrers tag schema: an index tagged
	// sha256-<hex> that lists the referrers of sha256:<hex> for registries
	// without the referrers API.
	TagKindReferrers = "referrers"
)

// SubjectFromCosignTag derives the subject digest from a tag that cosign (or
// the OCI referrers tag schema) attaches to an artifact about another one:
// "sha256-<64 hex>.sig" names "sha256:<64 hex>" and has kind "signature";
// likewise ".att" (attestation), ".sbom" (sbom), and no suffix (referrers).
// sha512 digests are recognised too. ok is false for any other tag.
func SubjectFromCosignTag(tag string) (digest, kind string, ok bool) {
	if !strings.HasPrefix(tag, "sha") { // most tags: answer before any work
		return "", "", false
	}
	body, kind := tag, TagKindReferrers
	switch {
	case strings.HasSuffix(tag, ".sig"):
		body, kind = tag[:len(tag)-len(".sig")], TagKindSignature
	case strings.HasSuffix(tag, ".att"):
		body, kind = tag[:len(tag)-len(".att")], TagKindAttestation
	case strings.HasSuffix(tag, ".sbom"):
		body, kind = tag[:len(tag)-len(".sbom")], TagKindSBOM
	}
	alg, hex, found := strings.Cut(body, "-")
	if !found {
		return "", "", false
	}
	var want int
	switch alg {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return "", "", false
	}
	if len(hex) != want || !isLowerHex(hex) {
		return "", "", false
	}
	return alg + ":" + hex, kind, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
