package signer

// This is the only file that imports Cosign's cmd/ packages. They carry no
// API stability promise, so everything taken from them is kept here, small
// and easy to replace when Cosign moves things.

import (
	"github.com/sigstore/cosign/v2/cmd/cosign/cli/options"
)

// Public-good Sigstore endpoints, as the cosign CLI defaults them.
const (
	DefaultFulcioURL = options.DefaultFulcioURL
	DefaultRekorURL  = options.DefaultRekorURL
)

// predicateTypeURI maps cosign's short predicate names (vuln, cyclonedx,
// spdxjson, slsaprovenance, …) to their URIs and accepts URIs as they are.
func predicateTypeURI(t string) (string, error) {
	return options.ParsePredicateType(t)
}

// predicateShortName is the inverse of predicateTypeURI for the names cosign
// knows, so statements are built the way "cosign attest --type <name>" does.
// The second result is false for types cosign has no name for.
func predicateShortName(uri string) (string, bool) {
	if _, ok := options.PredicateTypeMap[uri]; ok {
		return uri, true
	}
	// Several names share a URI (spdx and spdxjson, slsaprovenance and
	// slsaprovenance02); prefer the JSON and versioned spellings cosign
	// documents first.
	for _, name := range []string{
		options.PredicateVuln, options.PredicateCycloneDX, options.PredicateSPDXJSON,
		options.PredicateSLSA1, options.PredicateSLSA02, options.PredicateLink,
		options.PredicateOpenVEX, options.PredicateCustom,
	} {
		if options.PredicateTypeMap[name] == uri {
			return name, true
		}
	}
	return "", false
}
