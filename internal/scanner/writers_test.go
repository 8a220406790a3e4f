package scanner

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

func TestTrivyJSONAndCycloneDXFromOneScan(t *testing.T) {
	o := offlineOptions(t)
	o.Severities = []string{"CRITICAL", "HIGH"}
	res := scanFixture(t, o)
	p := res.Images[0].Platforms[0] // Alpine
	ctx := context.Background()

	// JSON first: Trivy's JSON writer clears packages of the report it gets,
	// which must not reach the SBOM written next.
	var js bytes.Buffer
	if err := WriteTrivyJSON(ctx, &js, p.Report); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		SchemaVersion int
		ArtifactName  string
		Results       []struct {
			Target          string
			Vulnerabilities []struct{ VulnerabilityID, Severity string }
		}
	}
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			ids = append(ids, v.VulnerabilityID)
			if v.Severity != "CRITICAL" && v.Severity != "HIGH" {
				t.Errorf("JSON lists %s %s despite the severity filter", v.Severity, v.VulnerabilityID)
			}
		}
	}
	slices.Sort(ids)
	if want := []string{"CVE-2099-0001", "CVE-2099-0002", "CVE-2099-0002", "CVE-2099-1001"}; rep.SchemaVersion != 2 || rep.ArtifactName != res.Images[0].Reference || !slices.Equal(ids, want) {
		t.Errorf("JSON: schema %d, artifact %s, vulnerabilities %v; want %v", rep.SchemaVersion, rep.ArtifactName, ids, want)
	}

	var cdx bytes.Buffer
	if err := WriteCycloneDX(ctx, &cdx, p.Report); err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			PURL    string `json:"purl"`
		} `json:"components"`
		Vulnerabilities []struct {
			ID string `json:"id"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(cdx.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range bom.Components {
		names = append(names, c.Name)
	}
	for _, want := range []string{"musl", "busybox", "alpine-baselayout", "lodash", "express"} {
		if !slices.Contains(names, want) {
			t.Errorf("SBOM lacks component %s: %v", want, names)
		}
	}
	var vulns []string
	for _, v := range bom.Vulnerabilities {
		vulns = append(vulns, v.ID)
	}
	if bom.BOMFormat != "CycloneDX" || !slices.Contains(vulns, "CVE-2099-0001") || slices.Contains(vulns, "CVE-2099-0004") {
		t.Errorf("SBOM format %q vulnerabilities %v", bom.BOMFormat, vulns)
	}

	// The kept report is unchanged for the next writer.
	pkgs := 0
	for _, r := range p.Report.Results {
		pkgs += len(r.Packages)
	}
	if pkgs != len(vulndb.AlpinePackages)+len(vulndb.NpmPackages) {
		t.Errorf("report keeps %d packages, want %d", pkgs, len(vulndb.AlpinePackages)+len(vulndb.NpmPackages))
	}
}

func secretImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := "GITHUB_TOKEN=ghp_" + strings.Repeat("a1B2c3D4e5", 3) + "F6g7H8\n"
	_ = tw.WriteHeader(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "app/deploy.env", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
	_, _ = io.WriteString(tw, content)
	_ = tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	base, err := vulndb.AlpineImage()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestSecretScanner(t *testing.T) {
	host := startRegistry(t, nil)
	ref := pushImage(t, host, "demo/leaky", secretImage(t))

	o := offlineOptions(t)
	o.Scanners = []string{"vuln", "secret"}
	res, err := Scan(context.Background(), []Target{RemoteTarget(ref)}, o)
	if err != nil {
		t.Fatal(err)
	}
	var secrets []Finding
	for _, f := range res.Images[0].Findings {
		if f.Kind == KindSecret {
			secrets = append(secrets, f)
		}
	}
	if len(secrets) != 1 || secrets[0].ID != "github-pat" || secrets[0].PkgPath != "/app/deploy.env" || secrets[0].Severity != "CRITICAL" || secrets[0].Line != 1 {
		t.Fatalf("secrets = %+v", secrets)
	}
	if failed, verdict := gate(t, res, "CRITICAL"); !failed || verdict != "failed: 2 CRITICAL (fail-on: CRITICAL)" {
		t.Errorf("gate = %v %q (musl and the token)", failed, verdict)
	}

	var buf bytes.Buffer
	if _, err := WriteSARIF(&buf, res, SARIFOptions{}); err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, buf.Bytes())
	if !strings.Contains(buf.String(), `"uri": "app/deploy.env"`) || strings.Contains(buf.String(), "a1B2c3D4e5a1B2") {
		t.Error("SARIF must locate the secret by file and must not contain it")
	}

	// Without the secret scanner, the token is not looked for.
	res, err = Scan(context.Background(), []Target{RemoteTarget(ref)}, offlineOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Images[0].Findings {
		if f.Kind == KindSecret {
			t.Errorf("secret reported with scanners=vuln: %+v", f)
		}
	}
}
