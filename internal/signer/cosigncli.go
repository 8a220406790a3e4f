package signer

// The values below mirror cosign v2.6.5's cmd/cosign/cli/options. They are
// copied rather than imported: that package pulls in Kubernetes clients,
// cloud credential helpers and viper, whose package initialisation alone
// costs every run of this program tens of milliseconds.

import (
	"fmt"
	"net/url"

	"github.com/in-toto/in-toto-golang/in_toto"
	slsa02 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v0.2"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
)

// Public-good Sigstore endpoints, as the cosign CLI defaults them.
const (
	DefaultFulcioURL = "https://fulcio.sigstore.dev"
	DefaultRekorURL  = "https://rekor.sigstore.dev"
)

var predicateTypes = map[string]string{
	"custom":           attestation.CosignCustomProvenanceV01,
	"slsaprovenance":   slsa02.PredicateSLSAProvenance,
	"slsaprovenance02": slsa02.PredicateSLSAProvenance,
	"slsaprovenance1":  slsa1.PredicateSLSAProvenance,
	"spdx":             in_toto.PredicateSPDX,
	"spdxjson":         in_toto.PredicateSPDX,
	"cyclonedx":        in_toto.PredicateCycloneDX,
	"link":             in_toto.PredicateLinkV1,
	"vuln":             attestation.CosignVulnProvenanceV01,
	"openvex":          attestation.OpenVexNamespace,
}

func predicateTypeURI(t string) (string, error) {
	uri, ok := predicateTypes[t]
	if !ok {
		if _, err := url.ParseRequestURI(t); err != nil {
			return "", fmt.Errorf("invalid predicate type: %s", t)
		}
		uri = t
	}
	return uri, nil
}

func predicateShortName(uri string) (string, bool) {
	if _, ok := predicateTypes[uri]; ok {
		return uri, true
	}
	for _, name := range []string{"vuln", "cyclonedx", "spdxjson", "slsaprovenance1", "slsaprovenance02", "link", "openvex", "custom"} {
		if predicateTypes[name] == uri {
			return name, true
		}
	}
	return "", false
}
