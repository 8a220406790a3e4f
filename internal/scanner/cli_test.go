package scanner

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aquasecurity/trivy/pkg/types"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

// TestTrivyCLIAgrees scans the sample index with the `trivy image` CLI built
// from the same Trivy module version and compares its findings with the
// engine's, platform by platform. It needs the CLI binary:
//
//	GOBIN=/some/dir go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0
//	TRIVY_CLI=/some/dir/trivy go test -run TestTrivyCLIAgrees ./internal/scanner/
func TestTrivyCLIAgrees(t *testing.T) {
	cli := os.Getenv("TRIVY_CLI")
	if cli == "" {
		t.Skip("TRIVY_CLI is not set")
	}
	host := startRegistry(t, nil)
	ref := pushIndex(t, host, "demo/app")
	pushDB(t, host, "mirror/trivy-db:2", vulndb.MetadataAt(time.Now()))

	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, offlineOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	// The CLI downloads the DB from the loopback registry, as the engine does.
	cliCache := t.TempDir()
	for _, p := range res.Images[0].Platforms {
		cmd := exec.Command(cli, "image", "--quiet", "--format", "json", "--scanners", "vuln",
			"--cache-dir", cliCache, "--db-repository", host+"/mirror/trivy-db:2", "--skip-java-db-update",
			"--skip-version-check", "--disable-telemetry", "--insecure", "--image-src", "remote",
			"--platform", p.Platform, ref.String())
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				t.Fatalf("trivy image %s: %v\n%s", p.Platform, err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var rep types.Report
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatal(err)
		}
		diffRows(t, "CLI vs engine on "+p.Platform, rowsOf(findingsOf(rep, p.Platform)), rowsOf(platformFindings(p)))
	}
}
