package inputs

import "slices"

// Output names. Every stage's result emits its outputs under these names
// only; a test (test/e2e TestEveryStageWritesTheOutputsTheTableDeclares)
// fails when a stage emits a name the table below does not declare for it,
// or never emits one it declares.
const (
	// push
	OutDigest    = "digest"
	OutImageID   = "imageid"
	OutImages    = "images"
	OutTags      = "tags"
	OutPlatforms = "platforms"
	OutMetadata  = "metadata"

	// scan
	OutResult        = "result"
	OutCritical      = "critical"
	OutHigh          = "high"
	OutMedium        = "medium"
	OutLow           = "low"
	OutUnknown       = "unknown"
	OutFixable       = "fixable"
	OutSARIF         = "sarif"
	OutJSON          = "json"
	OutSBOM          = "sbom"
	OutSARIFCategory = "sarif-category"

	// sign
	OutSigned               = "signed"
	OutSignatures           = "signatures"
	OutCosignVerifyCommands = "cosign-verify-commands"

	// verify
	OutVerified = "verified"

	// clean
	OutDeleted      = "deleted"
	OutDeletedCount = "deleted-count"
	OutKeptCount    = "kept-count"
	OutFailed       = "failed"
	OutPlan         = "plan"
	OutPolicy       = "policy"
	OutInventory    = "inventory"
)

// OutputFormat says what an output's value looks like, so that text from
// outside the workflow file is neutralised to fit it before it is written.
type OutputFormat int

const (
	SingleLine   OutputFormat = iota // a single line: newlines are escaped
	LineList                         // one item per line: an item cannot hold a newline
	JSONDocument                     // a JSON document (its encoding escapes control characters)
)

// Output is one step output.
//
// A stage writes its outputs when it succeeds and when it ran to a gate's
// verdict (exit code 3: scan's fail-on, a failed verification, clean's
// max-deletions), since then the values describe work that was done. When
// the stage fails (exit code 1 or 2), an output is written only if OnFailure
// says what it then holds, so that a later `if: always()` step never acts on
// a digest that was not pushed or a signature that was not written.
type Output struct {
	Name        string
	Description string
	Stages      []Stage
	Format      OutputFormat
	// When, if set, is the condition under which a stage that succeeds
	// writes this output (e.g. "with mode: enforce"); empty means always.
	When string
	// OnFailure is what the output holds when its stage fails part-way;
	// empty means it is not written then.
	OnFailure string
}

