package sign

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/oidc"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
)

// VerifyResult is the verdict of the verify stage.
type VerifyResult struct {
	signer.VerifyResult
	Resolved []Resolved `json:"resolved"`
	Policy   Policy     `json:"policy"`
}

// Policy is what a signature had to satisfy.
type Policy struct {
	Identity       string `json:"certificateIdentity,omitempty"`
	IdentityRegexp string `json:"certificateIdentityRegexp,omitempty"`
	Issuer         string `json:"certificateOidcIssuer,omitempty"`
	// PublicKey names the key (a path, env://VAR or awskms://…; never
	// the PEM content itself).
	PublicKey           string   `json:"publicKey,omitempty"`
	RequireAttestations []string `json:"requireAttestations,omitempty"`
	RequireTlog         bool     `json:"requireTlog"`
	TrustedRoot         string   `json:"trustedRoot"`
}

func policyOf(opts VerifyOptions) Policy {
	vo := opts.Verify
	p := Policy{RequireAttestations: vo.RequireAttestations, RequireTlog: !vo.IgnoreTlog, TrustedRoot: "public-good Sigstore"}
	if opts.TrustedRoot != "" {
		p.TrustedRoot = opts.TrustedRoot
	}
	switch {
	case vo.PublicKey == "":
		p.Identity, p.IdentityRegexp, p.Issuer = vo.CertificateIdentity, vo.CertificateIdentityRegexp, vo.CertificateOIDCIssuer
		if p.Issuer == "" {
			p.Issuer = oidc.GitHubActionsIssuer
		}
	case strings.Contains(vo.PublicKey, "-----BEGIN"):
		p.PublicKey = "PEM content"
	default:
		p.PublicKey = vo.PublicKey
	}
	return p
}

func (p Policy) describe(md bool) string {
	code := func(s string) string {
		if md {
			return report.Code(s)
		}
		return s
	}
	var parts []string
	switch {
	case p.PublicKey != "":
		parts = append(parts, "signed with the key "+code(p.PublicKey))
	case p.Identity != "":
		parts = append(parts, fmt.Sprintf("signed by %s (issuer %s)", code(p.Identity), code(p.Issuer)))
	default:
		parts = append(parts, fmt.Sprintf("signed by an identity matching %s (issuer %s)", code(p.IdentityRegexp), code(p.Issuer)))
	}
	if len(p.RequireAttestations) > 0 {
		parts = append(parts, "attestations "+code(strings.Join(p.RequireAttestations, ", ")))
	}
	if p.RequireTlog {
		parts = append(parts, "a transparency-log entry")
	}
	trust := p.TrustedRoot
	if md {
		trust = report.Escape(trust)
	}
	return strings.Join(parts, ", ") + "; trust: " + trust
}

// Outputs are the verify outputs of the inputs table.
func (r *VerifyResult) Outputs() []report.Output {
	return []report.Output{{Name: inputs.OutVerified, Value: fmt.Sprint(r.Verified)}}
}

func (r *VerifyResult) verdict() string {
	if r.Verified {
		return fmt.Sprintf("verified %d %s of %d %s", len(r.Images), plural(len(r.Images), "manifest", "manifests"), len(r.Resolved), plural(len(r.Resolved), "image", "images"))
	}
	failed := 0
	first := ""
	for _, iv := range r.Images {
		if !iv.Verified {
			if failed == 0 {
				first = fmt.Sprintf("%s: %s", iv.Digest, iv.Reason)
			}
			failed++
		}
	}
	return fmt.Sprintf("NOT verified: %d of %d %s failed; %s", failed, len(r.Images), plural(len(r.Images), "manifest", "manifests"), first)
}

