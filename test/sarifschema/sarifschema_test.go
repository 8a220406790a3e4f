package sarifschema

import (
	"strings"
	"testing"
)

func TestValidateAcceptsAMinimalLogAndRejectsAMalformedOne(t *testing.T) {
	ok := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"registry"}},"results":[]}]}`
	if err := Validate([]byte(ok)); err != nil {
		t.Errorf("minimal log rejected: %v", err)
	}
	// A run without a tool, and a version the schema does not allow.
	bad := `{"version":"2.0.0","runs":[{"results":[]}]}`
	if err := Validate([]byte(bad)); err == nil || !strings.Contains(err.Error(), "SARIF 2.1.0 schema") {
		t.Errorf("malformed log: err = %v", err)
	}
	if err := Validate([]byte("{")); err == nil {
		t.Error("truncated JSON accepted")
	}
}