// AllOutputs returns every step output, in the order the README and
// action.yml list them.
func AllOutputs() []Output {
	return []Output{
		// push
		{Name: OutDigest, Stages: []Stage{Push}, Format: SingleLine,
			Description: "Digest of the pushed image (the same at every target).",
			OnFailure:   "the digest, when at least one target completed (holds the image and all its tags); nothing when none did"},
		{Name: OutImageID, Stages: []Stage{Push}, Format: SingleLine,
			Description: "Config digest of the image (of the first platform for an index).",
			OnFailure:   "the config digest, when at least one target completed"},
		{Name: OutImages, Stages: []Stage{Push}, Format: LineList,
			Description: "Pushed images as repository@digest, one per line.",
			OnFailure:   "only the targets that completed: those that did not are absent"},
		{Name: OutTags, Stages: []Stage{Push}, Format: LineList,
			Description: "Full references pushed, one per line.",
			OnFailure:   "the references of the targets that completed"},
		{Name: OutPlatforms, Stages: []Stage{Push}, Format: SingleLine,
			Description: "Platforms of the pushed image, comma-separated.",
			OnFailure:   "the platforms, when at least one target completed"},
		{Name: OutMetadata, Stages: []Stage{Push}, Format: JSONDocument,
			Description: "JSON: per target the reference, digest, media type, platforms, size, bytes uploaded/skipped/mounted and duration.",
			OnFailure:   "only the targets that completed; not written when none did"},
		// scan
		{Name: OutResult, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "pass or fail, by fail-on."},
		{Name: OutCritical, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "CRITICAL findings (unique vulnerability × package, plus failed configuration checks, after filters)."},
		{Name: OutHigh, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "HIGH findings."},
		{Name: OutMedium, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "MEDIUM findings."},
		{Name: OutLow, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "LOW findings."},
		{Name: OutUnknown, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "UNKNOWN-severity findings."},
		{Name: OutFixable, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "Findings with a fixed version available."},
		{Name: OutSARIF, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "Path of the SARIF file (one run per image, per configuration scan, per repository with scanner: inspector), relative to the working directory."},
		{Name: OutJSON, Stages: []Stage{Scan}, Format: LineList,
			Description: "Paths of the Trivy JSON reports, one per platform and one per configuration scan (a cluster scan adds its workload table), one per line (scanner: ecr or inspector: their findings per image)."},
		{Name: OutSBOM, Stages: []Stage{Scan}, Format: LineList,
			Description: "Paths of the CycloneDX SBOMs, one per platform, one per line."},
		{Name: OutSARIFCategory, Stages: []Stage{Scan}, Format: SingleLine,
			Description: "Code-scanning category of the image's SARIF run (several runs, e.g. images and configuration: the prefix their categories share), for github/codeql-action/upload-sarif."},

		// sign
		{Name: OutSigned, Stages: []Stage{Sign}, Format: LineList,
			Description: "Digests signed, one per line.",
			OnFailure:   "the digests signed before the failure (an index only after all its platforms)"},
		{Name: OutSignatures, Stages: []Stage{Sign}, Format: LineList,
			Description: "References of the signature and attestation artifacts, one per line.",
			OnFailure:   "the signatures and attestations written before the failure"},
		{Name: OutCosignVerifyCommands, Stages: []Stage{Sign}, Format: LineList,
			Description: "cosign verify commands that check these signatures, one per line."},

		// verify
		{Name: OutVerified, Stages: []Stage{Verify}, Format: SingleLine,
			Description: "true when every image and platform verified; false when verification ran and something did not verify (exit code 3)."},

		// clean
		{Name: OutDeleted, Stages: []Stage{Clean}, Format: LineList,
			Description: "Manifests deleted, as repository@digest, one per line.",
			When:        "with mode: enforce",
			OnFailure:   "with mode: enforce, the manifests deleted before deleting stopped (not written when a listing failed first)"},
		{Name: OutDeletedCount, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Number of manifests deleted (preview: that the plan would delete).",
			When:        "with mode: preview or enforce",
			OnFailure:   "with mode: enforce, the number deleted before deleting stopped"},
		{Name: OutKeptCount, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Number of manifests kept.",
			When:        "with mode: preview or enforce",
			OnFailure:   "with mode: enforce, when every repository was evaluated before deleting stopped"},
		{Name: OutFailed, Stages: []Stage{Clean}, Format: LineList,
			Description: "Planned deletions that did not happen (refused, dropped by the re-check, or kept because their index or subject stayed), as repository@digest, one per line.",
			When:        "with mode: enforce",
			OnFailure:   "with mode: enforce, the planned deletions that did not happen"},
		{Name: OutPlan, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Path of the JSON plan: every expired image with its tags, age and rule, what goes with it, and the state of each deletion (the next run finishes what a stopped run left).",
			When:        "with mode: preview, apply or enforce",
			OnFailure:   "the plan file, when it was written before the failure (enforce writes it before deleting and after each repository)"},
		{Name: OutPolicy, Stages: []Stage{Clean}, Format: JSONDocument,
			Description: "The effective lifecycle policy JSON (the shorthand inputs compiled), ready to paste into ECR.",
			When:        "when a policy or shorthand inputs are given (mode: list may have none)",
			OnFailure:   "the effective policy, whenever one was given"},
		{Name: OutInventory, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Path of the JSON repository inventory: every image, newest push first, with tags, digest, push time (or the creation time used), size, platforms, attached signatures and attestations, and the rule that keeps or expires it.",
			When:        "once every repository was listed (not with mode: apply)",
			OnFailure:   "the inventory, when every repository was listed before the failure"},
	}
}

// OutputsOf returns the outputs a stage declares, in table order.
func OutputsOf(st Stage) []Output {
	var out []Output
	for _, o := range AllOutputs() {
		if slices.Contains(o.Stages, st) {
			out = append(out, o)
		}
	}
	return out
}

// LookupOutput returns the table row of a stage's output.
func LookupOutput(st Stage, name string) (Output, bool) {
	for _, o := range OutputsOf(st) {
		if o.Name == name {
			return o, true
		}
	}
	return Output{}, false
}
