package sign

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/uuid"

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
	rep, err := readTrivyReport(path)
	if err != nil {
		return signer.Attestation{}, err
	}
	return vulnPredicateAttestation(rep.raw, rep.Trivy.Version, rep.started, rep.started, run)
}

// trivyFile is a Trivy JSON report read from disk.
type trivyFile struct {
	trivyReport
	raw     []byte
	started time.Time
}

func readTrivyReport(path string) (trivyFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return trivyFile{}, fmt.Errorf("cannot read the Trivy JSON report %s: %w", path, unwrapPathError(err))
	}
	f := trivyFile{raw: raw}
	if err := json.Unmarshal(raw, &f.trivyReport); err != nil || f.SchemaVersion == 0 {
		return trivyFile{}, fmt.Errorf("%s is not a Trivy JSON report (trivy --format json, or scan's json output)", path)
	}
	f.started = f.CreatedAt
	if f.started.IsZero() {
		if fi, err := os.Stat(path); err == nil {
			f.started = fi.ModTime()
		}
	}
	return f, nil
}

func vulnPredicateAttestation(result json.RawMessage, trivyVersion string, started, finished time.Time, run RunInfo) (signer.Attestation, error) {
	version := strings.TrimPrefix(trivyVersion, "v")
	scannerURI := "pkg:github/aquasecurity/trivy"
	if version != "" {
		scannerURI += "@" + version
	}
	pred := vulnPredicate{
		Invocation: vulnInvocation{URI: run.RunURL, EventID: run.RunID, BuilderID: run.Builder},
		Scanner:    vulnScanner{URI: scannerURI, Version: version, Result: result},
		Metadata:   vulnMetadata{ScanStartedOn: started.UTC(), ScanFinishedOn: finished.UTC()},
	}
	b, err := json.Marshal(pred)
	if err != nil {
		return signer.Attestation{}, fmt.Errorf("vuln predicate: %w", err)
	}
	return signer.Attestation{PredicateType: vulnPredicateType, Predicate: b}, nil
}

// indexAttestation is the one attestation of kind an index gets when its
// platforms were scanned one by one: its predicate lists what each
// platform's own attestation holds.
func indexAttestation(kind string, index name.Digest, platforms []Report, run RunInfo) (signer.Attestation, error) {
	if kind == AttestVuln {
		return indexVulnAttestation(index, platforms, run)
	}
	return indexSBOMAttestation(index, platforms)
}

// indexScan is the scanner result of an index's vuln predicate: each
// platform's Trivy report whole, and every platform's results together
// under Results, so that a policy written for one image's report
// (scanner.result.Results[].Vulnerabilities[]) sees the findings of every
// platform on the index as well.
type indexScan struct {
	SchemaVersion int               `json:"SchemaVersion"`
	ArtifactName  string            `json:"ArtifactName"`
	ArtifactType  string            `json:"ArtifactType"`
	Results       []json.RawMessage `json:"Results"`
	Platforms     []platformScan    `json:"Platforms"`
}

// platformScan is one platform's report in an index's vuln predicate.
type platformScan struct {
	Platform string          `json:"Platform"`
	Digest   string          `json:"Digest"`
	Report   json.RawMessage `json:"Report"`
}

func indexVulnAttestation(index name.Digest, platforms []Report, run RunInfo) (signer.Attestation, error) {
	scan := indexScan{SchemaVersion: 2, ArtifactName: index.String(), ArtifactType: "container_image", Results: []json.RawMessage{}}
	var started, finished time.Time
	version := ""
	for _, p := range platforms {
		rep, err := readTrivyReport(p.TrivyJSON)
		if err != nil {
			return signer.Attestation{}, err
		}
		var results []json.RawMessage
		if len(rep.Results) > 0 && string(rep.Results) != "null" {
			if err := json.Unmarshal(rep.Results, &results); err != nil {
				return signer.Attestation{}, fmt.Errorf("%s: Results is not a list: %w", p.TrivyJSON, err)
			}
		}
		scan.Results = append(scan.Results, results...)
		scan.Platforms = append(scan.Platforms, platformScan{Platform: p.Platform, Digest: p.Digest, Report: rep.raw})
		if started.IsZero() || rep.started.Before(started) {
			started = rep.started
		}
		if rep.started.After(finished) {
			finished = rep.started
		}
		version = cmp.Or(version, rep.Trivy.Version)
	}
	result, err := json.Marshal(scan)
	if err != nil {
		return signer.Attestation{}, fmt.Errorf("vuln predicate for %s: %w", index, err)
	}
	return vulnPredicateAttestation(result, version, started, finished, run)
}

// sbomAttestation attests a CycloneDX JSON SBOM as it is.
func sbomAttestation(path string) (signer.Attestation, error) {
	raw, err := readCycloneDX(path)
	if err != nil {
		return signer.Attestation{}, err
	}
	return signer.Attestation{PredicateType: sbomPredicateType, Predicate: raw}, nil
}

