package scan

import (
	"os"
	"testing"

	"github.com/registry-actions/registry/test/fakeecr"
)

// The Inspector tests use the real AWS SDK: keep it away from this
// machine's AWS configuration.
func TestMain(m *testing.M) {
	fakeecr.IsolateAWS()
	os.Exit(m.Run())
}
