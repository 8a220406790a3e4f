package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/signer"
	"github.com/registry-actions/registry/test/fakesigstore"
)

// trivyJSON is a Trivy JSON report as "trivy image --format json" writes it.
const trivyJSON = `{
  "SchemaVersion": 2,
  "Trivy": {"Version": "0.74.0"},
  "CreatedAt": "2026-01-02T03:04:05.123456789Z",
  "ArtifactName": "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
  "ArtifactType": "container_image",
  "Results": [{"Target": "app (alpine 3.19.1)", "Class": "os-pkgs", "Type": "alpine",
    "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-0001", "PkgName": "musl", "InstalledVersion": "1.2.4-r1", "FixedVersion": "1.2.4-r3", "Severity": "HIGH"}]}]
}`

const cycloneDX = `{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
  "components": [{"type": "library", "name": "musl", "version": "1.2.4-r1", "purl": "pkg:apk/alpine/musl@1.2.4-r1"}]}`

var testRun = RunInfo{
	Repository:  "acme/app",
	Commit:      "0123456789abcdef0123456789abcdef01234567",
	WorkflowRef: "acme/app/.github/workflows/release.yml@refs/heads/main",
	RunURL:      "https://github.com/acme/app/actions/runs/42",
	RunID:       "42",
	Builder:     "registry-action/test",
}

// env is a registry with a pushed two-platform index and a key pair.
type env struct {
	reg      *registry.Client
	host     string
	tag      string // host/app:v1
	index    name.Digest
	children []string
	key, pub string // files
	password string
	dir      string
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, 1, 512, 5)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(host+"/app:v1", name.Insecure)
	if err := synth.Push(context.Background(), tag, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	im, _ := idx.IndexManifest()
	e := env{reg: registry.New(registry.Options{}), host: host, tag: tag.String(), index: tag.Context().Digest(d.String()), password: "correct horse", dir: t.TempDir()}
	for _, m := range im.Manifests {
		e.children = append(e.children, tag.Context().Digest(m.Digest.String()).String())
	}
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(e.password), nil })
	if err != nil {
		t.Fatal(err)
	}
	e.key, e.pub = filepath.Join(e.dir, "release.key"), filepath.Join(e.dir, "release.pub")
	os.WriteFile(e.key, kb.PrivateBytes, 0o600)
	os.WriteFile(e.pub, kb.PublicBytes, 0o644)
	return e
}

func (e env) signOptions() Options {
	return Options{
		Images:   []string{e.tag},
		Signer:   signer.Options{Key: e.key, KeyPassword: e.password, Recursive: true},
		Run:      testRun,
		Registry: e.reg,
	}
}

func (e env) verifyOptions() VerifyOptions {
	return VerifyOptions{
		Images:   []string{e.tag},
		Verify:   signer.VerifyOptions{PublicKey: e.pub, IgnoreTlog: true, Recursive: true},
		Registry: e.reg,
	}
}

// recorder is a Logger that keeps what was logged.
type recorder struct{ lines []string }

func (r *recorder) Infof(f string, a ...any) {
	r.lines = append(r.lines, "info: "+fmt.Sprintf(f, a...))
}
func (r *recorder) Warnf(f string, a ...any) {
	r.lines = append(r.lines, "warn: "+fmt.Sprintf(f, a...))
}
func (r *recorder) Group(t string) func() {
	r.lines = append(r.lines, "group: "+t)
	return func() { r.lines = append(r.lines, "endgroup") }
}
func (r *recorder) String() string { return strings.Join(r.lines, "\n") }

func isInvalid(err error) bool {
	var inv *failure.InvalidError
	return errors.As(err, &inv)
}

