package scanner

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/aquasecurity/trivy/pkg/report"
	"github.com/aquasecurity/trivy/pkg/report/cyclonedx"
	"github.com/aquasecurity/trivy/pkg/types"
)

// Trivy JSON and CycloneDX are written per platform: each file is exactly
// what `trivy image --platform <p> --format json|cyclonedx` produces for that
// platform, so existing Trivy tooling reads it unchanged. A merged report
// would attribute packages to the wrong platform, and an SBOM describes one
// filesystem. Callers name the files after image and platform.

// WriteTrivyJSON writes one platform's report with Trivy's own JSON writer.
func WriteTrivyJSON(ctx context.Context, w io.Writer, rep types.Report) error {
	jw := report.JSONWriter{Output: w}
	if err := jw.Write(ctx, cloneReport(rep)); err != nil {
		return fmt.Errorf("write Trivy JSON for %s: %w", rep.ArtifactName, err)
	}
	return nil
}

// WriteCycloneDX writes one platform's SBOM, with its vulnerabilities, with
// Trivy's own CycloneDX writer.
func WriteCycloneDX(ctx context.Context, w io.Writer, rep types.Report) error {
	cw := cyclonedx.NewWriter(w, trivyVersion())
	if err := cw.Write(ctx, cloneReport(rep)); err != nil {
		return fmt.Errorf("write CycloneDX SBOM for %s: %w", rep.ArtifactName, err)
	}
	return nil
}

// cloneReport copies what Trivy's writers modify in place (the JSON writer
// clears Packages, the SBOM encoder fills identifiers), since one scan feeds
// several writers.
func cloneReport(rep types.Report) types.Report {
	rep.Results = slices.Clone(rep.Results)
	for i := range rep.Results {
		rep.Results[i].Packages = slices.Clone(rep.Results[i].Packages)
		rep.Results[i].Vulnerabilities = slices.Clone(rep.Results[i].Vulnerabilities)
	}
	return rep
}
