package sign

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/registry-actions/registry/internal/signer"
)

// Attestation kinds the attest input accepts.
const (
	AttestVuln = "vuln"
	AttestSBOM = "sbom"
)

// Predicate types as cosign names them ("cosign verify-attestation --type").
const (
	vulnPredicateType = "vuln"      // https://cosign.sigstore.dev/attestation/vuln/v1
	sbomPredicateType = "cyclonedx" // https://cyclonedx.org/bom
)

// vulnPredicate is cosign's vulnerability-scan predicate
// (https://cosign.sigstore.dev/attestation/vuln/v1), the shape "cosign attest
// --type vuln" and "trivy --format cosign-vuln" produce.
type vulnPredicate struct {
	Invocation vulnInvocation `json:"invocation"`
	Scanner    vulnScanner    `json:"scanner"`
	Metadata   vulnMetadata   `json:"metadata"`
}

type vulnInvocation struct {
	Parameters any    `json:"parameters"`
	URI        string `json:"uri"`
	EventID    string `json:"event_id"`
	BuilderID  string `json:"builder.id"`
}

type vulnScanner struct {
	URI     string          `json:"uri"`
	Version string          `json:"version"`
	DB      vulnDB          `json:"db"`
	Result  json.RawMessage `json:"result"`
}

type vulnDB struct {
	URI     string `json:"uri"`
	Version string `json:"version"`
}

type vulnMetadata struct {
	ScanStartedOn  time.Time `json:"scanStartedOn"`
	ScanFinishedOn time.Time `json:"scanFinishedOn"`
}

// trivyReport is the part of a Trivy JSON report the predicate describes.
type trivyReport struct {
	SchemaVersion int       `json:"SchemaVersion"`
	CreatedAt     time.Time `json:"CreatedAt"`
	Trivy         struct {
		Version string `json:"Version"`
	} `json:"Trivy"`
	ArtifactName string          `json:"ArtifactName"`
	Results      json.RawMessage `json:"Results"`
}

// vulnAttestation builds cosign's vuln predicate around a Trivy JSON report.
// The whole report is the scanner's result, so a verifier sees exactly what
// the scan saw. Trivy's report names its version and creation time but not
// its database, so db is left empty, as "trivy --format cosign-vuln" does.
func vulnAttestation(path string, run RunInfo) (signer.Attestation, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return signer.Attestation{}, fmt.Errorf("cannot read the Trivy JSON report %s: %w", path, unwrapPathError(err))
	}
	var rep trivyReport
	if err := json.Unmarshal(raw, &rep); err != nil || rep.SchemaVersion == 0 {
		return signer.Attestation{}, fmt.Errorf("%s is not a Trivy JSON report (trivy --format json, or scan's json output)", path)
	}
	started := rep.CreatedAt
	if started.IsZero() {
		if fi, err := os.Stat(path); err == nil {
			started = fi.ModTime()
		}
	}
	version := strings.TrimPrefix(rep.Trivy.Version, "v")
	scannerURI := "pkg:github/aquasecurity/trivy"
	if version != "" {
		scannerURI += "@" + version
	}
	pred := vulnPredicate{
		Invocation: vulnInvocation{URI: run.RunURL, EventID: run.RunID, BuilderID: run.Builder},
		Scanner:    vulnScanner{URI: scannerURI, Version: version, Result: json.RawMessage(raw)},
		Metadata:   vulnMetadata{ScanStartedOn: started.UTC(), ScanFinishedOn: started.UTC()},
	}
	b, err := json.Marshal(pred)
	if err != nil {
		return signer.Attestation{}, fmt.Errorf("vuln predicate from %s: %w", path, err)
	}
	return signer.Attestation{PredicateType: vulnPredicateType, Predicate: b}, nil
}

// sbomAttestation attests a CycloneDX JSON SBOM as it is.
func sbomAttestation(path string) (signer.Attestation, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return signer.Attestation{}, fmt.Errorf("cannot read the CycloneDX SBOM %s: %w", path, unwrapPathError(err))
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(raw, &bom); err != nil || bom.BOMFormat != "CycloneDX" {
		return signer.Attestation{}, fmt.Errorf("%s is not a CycloneDX JSON SBOM (bomFormat \"CycloneDX\")", path)
	}
	return signer.Attestation{PredicateType: sbomPredicateType, Predicate: raw}, nil
}

// unwrapPathError drops the operation and path *os.PathError repeats.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