// Summary writes the verify section of the job summary.
func (r *VerifyResult) Summary(md *report.Markdown) {
	md.Heading(2, "Verify")
	if r.Verified {
		md.Paragraph("✅ **Verified**: %d %s of %d %s.", len(r.Images), plural(len(r.Images), "manifest", "manifests"), len(r.Resolved), plural(len(r.Resolved), "image", "images"))
	} else {
		md.Paragraph("❌ **Not verified**: %s", report.Escape(strings.TrimPrefix(r.verdict(), "NOT verified: ")))
	}
	md.Paragraph("Required: %s.", r.Policy.describe(true))

	var verdicts [][]string
	for _, iv := range r.Images {
		v := "✅ verified"
		if !iv.Verified {
			v = "❌ " + report.Escape(iv.Reason)
		}
		verdicts = append(verdicts, []string{report.Code(iv.Digest), report.Escape(r.platformOf(iv)), v})
	}
	md.Table([]string{"Manifest", "Platform", "Verdict"}, verdicts)

	var rows [][]string
	for _, iv := range r.Images {
		for _, sc := range append(append([]signer.SignatureCheck{}, iv.Signatures...), iv.Attestations...) {
			check := "✅ valid"
			if !sc.Verified {
				check = "❌ " + report.Escape(sc.Reason)
			}
			rows = append(rows, []string{
				report.Code(short(iv.Digest)), report.Escape(kindLabel(sc)), signedBy(sc, true), report.Code(sc.Identity.Issuer),
				signedAt(sc), tlogCell(sc.Tlog), check,
			})
		}
		if len(iv.Signatures) == 0 {
			rows = append(rows, []string{report.Code(short(iv.Digest)), "—", "—", "—", "—", "—", "❌ no signature"})
		}
	}
	md.Paragraph("**Signatures found**")
	md.Table([]string{"Manifest", "Kind", "Signed by", "Issuer", "Signed at", "Transparency log", "Check"}, rows)

	var ann []string
	for _, iv := range r.Images {
		for _, sc := range iv.Signatures {
			if len(sc.Annotations) > 0 {
				ann = append(ann, report.Code(short(iv.Digest))+": "+report.Code(annotationText(sc.Annotations)))
			}
		}
	}
	if len(ann) > 0 {
		md.Details("Signed annotations", func(b *report.Markdown) { b.Bullets(ann...) })
	}
}

// Text is the CLI rendering.
func (r *VerifyResult) Text(w io.Writer) {
	fmt.Fprintln(w, r.verdict())
	fmt.Fprintf(w, "required: %s\n", r.Policy.describe(false))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MANIFEST\tPLATFORM\tKIND\tSIGNED BY\tSIGNED AT\tTLOG\tCHECK")
	for _, iv := range r.Images {
		for _, sc := range append(append([]signer.SignatureCheck{}, iv.Signatures...), iv.Attestations...) {
			check := "valid"
			if !sc.Verified {
				check = sc.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", iv.Digest, r.platformOf(iv), kindLabel(sc), signedBy(sc, false), signedAtText(sc), tlogText(sc.Tlog), check)
		}
		if len(iv.Signatures) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t%s\n", iv.Digest, r.platformOf(iv), iv.Reason)
		}
	}
	tw.Flush()
}

// log writes one group per image asked for, with each manifest's verdict.
func (r *VerifyResult) log(log report.Logger) {
	var end func()
	for _, iv := range r.Images {
		if iv.Parent == "" {
			if end != nil {
				end()
			}
			end = log.Group("verify " + iv.Digest)
		}
		if iv.Verified {
			var who []string
			for _, sc := range iv.Signatures {
				if sc.Verified {
					who = append(who, signedBy(sc, false))
				}
			}
			log.Infof("verified %s (%s): signed by %s", iv.Digest, r.platformOf(iv), strings.Join(unique(who), ", "))
		} else {
			log.Warnf("not verified %s (%s): %s", iv.Digest, r.platformOf(iv), iv.Reason)
		}
	}
	if end != nil {
		end()
	}
}

func (r *VerifyResult) platformOf(iv signer.ImageVerification) string {
	switch {
	case iv.Platform != "":
		return iv.Platform
	case slices.ContainsFunc(r.Images, func(c signer.ImageVerification) bool { return c.Parent == iv.Digest }):
		return "index"
	case iv.Parent == "":
		return "image"
	}
	return "manifest"
}

func kindLabel(sc signer.SignatureCheck) string {
	k := sc.Kind
	if sc.Kind == signer.KindAttestation {
		k += " " + shortType(sc.PredicateType)
	}
	return k + " (" + string(sc.Format) + ")"
}

func signedBy(sc signer.SignatureCheck, md bool) string {
	id := sc.Identity
	s := id.Subject
	switch {
	case s != "":
	case id.KeyRef != "":
		s = id.KeyRef
	case id.KeyFingerprint != "":
		s = "key " + id.KeyFingerprint
	default:
		s = "unknown"
	}
	if md {
		return report.Code(s)
	}
	return s
}

func signedAt(sc signer.SignatureCheck) string {
	if sc.SigningTime == nil {
		return "—"
	}
	return report.Escape(sc.SigningTime.UTC().Format(time.RFC3339) + " (" + sc.TimeSource + ")")
}

func signedAtText(sc signer.SignatureCheck) string {
	if sc.SigningTime == nil {
		return "-"
	}
	return sc.SigningTime.UTC().Format(time.RFC3339)
}

func annotationText(a map[string]string) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+a[k])
	}
	return strings.Join(parts, " ")
}

func short(ref string) string {
	d := digestOf(ref)
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func unique(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