func TestSignTagResolvesAndSignsEveryPlatformThenVerifies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, format := range []signer.Format{signer.FormatLegacy, signer.FormatBundle} {
		t.Run(string(format), func(t *testing.T) {
			e := e
			if format == signer.FormatBundle {
				e = newEnv(t)
			}
			rec := &recorder{}
			opts := e.signOptions()
			opts.Signer.Format = format
			opts.Annotations = map[string]string{"env": "prod", "commit": "overridden"}
			opts.Log = rec
			res, err := Run(ctx, opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := append(append([]string{}, e.children...), e.index.String())
			if strings.Join(res.Signed, " ") != strings.Join(want, " ") {
				t.Fatalf("signed %v, want children then index %v", res.Signed, want)
			}
			if len(res.Resolved) != 1 || !res.Resolved[0].FromTag || res.Resolved[0].Digest != e.index.String() {
				t.Fatalf("resolved %+v", res.Resolved)
			}
			if !strings.Contains(rec.String(), e.tag+" resolved to "+e.index.DigestStr()) {
				t.Errorf("the log does not say which digest the tag resolved to:\n%s", rec)
			}
			if strings.Count(rec.String(), "group: sign ") != 1 || !strings.Contains(rec.String(), "(linux/arm64)") || !strings.Contains(rec.String(), "(index)") {
				t.Errorf("log:\n%s", rec)
			}
			outs := outputs(res.Outputs())
			if outs["signed"] != strings.Join(want, "\n") || len(strings.Split(outs["signatures"], "\n")) != 3 {
				t.Fatalf("outputs %v", outs)
			}
			if cmd := outs["cosign-verify-commands"]; !strings.Contains(cmd, "--key="+strings.TrimSuffix(e.key, ".key")+".pub") || !strings.Contains(cmd, e.index.String()) || !strings.Contains(cmd, "--insecure-ignore-tlog=true") {
				t.Fatalf("verify command %q", cmd)
			}

			var md report.Markdown
			res.Summary(&md)
			for _, s := range []string{"## Sign", "Signed **3** manifests of 1 image", res.Identity.KeyFingerprint, "linux/amd64", "| `" + e.index.Context().String() + "` |", "```sh", "cosign verify", "resolved to"} {
				if !strings.Contains(md.String(), s) {
					t.Errorf("summary lacks %q:\n%s", s, md.String())
				}
			}

			vrec := &recorder{}
			vopts := e.verifyOptions()
			vopts.Log = vrec
			vres, err := Verify(ctx, vopts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !vres.Verified || len(vres.Images) != 3 || outputs(vres.Outputs())["verified"] != "true" {
				t.Fatalf("verify result %+v", vres)
			}
			for _, iv := range vres.Images {
				ann := iv.Signatures[0].Annotations
				if ann["env"] != "prod" || ann["commit"] != "overridden" || ann["repository"] != "acme/app" || ann["run"] != testRun.RunURL || ann["workflow"] != testRun.WorkflowRef {
					t.Fatalf("%s: annotations %v", iv.Digest, ann)
				}
			}
			md = report.Markdown{}
			vres.Summary(&md)
			for _, s := range []string{"## Verify", "✅ **Verified**: 3 manifests of 1 image", "| index | ✅ verified |", "linux/arm64", "key sha256:", "Signed annotations", "env=prod"} {
				if !strings.Contains(md.String(), s) {
					t.Errorf("verify summary lacks %q:\n%s", s, md.String())
				}
			}
			var text bytes.Buffer
			vres.Text(&text)
			if !strings.HasPrefix(text.String(), "verified 3 manifests of 1 image") {
				t.Errorf("text:\n%s", text.String())
			}
		})
	}
}

func TestVerifyFailuresAreGateErrorsWithTheReason(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)

	// Nothing signed yet.
	vres, err := Verify(ctx, e.verifyOptions())
	var gate *failure.GateError
	if !errors.As(err, &gate) || vres == nil || vres.Verified || !strings.Contains(err.Error(), "no signature") {
		t.Fatalf("unsigned: %v", err)
	}
	if outputs(vres.Outputs())["verified"] != "false" {
		t.Fatal("verified output is not false")
	}
	var md report.Markdown
	vres.Summary(&md)
	if !strings.Contains(md.String(), "❌ **Not verified**") || !strings.Contains(md.String(), "no signature") {
		t.Fatalf("summary:\n%s", md.String())
	}

	if _, err := Run(ctx, e.signOptions()); err != nil {
		t.Fatal(err)
	}
	// Another key: the signature does not verify.
	kb, _ := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return nil, nil })
	vopts := e.verifyOptions()
	vopts.Verify.PublicKey = string(kb.PublicBytes)
	_, err = Verify(ctx, vopts)
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("other key: %v", err)
	}
	// Required attestations that were never made.
	vopts = e.verifyOptions()
	vopts.Verify.RequireAttestations = []string{"vuln"}
	_, err = Verify(ctx, vopts)
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "missing attestation: vuln") {
		t.Fatalf("missing attestation: %v", err)
	}
	// A key signature where an identity is required.
	vopts = e.verifyOptions()
	vopts.Verify.PublicKey = ""
	vopts.Verify.CertificateIdentity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	vopts.TrustedRoot = writeFile(t, "trusted_root.json", emptyTrustedRoot(t))
	_, err = Verify(ctx, vopts)
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "wrong identity") {
		t.Fatalf("identity required: %v", err)
	}
}

