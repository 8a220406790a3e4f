package signer

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/test/fakesigstore"
)

// vulnPredicate is cosign's vulnerability-scan predicate as the scan stage
// builds it from a scan result.
const vulnPredicate = `{
  "invocation": {"parameters": null, "uri": "https://github.com/org/repo/actions/runs/1000", "event_id": "1000", "builder.id": "registry-actions"},
  "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.74.0", "version": "0.74.0",
    "db": {"uri": "ghcr.io/aquasecurity/trivy-db:2", "version": "2"},
    "result": {"SchemaVersion": 2, "Results": [{"Target": "alpine 3.19", "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-0001", "Severity": "HIGH"}]}]}},
  "metadata": {"scanStartedOn": "2026-01-01T00:00:00Z", "scanFinishedOn": "2026-01-01T00:00:05Z"}
}`

const cyclonedxSBOM = `{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
  "components": [{"type": "library", "name": "musl", "version": "1.2.4-r1", "purl": "pkg:apk/alpine/musl@1.2.4-r1"}]}`

const (
	vulnURI      = "https://cosign.sigstore.dev/attestation/vuln/v1"
	cyclonedxURI = "https://cyclonedx.org/bom"
)

func TestAttestations(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	kp := newKeyPair(t, "")
	fs := fakesigstore.Start(t)
	for i, format := range []Format{FormatLegacy, FormatBundle} {
		for _, mode := range []string{"key", "keyless"} {
			t.Run(string(format)+"/"+mode, func(t *testing.T) {
				f := pushIndex(t, host, "att"+string(format)+mode, uint64(40+i))
				opts, vopts := keyOptions(kp), VerifyOptions{PublicKey: kp.publicPath, IgnoreTlog: true, Recursive: true}
				if mode == "keyless" {
					opts, vopts = keylessOptions(fs), keylessVerifyOptions(fs)
				}
				opts.Format = format
				s := mustNew(t, opts)
				res, err := s.Sign(ctx, []name.Digest{f.index})
				if err != nil {
					t.Fatal(err)
				}
				// Each platform and the index, as the sign stage attests a
				// scanned index.
				both := []Attestation{
					{PredicateType: "vuln", Predicate: []byte(vulnPredicate)},
					{PredicateType: cyclonedxURI, Predicate: []byte(cyclonedxSBOM)},
				}
				ares, err := s.AttestAll(ctx, f.subjects(both))
				if err != nil {
					t.Fatalf("Attest: %v", err)
				}
				if len(ares.Attestations) != 6 || ares.Attestations[4].PredicateType != vulnURI || ares.Attestations[5].PredicateType != cyclonedxURI {
					t.Fatalf("attestations %+v", ares.Attestations)
				}
				for i, a := range ares.Attestations {
					if want := f.all()[i/2]; a.Subject != want {
						t.Fatalf("attestation %d is about %s, want %s", i, a.Subject, want)
					}
				}
				if format == FormatLegacy && !strings.HasSuffix(ares.Attestations[0].Reference, ".att") {
					t.Fatalf("legacy attestation reference %q", ares.Attestations[0].Reference)
				}
				if format == FormatBundle && ares.Attestations[0].Reference == ares.Attestations[1].Reference {
					t.Fatal("two bundles reported at one reference")
				}
				res.Merge(ares)
				if len(res.References()) != 9 {
					t.Fatalf("references %v", res.References())
				}
				cmds := res.VerifyCommands("")
				if len(cmds) != 3 || !strings.Contains(cmds[1], "verify-attestation --type=vuln") || !strings.Contains(cmds[2], "--type=cyclonedx") ||
					!strings.HasSuffix(cmds[1], strings.Join(f.all(), " ")) {
					t.Fatalf("commands %q", cmds)
				}

				vopts.RequireAttestations = []string{"vuln", "sbom"}
				vres, err := Verify(ctx, []name.Digest{f.index}, vopts)
				if err != nil {
					t.Fatalf("Verify with attestations: %v", err)
				}
				for _, iv := range vres.Images {
					var types []string
					for _, a := range iv.Attestations {
						if !a.Verified {
							t.Fatalf("attestation %+v not verified", a)
						}
						types = append(types, a.PredicateType)
					}
					sort.Strings(types) // referrers come in registry order
					if !reflect.DeepEqual(types, []string{vulnURI, cyclonedxURI}) {
						t.Fatalf("%s: attestation types %v", iv.Digest, types)
					}
					if len(iv.Signatures) != 1 {
						t.Fatalf("attestations counted as signatures: %+v", iv.Signatures)
					}
				}

				// Images with only the vuln attestation fail sbom, the
				// platforms as well as the index.
				g := pushIndex(t, host, "attmissing"+string(format)+mode, uint64(50+i))
				if _, err := s.Sign(ctx, []name.Digest{g.index}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.AttestAll(ctx, g.subjects([]Attestation{{PredicateType: "vuln", Predicate: []byte(vulnPredicate)}})); err != nil {
					t.Fatal(err)
				}
				vres, err = Verify(ctx, []name.Digest{g.index}, vopts)
				var verr *VerificationError
				if !errors.As(err, &verr) || vres.Verified || verr.Failed != 3 {
					t.Fatalf("missing sbom: err %v", err)
				}
				for _, iv := range vres.Images {
					if !reflect.DeepEqual(iv.MissingAttestations, []string{"sbom"}) || iv.Reason != "missing attestation: sbom" {
						t.Fatalf("%s: missing %v, reason %q", iv.Digest, iv.MissingAttestations, iv.Reason)
					}
				}
				// Attested on the index only, the platforms miss both.
				h := pushIndex(t, host, "attindexonly"+string(format)+mode, uint64(70+i))
				if _, err := s.Sign(ctx, []name.Digest{h.index}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Attest(ctx, h.index, both); err != nil {
					t.Fatal(err)
				}
				vres, _ = Verify(ctx, []name.Digest{h.index}, vopts)
				if !vres.Images[0].Verified || vres.Images[1].Reason != "missing attestation: vuln, sbom" || vres.Images[2].Verified {
					t.Fatalf("index-only attestations: %+v", vres.Images)
				}
			})
		}
	}
}

func TestAttestRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	f := pushIndex(t, host, "badatt", 60)
	s := mustNew(t, keyOptions(newKeyPair(t, "")))
	if _, err := s.Attest(ctx, f.index, []Attestation{{PredicateType: "vuln", Predicate: []byte("not json")}}); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("non-JSON predicate: %v", err)
	}
	if _, err := s.Attest(ctx, f.index, []Attestation{{PredicateType: "no such type", Predicate: []byte("{}")}}); err == nil {
		t.Fatal("unknown predicate type accepted")
	}
	if _, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: "x.pub", RequireAttestations: []string{"bogus type"}}); err == nil || !strings.Contains(err.Error(), "require-attestations") {
		t.Fatalf("bad required type: %v", err)
	}
}
