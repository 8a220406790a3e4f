package signer

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Identity is who made a signature: for keyless signatures the certificate
// subject (the workflow ref URI for GitHub Actions) and OIDC issuer, for key
// signatures the key's fingerprint.
type Identity struct {
	Subject        string `json:"subject,omitempty"`
	Issuer         string `json:"issuer,omitempty"`
	KeyFingerprint string `json:"keyFingerprint,omitempty"` // sha256:<hex> of the DER public key
	KeyRef         string `json:"keyRef,omitempty"`         // the awskms:// reference for KMS keys
}

// Keyless reports whether the identity comes from a certificate.
func (id Identity) Keyless() bool { return id.Subject != "" || id.Issuer != "" }

// TlogEntry locates a signature in the Rekor transparency log.
type TlogEntry struct {
	Index          int64     `json:"index"`
	IntegratedTime time.Time `json:"integratedTime"`
	URL            string    `json:"url"`
}

// Artifact kinds.
const (
	KindSignature   = "signature"
	KindAttestation = "attestation"
)

// Artifact is one signature or attestation written to the registry.
type Artifact struct {
	Kind          string     `json:"kind"`
	Subject       string     `json:"subject"` // repo@sha256:… that was signed
	Platform      string     `json:"platform,omitempty"`
	Format        Format     `json:"format"`
	Reference     string     `json:"reference"` // repo:sha256-<hex>.sig|.att, or repo@sha256:… of the referrer
	PredicateType string     `json:"predicateType,omitempty"`
	Tlog          *TlogEntry `json:"tlog,omitempty"`
}

// SignResult is what a signing run wrote.
type SignResult struct {
	Format   Format   `json:"format"`
	Identity Identity `json:"identity"`
	// Images are the digests asked for, in order.
	Images []string `json:"images"`
	// Signed lists every digest that received a signature, children
	// before the index that lists them.
	Signed       []string   `json:"signed"`
	Signatures   []Artifact `json:"signatures"`
	Attestations []Artifact `json:"attestations,omitempty"`
	// TlogUpload tells whether entries went to the transparency log.
	TlogUpload bool `json:"tlogUpload"`
}

// Merge adds another result of the same run (e.g. attestations made after
// the image signatures).
func (r *SignResult) Merge(o *SignResult) {
	if o == nil {
		return
	}
	for _, img := range o.Images {
		if !slices.Contains(r.Images, img) {
			r.Images = append(r.Images, img)
		}
	}
	for _, d := range o.Signed {
		if !slices.Contains(r.Signed, d) {
			r.Signed = append(r.Signed, d)
		}
	}
	r.Signatures = append(r.Signatures, o.Signatures...)
	r.Attestations = append(r.Attestations, o.Attestations...)
}

// References lists where every signature and attestation was stored.
func (r *SignResult) References() []string {
	var refs []string
	for _, a := range append(append([]Artifact{}, r.Signatures...), r.Attestations...) {
		refs = append(refs, a.Reference)
	}
	return refs
}

// VerifyCommands returns copy-paste cosign commands that check what this
// run signed: one "cosign verify" per image and one "cosign
// verify-attestation" per attestation type naming every digest that carries
// it (each platform manifest of a scanned index and the index), with this
// run's certificate identity and issuer, or with --key. publicKey is what to
// put after --key for a key held in a file (a KMS key is named by its
// awskms:// reference instead); it defaults to cosign.pub.
func (r *SignResult) VerifyCommands(publicKey string) []string {
	if publicKey == "" {
		publicKey = "cosign.pub"
	}
	var common []string
	switch {
	case r.Identity.Keyless():
		common = append(common,
			"--certificate-identity="+ShellQuote(r.Identity.Subject),
			"--certificate-oidc-issuer="+ShellQuote(r.Identity.Issuer))
	case r.Identity.KeyRef != "":
		common = append(common, "--key="+ShellQuote(r.Identity.KeyRef))
	default:
		common = append(common, "--key="+ShellQuote(publicKey))
	}
	if !r.TlogUpload {
		common = append(common, "--insecure-ignore-tlog=true")
	}
	if r.Format == FormatBundle {
		common = append(common, "--new-bundle-format")
	}
	var cmds []string
	for _, img := range r.Images {
		cmds = append(cmds, strings.Join(append(append([]string{"cosign", "verify"}, common...), ShellQuote(img)), " "))
	}
	var types []string
	subjects := map[string][]string{}
	for _, a := range r.Attestations {
		if !slices.Contains(types, a.PredicateType) {
			types = append(types, a.PredicateType)
		}
		if !slices.Contains(subjects[a.PredicateType], a.Subject) {
			subjects[a.PredicateType] = append(subjects[a.PredicateType], a.Subject)
		}
	}
	for _, t := range types {
		name := t
		if short, ok := predicateShortName(t); ok {
			name = short
		}
		args := append([]string{"cosign", "verify-attestation", "--type=" + ShellQuote(name)}, common...)
		for _, subject := range subjects[t] {
			args = append(args, ShellQuote(subject))
		}
		cmds = append(cmds, strings.Join(args, " "))
	}
	return cmds
}

// ShellQuote quotes s for POSIX shells when it holds anything but plain
// reference and path characters.
func ShellQuote(s string) string {
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%+=:,./-_", c)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// tlogURL links a log entry: the public-good search UI for the public
// Rekor, the instance's API otherwise.
func tlogURL(rekorURL string, index int64) string {
	base := strings.TrimSuffix(rekorURL, "/")
	if base == "" || base == DefaultRekorURL {
		return fmt.Sprintf("https://search.sigstore.dev/?logIndex=%d", index)
	}
	return fmt.Sprintf("%s/api/v1/log/entries?logIndex=%d", base, index)
}