func TestVerifyBadInputs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cases := map[string]struct {
		mutate func(*VerifyOptions)
		want   string
	}{
		"nothing to check against": {func(o *VerifyOptions) { o.Verify.PublicKey = "" }, "set certificate-identity"},
		"key and identity":         {func(o *VerifyOptions) { o.Verify.CertificateIdentity = "x" }, "not both"},
		"bad regexp": {func(o *VerifyOptions) {
			o.Verify.PublicKey, o.Verify.CertificateIdentityRegexp = "", "(["
		}, "not a regular expression"},
		"missing key file":    {func(o *VerifyOptions) { o.Verify.PublicKey = filepath.Join(e.dir, "nope.pub") }, "public-key"},
		"unknown attestation": {func(o *VerifyOptions) { o.Verify.RequireAttestations = []string{"nonsense"} }, "require-attestations"},
		"trusted root unreadable": {func(o *VerifyOptions) {
			o.Verify.PublicKey, o.Verify.CertificateIdentity, o.TrustedRoot = "", "x", filepath.Join(e.dir, "none.json")
		}, "cannot read trusted-root"},
		"trusted root not one": {func(o *VerifyOptions) {
			o.Verify.PublicKey, o.Verify.CertificateIdentity, o.TrustedRoot = "", "x", e.pub
		}, "is not a Sigstore trusted_root.json"},
		"image missing": {func(o *VerifyOptions) { o.Images = []string{e.host + "/app:nope"} }, "image not found"},
		"no images":     {func(o *VerifyOptions) { o.Images = nil }, `input "images" is required`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			o := e.verifyOptions()
			c.mutate(&o)
			_, err := Verify(ctx, o)
			if !isInvalid(err) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want an invalid-input error containing %q", err, c.want)
			}
		})
	}
}

func TestSignBadInputsAndKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cases := map[string]struct {
		mutate  func(*Options)
		want    string
		invalid bool
	}{
		"wrong password": {func(o *Options) { o.Signer.KeyPassword = "wrong" }, "check key-password", true},
		"unreadable key": {func(o *Options) { o.Signer.Key = filepath.Join(e.dir, "missing.key") }, "cannot read key file", true},
		"not a key":      {func(o *Options) { o.Signer.Key = e.pub }, "key", true},
		"keyless no token": {func(o *Options) {
			o.Signer.Key, o.Signer.KeyPassword, o.Signer.IDToken = "", "", signer.GitHubActionsToken("", "")
		}, "id-token: write", true},
		"password no key":   {func(o *Options) { o.Signer.Key = "" }, "key-password is set but key is not", true},
		"bad format":        {func(o *Options) { o.Signer.Format = "v3" }, "use legacy or bundle", true},
		"bad attest":        {func(o *Options) { o.Attest = []string{"slsa"} }, "use vuln, sbom", true},
		"vuln without scan": {func(o *Options) { o.Attest = []string{"vuln"} }, "set vuln-file", true},
		"vuln file not trivy": {func(o *Options) {
			o.Attest, o.VulnFile = []string{"vuln"}, writeFile(t, "x.json", cycloneDX)
		}, "is not a Trivy JSON report", true},
		"sbom file not cyclonedx": {func(o *Options) {
			o.Attest, o.SBOMFile = []string{"sbom"}, writeFile(t, "y.json", trivyJSON)
		}, "is not a CycloneDX JSON SBOM", true},
		"sbom file missing": {func(o *Options) {
			o.Attest, o.SBOMFile = []string{"sbom"}, filepath.Join(e.dir, "none.json")
		}, "cannot read the CycloneDX SBOM", true},
		"tag missing": {func(o *Options) { o.Images = []string{e.host + "/app:v9"} }, "image not found", true},
		"digest missing": {func(o *Options) {
			o.Images = []string{e.index.Context().Digest("sha256:" + strings.Repeat("ab", 32)).String()}
		}, "image not found", true},
		"fulcio unreachable": {func(o *Options) {
			env := fakesigstore.Start(t).Env()
			o.Signer = signer.Options{FulcioURL: "http://127.0.0.1:1", ServiceAttempts: 2, ServiceRetryWait: 1e6,
				IDToken: signer.GitHubActionsToken(env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])}
		}, "Fulcio at http://127.0.0.1:1 unreachable after 2 attempts", false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			o := e.signOptions()
			c.mutate(&o)
			res, err := Run(ctx, o)
			if err == nil || res != nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v (result %v), want an error containing %q", err, res, c.want)
			}
			if isInvalid(err) != c.invalid {
				t.Fatalf("%v: invalid input %v, want %v", err, isInvalid(err), c.invalid)
			}
			if strings.Contains(err.Error(), e.password) {
				t.Fatal("the key password is in the error")
			}
		})
	}
}

