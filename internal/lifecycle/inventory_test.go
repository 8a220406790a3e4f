package lifecycle

import "testing"

func TestSubjectFromCosignTag(t *testing.T) {
	hex64 := "1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
	hex128 := hex64 + hex64
	cases := []struct {
		tag, digest, kind string
		ok                bool
	}{
		{"sha256-" + hex64 + ".sig", "sha256:" + hex64, TagKindSignature, true},
		{"sha256-" + hex64 + ".att", "sha256:" + hex64, TagKindAttestation, true},
		{"sha256-" + hex64 + ".sbom", "sha256:" + hex64, TagKindSBOM, true},
		{"sha256-" + hex64, "sha256:" + hex64, TagKindReferrers, true},
		{"sha512-" + hex128 + ".sig", "sha512:" + hex128, TagKindSignature, true},
		{"sha256-" + hex64[:63] + ".sig", "", "", false},  // too short
		{"sha256-" + hex64 + "0.sig", "", "", false},      // too long
		{"sha256-" + hex64[:63] + "G.sig", "", "", false}, // not hex
		{"sha256-" + hex64[:63] + "A.sig", "", "", false}, // upper case is not a digest
		{"sha256-" + hex64 + ".sig.old", "", "", false},   // another suffix
		{"sha1-" + hex64[:40] + ".sig", "", "", false},    // unknown algorithm
		{"sha256:" + hex64, "", "", false},                // a digest, not a tag
		{"v1.2.3", "", "", false},
		{"", "", "", false},
	}
	for _, c := range cases {
		d, k, ok := SubjectFromCosignTag(c.tag)
		if d != c.digest || k != c.kind || ok != c.ok {
			t.Errorf("SubjectFromCosignTag(%q) = %q, %q, %v; want %q, %q, %v", c.tag, d, k, ok, c.digest, c.kind, c.ok)
		}
	}
}