func readCycloneDX(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CycloneDX SBOM %s: %w", path, unwrapPathError(err))
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(raw, &bom); err != nil || bom.BOMFormat != "CycloneDX" {
		return nil, fmt.Errorf("%s is not a CycloneDX JSON SBOM (bomFormat \"CycloneDX\")", path)
	}
	return raw, nil
}

// Property names the index's SBOM gives each platform's component.
const (
	propertyPlatform = "registry-actions:platform"
	propertyDigest   = "registry-actions:digest"
)

// indexSBOMAttestation is one CycloneDX BOM for an index: the index is the
// BOM's subject (metadata.component) and each platform's SBOM becomes one
// container component of it, with that SBOM's components nested inside,
// its dependencies and vulnerabilities kept, and every bom-ref prefixed with
// the platform's digest so that packages both platforms hold stay distinct.
func indexSBOMAttestation(index name.Digest, platforms []Report) (signer.Attestation, error) {
	root := index.String()
	var (
		components, dependencies, vulnerabilities []any
		platformRefs                              []any
		specVersion, timestamp                    string
		tools                                     any
		serials                                   = root
	)
	for _, p := range platforms {
		raw, err := readCycloneDX(p.SBOM)
		if err != nil {
			return signer.Attestation{}, err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // keep numbers exactly as written
		var bom map[string]any
		if err := dec.Decode(&bom); err != nil {
			return signer.Attestation{}, fmt.Errorf("%s: %w", p.SBOM, err)
		}
		prefix := p.Digest + "/"
		prefixRefs(bom, prefix)
		meta, _ := bom["metadata"].(map[string]any)
		component, _ := meta["component"].(map[string]any)
		if component == nil {
			component = map[string]any{"type": "container", "name": index.Context().String()}
		}
		ref, _ := component["bom-ref"].(string)
		if ref == "" {
			ref = prefix + "image"
			component["bom-ref"] = ref
		}
		props, _ := component["properties"].([]any)
		component["properties"] = append(props,
			map[string]any{"name": propertyPlatform, "value": p.Platform},
			map[string]any{"name": propertyDigest, "value": p.Digest})
		if nested, ok := bom["components"].([]any); ok {
			component["components"] = nested
		}
		components = append(components, component)
		platformRefs = append(platformRefs, ref)
		if deps, ok := bom["dependencies"].([]any); ok {
			dependencies = append(dependencies, deps...)
		}
		if vulns, ok := bom["vulnerabilities"].([]any); ok {
			vulnerabilities = append(vulnerabilities, vulns...)
		}
		if v, _ := bom["specVersion"].(string); v > specVersion {
			specVersion = v
		}
		if ts, _ := meta["timestamp"].(string); ts > timestamp {
			timestamp = ts
		}
		if tools == nil {
			tools = meta["tools"]
		}
		serial, _ := bom["serialNumber"].(string)
		serials += "\n" + serial
	}
	metadata := map[string]any{"component": map[string]any{
		"bom-ref": root, "type": "container", "name": index.Context().String(), "version": index.DigestStr(),
	}}
	if timestamp != "" {
		metadata["timestamp"] = timestamp
	}
	if tools != nil {
		metadata["tools"] = tools
	}
	bom := map[string]any{
		"bomFormat":   "CycloneDX",
		"specVersion": cmp.Or(specVersion, "1.5"),
		// The same platform SBOMs always make the same index SBOM.
		"serialNumber": "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte(serials)).String(),
		"version":      1,
		"metadata":     metadata,
		"components":   components,
		"dependencies": append([]any{map[string]any{"ref": root, "dependsOn": platformRefs}}, dependencies...),
	}
	if len(vulnerabilities) > 0 {
		bom["vulnerabilities"] = vulnerabilities
	}
	b, err := json.Marshal(bom)
	if err != nil {
		return signer.Attestation{}, fmt.Errorf("SBOM for %s: %w", index, err)
	}
	return signer.Attestation{PredicateType: sbomPredicateType, Predicate: b}, nil
}

// prefixRefs prefixes every reference to a bom-ref in a CycloneDX document:
// bom-ref itself, ref (dependencies, a vulnerability's affects) and
// dependsOn.
func prefixRefs(v any, prefix string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch k {
			case "bom-ref", "ref":
				if s, ok := val.(string); ok {
					x[k] = prefix + s
					continue
				}
			case "dependsOn":
				if list, ok := val.([]any); ok {
					for i, e := range list {
						if s, ok := e.(string); ok {
							list[i] = prefix + s
						}
					}
					continue
				}
			}
			prefixRefs(val, prefix)
		}
	case []any:
		for _, e := range x {
			prefixRefs(e, prefix)
		}
	}
}

// unwrapPathError drops the operation and path *os.PathError repeats.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