func TestSignRekorUnreachableSignsNothingAndSaysSo(t *testing.T) {
	e := newEnv(t)
	o := e.signOptions()
	o.Signer.TlogUpload, o.Signer.RekorURL = true, "http://127.0.0.1:1"
	o.Signer.ServiceAttempts, o.Signer.ServiceRetryWait = 2, 1e6
	res, err := Run(context.Background(), o)
	if err == nil || res != nil || isInvalid(err) {
		t.Fatalf("got %v, %v", err, res)
	}
	for _, want := range []string{"Rekor at http://127.0.0.1:1 unreachable", "signed: none", "not signed: " + e.children[0]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestAttestationsFromFiles(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	o := e.signOptions()
	o.Attest = []string{AttestVuln, AttestSBOM}
	o.VulnFile = writeFile(t, "trivy.json", trivyJSON)
	o.SBOMFile = writeFile(t, "sbom.cdx.json", cycloneDX)
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Attestations) != 2 || res.Attestations[0].Subject != e.index.String() {
		t.Fatalf("attestations %+v", res.Attestations)
	}
	if len(res.Commands) != 3 || !strings.Contains(res.Commands[1], "verify-attestation --type=vuln") {
		t.Fatalf("commands %q", res.Commands)
	}
	var md report.Markdown
	res.Summary(&md)
	if !strings.Contains(md.String(), "**Attestations** (vuln, cyclonedx)") {
		t.Fatalf("summary:\n%s", md.String())
	}
	// The files describe the image named, the index: its platforms carry
	// none (TestVerifyRequiresAttestationsOnEveryPlatform).
	vo := e.verifyOptions()
	vo.Verify.RequireAttestations = []string{"vuln", "sbom"}
	vo.Verify.Recursive = false
	if _, err := Verify(ctx, vo); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestReportsOfTheChainWinOverFiles(t *testing.T) {
	e := newEnv(t)
	o := e.signOptions()
	o.Attest = []string{AttestVuln}
	o.VulnFile = filepath.Join(e.dir, "never-read.json")
	// Scanned in another repository, same digest (push wrote two targets).
	o.Reports = []Report{{Image: "other.example/app@" + e.index.DigestStr(), TrivyJSON: writeFile(t, "trivy.json", trivyJSON)}}
	d, _ := name.NewDigest(e.index.String(), name.Insecure)
	atts, err := attestations(o, []name.Digest{d})
	if err != nil {
		t.Fatal(err)
	}
	var pred vulnPredicate
	if len(atts) != 1 || atts[0].Image.String() != d.String() || len(atts[0].Attestations) != 1 {
		t.Fatalf("attestations %+v, want one on the image", atts)
	}
	if err := json.Unmarshal(atts[0].Attestations[0].Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	if pred.Scanner.URI != "pkg:github/aquasecurity/trivy@0.74.0" || pred.Scanner.Version != "0.74.0" {
		t.Fatalf("scanner %+v", pred.Scanner)
	}
	if pred.Invocation.URI != testRun.RunURL || pred.Invocation.EventID != "42" || pred.Invocation.BuilderID != "registry-action/test" {
		t.Fatalf("invocation %+v", pred.Invocation)
	}
	if got := pred.Metadata.ScanFinishedOn.Format("2006-01-02T15:04:05"); got != "2026-01-02T03:04:05" {
		t.Fatalf("metadata %+v", pred.Metadata)
	}
	var result map[string]any
	if err := json.Unmarshal(pred.Scanner.Result, &result); err != nil || result["ArtifactType"] != "container_image" {
		t.Fatalf("the Trivy report is not the scanner result: %v %v", result, err)
	}
}

// trivySBOM is a CycloneDX SBOM as Trivy writes it: bom-refs are package
// URLs (the same on every platform for arch-independent packages), which
// dependencies and vulnerabilities refer to.
const trivySBOM = `{"bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": "urn:uuid:PLATFORM", "version": 1,
  "metadata": {"timestamp": "2026-01-02T03:04:05+00:00", "component": {"bom-ref": "root-PLATFORM", "type": "container", "name": "app"}},
  "components": [{"bom-ref": "pkg:npm/left-pad@1.3.0", "type": "library", "name": "left-pad", "version": "1.3.0", "purl": "pkg:npm/left-pad@1.3.0"}],
  "dependencies": [{"ref": "root-PLATFORM", "dependsOn": ["pkg:npm/left-pad@1.3.0"]}, {"ref": "pkg:npm/left-pad@1.3.0", "dependsOn": []}],
  "vulnerabilities": [{"id": "CVE-2024-0002", "ratings": [{"score": 7.5, "severity": "high"}], "affects": [{"ref": "pkg:npm/left-pad@1.3.0"}]}]}`

// perPlatformReports are the reports a chain's scan hands sign for e's
// index: one per platform, each naming its platform manifest.
func perPlatformReports(t *testing.T, e env) []Report {
	t.Helper()
	var out []Report
	for i, platform := range []string{"linux/amd64", "linux/arm64"} {
		arch := strings.TrimPrefix(platform, "linux/")
		_, digest, _ := strings.Cut(e.children[i], "@")
		out = append(out, Report{Image: e.index.String(), Platform: platform, Digest: digest,
			TrivyJSON: writeFile(t, arch+".trivy.json", strings.Replace(trivyJSON, `"Target": "app (alpine 3.19.1)"`, `"Target": "`+arch+` (alpine 3.19.1)"`, 1)),
			SBOM:      writeFile(t, arch+".cdx.json", strings.ReplaceAll(trivySBOM, "PLATFORM", arch))})
	}
	return out
}

func TestAnIndexScannedPerPlatformIsAttestedOnEachPlatformAndOnceOnTheIndex(t *testing.T) {
	e := newEnv(t)
	o := e.signOptions()
	o.Attest = []string{AttestVuln, AttestSBOM}
	o.VulnFile = filepath.Join(e.dir, "never-read.json")
	o.Reports = append(perPlatformReports(t, e),
		Report{Image: "other.example/app@sha256:" + strings.Repeat("1", 64), TrivyJSON: writeFile(t, "other.json", trivyJSON)})
	d, _ := name.NewDigest(e.index.String(), name.Insecure)
	atts, err := attestations(o, []name.Digest{d})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, s := range atts {
		subjects = append(subjects, s.Image.String())
		if len(s.Attestations) != 2 || s.Attestations[0].PredicateType != vulnPredicateType || s.Attestations[1].PredicateType != sbomPredicateType {
			t.Fatalf("%s gets %+v, want one vuln and one SBOM attestation", s.Image, s.Attestations)
		}
	}
	if want := append(slices.Clone(e.children), e.index.String()); !slices.Equal(subjects, want) {
		t.Fatalf("attested %q, want each platform then the index %q", subjects, want)
	}
	// Each platform's vuln attestation holds that platform's report.
	for i, arch := range []string{"amd64", "arm64"} {
		var pred vulnPredicate
		json.Unmarshal(atts[i].Attestations[0].Predicate, &pred)
		var rep struct{ Results []struct{ Target string } }
		if err := json.Unmarshal(pred.Scanner.Result, &rep); err != nil || len(rep.Results) != 1 || rep.Results[0].Target != arch+" (alpine 3.19.1)" {
			t.Fatalf("%s attestation holds %+v (%v)", arch, rep, err)
		}
	}

	// The index's vuln predicate lists both reports, and all their results.
	var pred vulnPredicate
	if err := json.Unmarshal(atts[2].Attestations[0].Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	var scanned struct {
		ArtifactName string
		Results      []struct{ Target string }
		Platforms    []struct {
			Platform, Digest string
			Report           struct{ Results []struct{ Target string } }
		}
	}
	if err := json.Unmarshal(pred.Scanner.Result, &scanned); err != nil {
		t.Fatal(err)
	}
	if scanned.ArtifactName != d.String() || len(scanned.Results) != 2 || scanned.Results[1].Target != "arm64 (alpine 3.19.1)" || len(scanned.Platforms) != 2 {
		t.Fatalf("index vuln result %+v", scanned)
	}
	for i, p := range scanned.Platforms {
		if p.Platform != o.Reports[i].Platform || p.Digest != o.Reports[i].Digest || len(p.Report.Results) != 1 {
			t.Fatalf("platform %d: %+v", i, p)
		}
	}
	if pred.Scanner.Version != "0.74.0" || pred.Invocation.URI != testRun.RunURL {
		t.Fatalf("index vuln predicate %+v", pred)
	}

	// The index's SBOM nests each platform's, every bom-ref distinct and
	// every reference pointing at one of them.
	var bom struct {
		BOMFormat, SpecVersion, SerialNumber string
		Metadata                             struct{ Component map[string]any }
		Components                           []struct {
			BOMRef     string `json:"bom-ref"`
			Properties []struct{ Name, Value string }
			Components []struct {
				BOMRef string `json:"bom-ref"`
			}
		}
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
		Vulnerabilities []struct {
			Affects []struct{ Ref string }
		}
	}
	if err := json.Unmarshal(atts[2].Attestations[1].Predicate, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") || bom.Metadata.Component["bom-ref"] != d.String() || len(bom.Components) != 2 {
		t.Fatalf("index SBOM %+v", bom)
	}
	refs := map[string]bool{d.String(): true}
	for i, c := range bom.Components {
		platform := map[string]string{}
		for _, p := range c.Properties {
			platform[p.Name] = p.Value
		}
		if platform[propertyPlatform] != o.Reports[i].Platform || platform[propertyDigest] != o.Reports[i].Digest || len(c.Components) != 1 {
			t.Fatalf("platform component %+v", c)
		}
		for _, ref := range []string{c.BOMRef, c.Components[0].BOMRef} {
			if refs[ref] {
				t.Fatalf("bom-ref %q appears twice", ref)
			}
			refs[ref] = true
		}
	}
	if len(bom.Dependencies) != 5 || len(bom.Dependencies[0].DependsOn) != 2 || len(bom.Vulnerabilities) != 2 {
		t.Fatalf("dependencies %+v vulnerabilities %+v", bom.Dependencies, bom.Vulnerabilities)
	}
	for _, dep := range bom.Dependencies {
		for _, ref := range append([]string{dep.Ref}, dep.DependsOn...) {
			if !refs[ref] {
				t.Fatalf("dependency on %q, which no component is", ref)
			}
		}
	}
	for _, v := range bom.Vulnerabilities {
		if !refs[v.Affects[0].Ref] {
			t.Fatalf("vulnerability affects %q, which no component is", v.Affects[0].Ref)
		}
	}

	// Scanned under another repository (push wrote two targets): that
	// repository's reports, once each.
	o.Reports = nil
	for _, repo := range []string{"a.example/app", "b.example/app"} {
		for _, r := range perPlatformReports(t, e) {
			r.Image = repo + "@" + e.index.DigestStr()
			o.Reports = append(o.Reports, r)
		}
	}
	o.Reports = o.Reports[:3]
	o.Attest = []string{AttestVuln}
	if atts, err = attestations(o, []name.Digest{d}); err != nil || len(atts) != 3 || len(atts[2].Attestations) != 1 {
		t.Fatalf("%+v, %v; want the two platforms of a.example and the index", atts, err)
	}
	if atts[0].Image.Context().String() != d.Context().String() {
		t.Fatalf("platform attested in %s, want the signed repository %s", atts[0].Image.Context(), d.Context())
	}
}

// TestVerifyRequiresAttestationsOnEveryPlatform signs an index attested
// from a chain's per-platform reports and checks verify finds them on each
// platform and the index; attested on the index alone, the platforms fail.
func TestVerifyRequiresAttestationsOnEveryPlatform(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	o := e.signOptions()
	o.Attest = []string{AttestVuln, AttestSBOM}
	o.Reports = perPlatformReports(t, e)
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Attestations) != 6 {
		t.Fatalf("%d attestations, want a vuln and an SBOM on each platform and on the index", len(res.Attestations))
	}
	all := strings.Join(append(slices.Clone(e.children), e.index.String()), " ")
	if len(res.Commands) != 3 || !strings.HasPrefix(res.Commands[1], "cosign verify-attestation --type=vuln --key=") ||
		!strings.HasSuffix(res.Commands[1], all) || !strings.HasSuffix(res.Commands[2], all) {
		t.Fatalf("commands %q, want one verify-attestation per type naming %s", res.Commands, all)
	}
	vo := e.verifyOptions()
	vo.Verify.RequireAttestations = []string{"vuln", "sbom"}
	vres, err := Verify(ctx, vo)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, iv := range vres.Images {
		if len(iv.Attestations) != 2 {
			t.Fatalf("%s (%s): attestations %+v", iv.Digest, iv.Platform, iv.Attestations)
		}
	}

	// Attested on the index only (from files): each platform misses both.
	f := newEnv(t)
	o = f.signOptions()
	o.Attest = []string{AttestVuln, AttestSBOM}
	o.VulnFile, o.SBOMFile = writeFile(t, "trivy.json", trivyJSON), writeFile(t, "sbom.cdx.json", cycloneDX)
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	vo = f.verifyOptions()
	vo.Verify.RequireAttestations = []string{"vuln", "sbom"}
	vres, err = Verify(ctx, vo)
	var gate *failure.GateError
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "missing attestation: vuln, sbom") || !strings.Contains(err.Error(), "and 1 more") {
		t.Fatalf("verify of platforms without attestations: %v", err)
	}
	if !vres.Images[0].Verified || vres.Images[1].Verified || vres.Images[2].Verified {
		t.Fatalf("verdicts %+v, want the index verified and both platforms not", vres.Images)
	}
	// Not recursive: only the index is asked.
	vo.Verify.Recursive = false
	if _, err := Verify(ctx, vo); err != nil {
		t.Fatalf("the index alone: %v", err)
	}
}

func TestAnnotationsAndHints(t *testing.T) {
	got, err := ParseAnnotations([]string{"env=prod", " team = web ", "empty="})
	if err != nil || got["env"] != "prod" || got["team"] != "web" || got["empty"] != "" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"novalue", "=x"} {
		if _, err := ParseAnnotations([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	ann := RunInfo{Repository: "acme/app"}.Annotations(nil)
	if len(ann) != 1 || ann["repository"] != "acme/app" {
		t.Fatalf("absent run values must be skipped: %v", ann)
	}
	for key, want := range map[string]string{
		"keys/cosign.key": "keys/cosign.pub", "env://COSIGN_KEY": "cosign.pub", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----": "cosign.pub",
		"awskms:///alias/x": "", "": "", "signing.pem": "cosign.pub",
	} {
		if got := PublicKeyHint(key); got != want {
			t.Errorf("PublicKeyHint(%q) = %q, want %q", key, got, want)
		}
	}
}

func outputs(outs []report.Output) map[string]string {
	m := map[string]string{}
	for _, o := range outs {
		m[o.Name] = o.Value
	}
	return m
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// emptyTrustedRoot trusts no CA: any certificate identity check fails.
func emptyTrustedRoot(t *testing.T) string {
	t.Helper()
	return `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`
}

func TestRefusedWritesNameThePermission(t *testing.T) {
	// The signer flattens registry errors to text; the registry's own error
	// code still tells a refusal.
	err := &signer.PartialError{
		Signed:    []string{"ghcr.io/acme/app@sha256:" + strings.Repeat("1", 64)},
		NotSigned: []string{"ghcr.io/acme/app@sha256:" + strings.Repeat("2", 64)},
		Err:       errors.New("sign ghcr.io/acme/app@sha256:222: PUT https://ghcr.io/v2/acme/app/manifests/sha256-222.sig: DENIED: permission_denied: write_package"),
	}
	msg := signerCause(err).Error()
	if !strings.Contains(msg, "write signatures to ghcr.io/acme/app: denied (403)") || !strings.Contains(msg, "packages: write") || !strings.Contains(msg, "not signed: ") {
		t.Fatalf("message %q", msg)
	}
	if got := signerCause(errors.New("sign x: connection reset")); got.Error() != "sign x: connection reset" {
		t.Fatalf("an unrelated error changed: %v", got)
	}
}

func TestNewKeyPairSignsAndVerifies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	kp, err := NewKeyPair("demo-password")
	if err != nil {
		t.Fatal(err)
	}
	o := e.signOptions()
	o.Signer.Key, o.Signer.KeyPassword = string(kp.PrivatePEM), "demo-password"
	if _, err := Run(ctx, o); err != nil {
		t.Fatalf("sign with the new key: %v", err)
	}
	vo := e.verifyOptions()
	vo.Verify.PublicKey = string(kp.PublicPEM)
	if _, err := Verify(ctx, vo); err != nil {
		t.Fatalf("verify with the new key: %v", err)
	}
	if res, _ := Verify(ctx, e.verifyOptions()); res.Verified {
		t.Fatal("another key verified the new key's signatures")
	}
}
