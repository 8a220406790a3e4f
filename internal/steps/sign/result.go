package sign

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
)

// Result is what the sign stage wrote.
type Result struct {
	signer.SignResult
	// Resolved maps each image as given to the digest signed.
	Resolved []Resolved `json:"resolved"`
	// PublicKey is what the verify commands pass to --key for a key held
	// in a file (the .pub beside the .key, else cosign.pub).
	PublicKey string `json:"publicKey,omitempty"`
	// Commands are copy-paste cosign commands checking what was written.
	Commands []string `json:"verifyCommands"`
	// PrivateSigstore names the Fulcio and Rekor used when they are not
	// the public-good instances: verifiers need that instance's trusted root.
	PrivateSigstore []string `json:"privateSigstore,omitempty"`
}

// Outputs are the sign outputs of the inputs table.
func (r *Result) Outputs() []report.Output {
	return []report.Output{
		{Name: inputs.OutSigned, Value: report.OutputList(r.Signed)},
		{Name: inputs.OutSignatures, Value: report.OutputList(r.References())},
		{Name: inputs.OutCosignVerifyCommands, Value: report.OutputList(r.Commands)},
	}
}

// signer describes who signed, for a sentence.
func (r *Result) signerPhrase(md bool) string {
	code := func(s string) string {
		if md {
			return report.Code(s)
		}
		return s
	}
	id := r.Identity
	switch {
	case id.Keyless():
		return fmt.Sprintf("keyless as %s (issuer %s)", code(id.Subject), code(id.Issuer))
	case id.KeyRef != "":
		return fmt.Sprintf("with KMS key %s (fingerprint %s)", code(id.KeyRef), code(id.KeyFingerprint))
	default:
		return fmt.Sprintf("with key %s", code(id.KeyFingerprint))
	}
}

func (r *Result) tlogPhrase() string {
	if r.TlogUpload {
		return "recorded in the transparency log"
	}
	return "not recorded in a transparency log (tlog-upload: false)"
}

// Summary writes the sign section of the job summary.
func (r *Result) Summary(md *report.Markdown) {
	md.Heading(2, "Sign")
	md.Paragraph("Signed **%d** %s of %d %s %s · %s format · %s.",
		len(r.Signed), plural(len(r.Signed), "manifest", "manifests"), len(r.Images), plural(len(r.Images), "image", "images"),
		r.signerPhrase(true), report.Code(string(r.Format)), r.tlogPhrase())
	var rows [][]string
	for _, a := range r.Signatures {
		repo, digest, _ := strings.Cut(a.Subject, "@")
		rows = append(rows, []string{report.Code(repo), report.Code(digest), report.Escape(r.label(a)), report.Code(a.Reference), tlogCell(a.Tlog)})
	}
	md.Table([]string{"Repository", "Digest", "Platform", "Signature", "Transparency log"}, rows)
	if len(r.Attestations) > 0 {
		rows = rows[:0]
		for _, a := range r.Attestations {
			rows = append(rows, []string{report.Code(a.Subject), report.Code(shortType(a.PredicateType)), report.Code(a.Reference), tlogCell(a.Tlog)})
		}
		md.Paragraph("**Attestations** (%s)", report.Escape(strings.Join(r.attestationTypes(), ", ")))
		md.Table([]string{"Image", "Type", "Stored at", "Transparency log"}, rows)
	}
	var notes []string
	for _, res := range r.Resolved {
		if res.FromTag {
			notes = append(notes, fmt.Sprintf("%s resolved to %s: signed by digest", report.Code(res.Reference), report.Code(digestOf(res.Digest))))
		}
	}
	if len(notes) > 0 {
		md.Bullets(notes...)
	}
	if len(r.Commands) > 0 {
		md.Paragraph("**Verify with**")
		md.CodeBlock("sh", strings.Join(r.Commands, "\n"))
		if !r.Identity.Keyless() && r.Identity.KeyRef == "" {
			md.Paragraph("%s is the public half of the signing key.", report.Code(r.PublicKey))
		}
		if len(r.PrivateSigstore) > 0 {
			var urls []string
			for _, u := range r.PrivateSigstore {
				urls = append(urls, report.Code(u))
			}
			md.Paragraph("Signed through a private Sigstore (%s): give cosign that instance's trust root as well (%s).",
				strings.Join(urls, ", "), report.Code("--trusted-root=trusted_root.json"))
		}
	}
}

// Text is the CLI rendering.
func (r *Result) Text(w io.Writer) {
	fmt.Fprintf(w, "signed %d %s of %d %s %s, %s format, %s\n",
		len(r.Signed), plural(len(r.Signed), "manifest", "manifests"), len(r.Images), plural(len(r.Images), "image", "images"),
		r.signerPhrase(false), r.Format, r.tlogPhrase())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tPLATFORM\tSIGNATURE\tTLOG")
	for _, a := range r.Signatures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Subject, r.label(a), a.Reference, tlogText(a.Tlog))
	}
	for _, a := range r.Attestations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Subject, "attestation "+shortType(a.PredicateType), a.Reference, tlogText(a.Tlog))
	}
	tw.Flush()
	if len(r.Commands) > 0 {
		fmt.Fprintln(w, "verify with:")
		for _, c := range r.Commands {
			fmt.Fprintf(w, "  %s\n", c)
		}
	}
}

// logSignatures writes one log group per image with what was signed.
func (r *Result) logSignatures(log report.Logger) {
	for _, g := range r.groups() {
		end := log.Group("sign " + g[len(g)-1].Subject)
		for _, s := range g {
			log.Infof("signed %s (%s): %s%s", s.Subject, r.label(s), s.Reference, tlogNote(s.Tlog))
		}
		end()
	}
}

// groups splits the signatures per image asked for: each image's platform
// manifests come first, then the image itself.
func (r *Result) groups() [][]signer.Artifact {
	var out [][]signer.Artifact
	start := 0
	for i, a := range r.Signatures {
		if slices.Contains(r.Images, a.Subject) || i == len(r.Signatures)-1 {
			out = append(out, r.Signatures[start:i+1])
			start = i + 1
		}
	}
	return out
}

// label is a signature's platform, or what the manifest is.
func (r *Result) label(a signer.Artifact) string {
	if a.Platform != "" {
		return a.Platform
	}
	for _, g := range r.groups() {
		if last := g[len(g)-1]; last.Subject == a.Subject && len(g) > 1 {
			return "index"
		}
	}
	if slices.Contains(r.Images, a.Subject) {
		return "image"
	}
	return "manifest"
}

func (r *Result) attestationTypes() []string {
	var types []string
	for _, a := range r.Attestations {
		if t := shortType(a.PredicateType); !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	return types
}

// shortType names a predicate type the way cosign's --type does.
func shortType(uri string) string {
	switch uri {
	case "https://cosign.sigstore.dev/attestation/vuln/v1":
		return "vuln"
	case "https://cyclonedx.org/bom":
		return "cyclonedx"
	}
	return uri
}

func tlogCell(t *signer.TlogEntry) string {
	if t == nil {
		return "—"
	}
	return report.Link(fmt.Sprintf("#%d", t.Index), t.URL) + " · " + report.Escape(t.IntegratedTime.UTC().Format(time.RFC3339))
}

func tlogText(t *signer.TlogEntry) string {
	if t == nil {
		return "-"
	}
	return fmt.Sprintf("#%d", t.Index)
}

func tlogNote(t *signer.TlogEntry) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf(" (transparency log entry %d: %s)", t.Index, t.URL)
}

func digestOf(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	return ref
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
