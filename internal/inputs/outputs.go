package inputs

import "slices"

// Output names. Every stage's result emits its outputs under these names
// only; a test fails when a stage emits a name the table below does not
// declare for it, or never emits one it declares.
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
type Output struct {
	Name        string
	Description string
	Stages      []Stage
	Format      OutputFormat
}

// AllOutputs returns every step output, in the order the README and
// action.yml list them.
func AllOutputs() []Output {
	return []Output{
		// push
		{Name: OutDigest, Stages: []Stage{Push}, Format: SingleLine,
			Description: "Digest of the pushed image (the same at every target). Written only when at least one target completed (holds the image and all its tags)."},
		{Name: OutImageID, Stages: []Stage{Push}, Format: SingleLine,
			Description: "Config digest of the image (of the first platform for an index). Written only when at least one target completed."},
		{Name: OutImages, Stages: []Stage{Push}, Format: LineList,
			Description: "Pushed images as repository@digest, one per line: only the targets that completed, so after a partial failure the ones that did not are absent."},
		{Name: OutTags, Stages: []Stage{Push}, Format: LineList,
			Description: "Full references pushed, one per line, of the targets that completed."},
		{Name: OutPlatforms, Stages: []Stage{Push}, Format: SingleLine,
			Description: "Platforms of the pushed image, comma-separated. Written only when at least one target completed."},
		{Name: OutMetadata, Stages: []Stage{Push}, Format: JSONDocument,
			Description: "JSON: per completed target the reference, digest, media type, platforms, size, bytes uploaded/skipped/mounted and duration; targets that failed are left out, and a push that completed nowhere writes no metadata."},
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
			Description: "Digests signed, one per line."},
		{Name: OutSignatures, Stages: []Stage{Sign}, Format: LineList,
			Description: "References of the signature and attestation artifacts, one per line."},
		{Name: OutCosignVerifyCommands, Stages: []Stage{Sign}, Format: LineList,
			Description: "cosign verify commands that check these signatures, one per line."},

		// verify
		{Name: OutVerified, Stages: []Stage{Verify}, Format: SingleLine,
			Description: "true when every image and platform verified."},

		// clean
		{Name: OutDeleted, Stages: []Stage{Clean}, Format: LineList,
			Description: "enforce: manifests deleted, as repository@digest, one per line; when deleting stopped midway, those deleted before it stopped. Not written by list, preview or apply, nor when the listing failed."},
		{Name: OutDeletedCount, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Number of manifests deleted (preview: that the plan would delete). Not written when a listing failed or was inconsistent (nothing deleted)."},
		{Name: OutKeptCount, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Number of manifests kept. Written only when every repository was evaluated."},
		{Name: OutFailed, Stages: []Stage{Clean}, Format: LineList,
			Description: "enforce: planned deletions that did not happen (refused, dropped by the re-check, or kept because their index or subject stayed), as repository@digest, one per line."},
		{Name: OutPlan, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Path of the JSON plan: every expired image with its tags, age and rule, what goes with it, and the state of each deletion (the next run finishes what a stopped run left). Written once the plan file is."},
		{Name: OutPolicy, Stages: []Stage{Clean}, Format: JSONDocument,
			Description: "The effective lifecycle policy JSON (the shorthand inputs compiled), ready to paste into ECR. Written whenever a policy was given, even if the run failed later."},
		{Name: OutInventory, Stages: []Stage{Clean}, Format: SingleLine,
			Description: "Path of the JSON repository inventory: every image, newest push first, with tags, digest, push time (or the creation time used), size, platforms, attached signatures and attestations, and the rule that keeps or expires it. Written once every repository was listed."},
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
