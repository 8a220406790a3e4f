package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/oidc"
	"github.com/registry-actions/registry/test/fakesigstore"
	"github.com/registry-actions/registry/test/harness"
)

const (
	signUser     = "ci"
	signPassword = "pass-for-signing-registry"
	keyPassword  = "key-password-do-not-print"
	runURL       = "https://github.com/acme/app/actions/runs/42"
)

// signSetup is a TLS registry with basic auth, a workspace holding an
// encrypted cosign key pair, and the variables to reach the registry.
type signSetup struct {
	reg        *harness.Registry
	ws         string
	privatePEM string
	env        map[string]string
}

func newSignSetup(t *testing.T) signSetup {
	t.Helper()
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: map[string]string{signUser: signPassword}})
	ws := t.TempDir()
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(keyPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ws, "cosign.key"), kb.PrivateBytes, 0o600)
	os.WriteFile(filepath.Join(ws, "cosign.pub"), kb.PublicBytes, 0o644)
	return signSetup{reg: reg, ws: ws, privatePEM: string(kb.PrivateBytes), env: map[string]string{"SSL_CERT_FILE": reg.CAFile}}
}

// signFixture is a pushed two-platform index.
type signFixture struct {
	tag      string // host/repo:v1
	index    string // host/repo@sha256:…
	children []string
}

func (f signFixture) all() []string { return append(append([]string{}, f.children...), f.index) }

func (s signSetup) remoteOptions() []remote.Option {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.reg.Pool()}
	return []remote.Option{remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: signUser, Password: signPassword})}
}

func (s signSetup) push(t *testing.T, repo string, seed uint64) signFixture {
	t.Helper()
	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, 1, 4096, seed)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(s.reg.Host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Push(context.Background(), tag, idx, s.remoteOptions()...); err != nil {
		t.Fatalf("push fixture: %v", err)
	}
	d, _ := idx.Digest()
	im, _ := idx.IndexManifest()
	f := signFixture{tag: tag.String(), index: tag.Context().Digest(d.String()).String()}
	for _, m := range im.Manifests {
		f.children = append(f.children, tag.Context().Digest(m.Digest.String()).String())
	}
	return f
}

// run runs one step with the registry's credentials and CA.
func (s signSetup) run(t *testing.T, in map[string]string, extraEnv ...map[string]string) harness.Result {
	t.Helper()
	inputs := map[string]string{"registry-username": signUser, "registry-password": signPassword}
	for k, v := range in {
		inputs[k] = v
	}
	env := map[string]string{}
	for _, m := range append([]map[string]string{s.env}, extraEnv...) {
		for k, v := range m {
			env[k] = v
		}
	}
	return harness.Run(t, harness.Step{Dir: s.ws, Inputs: inputs, Env: env})
}

// noSecrets fails when a credential, the private key or the key password
// reached the log, an output or the summary.
func (s signSetup) noSecrets(t *testing.T, res harness.Result, more ...string) {
	t.Helper()
	secrets := append([]string{signPassword, keyPassword}, more...)
	// Any line of the key's base64 body would give it away.
	for _, line := range strings.Split(s.privatePEM, "\n") {
		if len(line) > 40 && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line)
		}
	}
	for _, secret := range secrets {
		if leaks(res, secret) {
			t.Fatalf("a secret (%.6s…) reached the log, an output or the summary", secret)
		}
	}
}

// tags lists the repository's tags straight from the registry.
func (s signSetup) tags(t *testing.T, ref string) []string {
	t.Helper()
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(d.Context(), s.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

func sigTag(ref, suffix string) string {
	_, digest, _ := strings.Cut(ref, "@")
	return strings.Replace(digest, ":", "-", 1) + "." + suffix
}

func mustSucceed(t *testing.T, what string, res harness.Result) {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("%s: exit %d\n%s", what, res.Code, res.Log())
	}
}

func TestSignAndVerifyAnIndexWithAKeyInBothFormats(t *testing.T) {
	s := newSignSetup(t)
	for i, format := range []string{"legacy", "bundle"} {
		t.Run(format, func(t *testing.T) {
			f := s.push(t, "app-"+format, uint64(10+i))
			res := s.run(t, map[string]string{
				"stage": "sign", "images": f.tag, "key": "cosign.key", "key-password": keyPassword,
				"tlog-upload": "false", "signature-format": format, "annotations": "env=prod",
			})
			mustSucceed(t, "sign", res)
			if got := res.Outputs["signed"]; got != strings.Join(f.all(), "\n") {
				t.Fatalf("signed output %q, want platforms then index %q", got, f.all())
			}
			sigs := strings.Split(res.Outputs["signatures"], "\n")
			if len(sigs) != 3 {
				t.Fatalf("signatures output %q", res.Outputs["signatures"])
			}
			cmd := res.Outputs["cosign-verify-commands"]
			if !strings.HasPrefix(cmd, "cosign verify --key=cosign.pub --insecure-ignore-tlog=true") || !strings.HasSuffix(cmd, f.index) {
				t.Fatalf("verify command %q", cmd)
			}
			if format == "bundle" && !strings.Contains(cmd, "--new-bundle-format") {
				t.Fatalf("bundle verify command %q", cmd)
			}
			_, digest, _ := strings.Cut(f.index, "@")
			if !strings.Contains(res.Stdout, "resolved to "+digest) {
				t.Errorf("the log does not say which digest the tag resolved to:\n%s", res.Stdout)
			}
			for _, want := range []string{"## Sign", "Signed **3** manifests of 1 image", "with key `sha256:", "linux/amd64", "linux/arm64", "```sh", "cosign verify"} {
				if !strings.Contains(res.Summary, want) {
					t.Errorf("summary lacks %q:\n%s", want, res.Summary)
				}
			}
			s.noSecrets(t, res)

			// What the registry holds, read without this tool.
			tags := s.tags(t, f.index)
			for _, d := range f.all() {
				has := slices.Contains(tags, sigTag(d, "sig"))
				if has != (format == "legacy") {
					t.Errorf("%s: .sig tag present %v in %s format", d, has, format)
				}
				if format == "bundle" {
					ref, _ := name.NewDigest(d)
					idx, err := remote.Referrers(ref, s.remoteOptions()...)
					if err != nil {
						t.Fatal(err)
					}
					if im, _ := idx.IndexManifest(); len(im.Manifests) != 1 {
						t.Errorf("%s: %d referrers, want the signature bundle", d, len(im.Manifests))
					}
				}
			}

			res = s.run(t, map[string]string{"stage": "verify", "images": f.index, "public-key": "cosign.pub", "tlog-upload": "false"})
			mustSucceed(t, "verify", res)
			if res.Outputs["verified"] != "true" {
				t.Fatalf("verified output %q", res.Outputs["verified"])
			}
			for _, want := range []string{"## Verify", "✅ **Verified**: 3 manifests of 1 image", "linux/arm64", "Signed annotations",
				"repository=acme/app", "commit=0123456789abcdef0123456789abcdef01234567", "run=" + runURL, "env=prod"} {
				if !strings.Contains(res.Summary, want) {
					t.Errorf("verify summary lacks %q:\n%s", want, res.Summary)
				}
			}
			// The workflow ref is not set on this runner: no empty annotation.
			if strings.Contains(res.Summary, "workflow=") {
				t.Errorf("absent GITHUB_WORKFLOW_REF gave an annotation:\n%s", res.Summary)
			}

			// The command line, with --json: every manifest carries the annotations.
			cli := harness.Run(t, harness.Step{Dir: s.ws, Env: s.env, Args: []string{
				"verify", "--images", f.index, "--public-key", "cosign.pub", "--tlog-upload=false",
				"--registry-username", signUser, "--registry-password", signPassword, "--json"}})
			mustSucceed(t, "verify --json", cli)
			var doc struct {
				OK     bool `json:"ok"`
				Stages []struct {
					Result struct {
						Verified bool `json:"verified"`
						Images   []struct {
							Digest     string `json:"digest"`
							Verified   bool   `json:"verified"`
							Signatures []struct {
								Annotations map[string]string `json:"annotations"`
							} `json:"signatures"`
						} `json:"images"`
					} `json:"result"`
				} `json:"stages"`
			}
			if err := json.Unmarshal([]byte(cli.Stdout), &doc); err != nil || len(doc.Stages) != 1 {
				t.Fatalf("--json output: %v\n%s", err, cli.Stdout)
			}
			got := doc.Stages[0].Result
			if !doc.OK || !got.Verified || len(got.Images) != 3 {
				t.Fatalf("--json verdict %+v", got)
			}
			for _, iv := range got.Images {
				a := iv.Signatures[0].Annotations
				if !iv.Verified || a["env"] != "prod" || a["repository"] != "acme/app" || a["run"] != runURL {
					t.Errorf("%s: verified %v, annotations %v", iv.Digest, iv.Verified, a)
				}
			}
		})
	}
}

func TestSignKeylessWithTheRunnersIdentity(t *testing.T) {
	s := newSignSetup(t)
	fs := fakesigstore.Start(t)
	rootJSON, err := fs.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.ws, "trusted_root.json"), rootJSON, 0o644)
	for i, format := range []string{"legacy", "bundle"} {
		t.Run(format, func(t *testing.T) {
			f := s.push(t, "keyless-"+format, uint64(20+i))
			res := s.run(t, map[string]string{
				"stage": "sign", "images": f.index, "fulcio-url": fs.FulcioURL, "rekor-url": fs.RekorURL, "signature-format": format,
			}, fs.Env())
			mustSucceed(t, "keyless sign", res)
			if res.Outputs["signed"] != strings.Join(f.all(), "\n") {
				t.Fatalf("signed %q", res.Outputs["signed"])
			}
			cmd := res.Outputs["cosign-verify-commands"]
			if !strings.Contains(cmd, "--certificate-identity="+fs.Identity()) || !strings.Contains(cmd, "--certificate-oidc-issuer="+oidc.GitHubActionsIssuer) || strings.Contains(cmd, "ignore-tlog") {
				t.Fatalf("verify command %q", cmd)
			}
			for _, want := range []string{"keyless as `" + fs.Identity() + "`", "(issuer `" + oidc.GitHubActionsIssuer + "`)",
				"recorded in the transparency log", fs.RekorURL + "/api/v1/log/entries?logIndex=",
				"private Sigstore (`Fulcio " + fs.FulcioURL + "`, `Rekor " + fs.RekorURL + "`)"} {
				if !strings.Contains(res.Summary, want) {
					t.Errorf("summary lacks %q:\n%s", want, res.Summary)
				}
			}
			if !strings.Contains(res.Stdout, "::add-mask::"+fs.RequestToken) {
				t.Error("the OIDC request token was not masked")
			}
			s.noSecrets(t, res, fs.RequestToken)

			verify := map[string]string{"stage": "verify", "images": f.tag, "certificate-identity": fs.Identity(),
				"trusted-root": "trusted_root.json", "rekor-url": fs.RekorURL}
			res = s.run(t, verify)
			mustSucceed(t, "keyless verify", res)
			if res.Outputs["verified"] != "true" {
				t.Fatalf("verified %q", res.Outputs["verified"])
			}
			for _, want := range []string{"✅ **Verified**: 3 manifests", "`" + fs.Identity() + "`", "`" + oidc.GitHubActionsIssuer + "`", "(tlog)", "SCTs"} {
				if !strings.Contains(res.Summary+res.Stdout, want) {
					t.Errorf("verify summary/log lacks %q:\n%s", want, res.Summary)
				}
			}

			delete(verify, "certificate-identity")
			verify["certificate-identity-regexp"] = `^https://github\.com/org/repo/`
			mustSucceed(t, "identity regexp", s.run(t, verify))

			delete(verify, "certificate-identity-regexp")
			verify["certificate-identity"] = "https://github.com/org/repo/.github/workflows/other.yml@refs/heads/main"
			res = s.run(t, verify)
			msg := oneLineError(t, res)
			if res.Code != 3 || !strings.Contains(msg, "wrong identity") || res.Outputs["verified"] != "false" {
				t.Fatalf("wrong identity: exit %d, %q, verified %q", res.Code, msg, res.Outputs["verified"])
			}
			// The summary shows who did sign.
			if !strings.Contains(res.Summary, "❌ **Not verified**") || !strings.Contains(res.Summary, fs.Identity()) {
				t.Errorf("rejection summary:\n%s", res.Summary)
			}
		})
	}
}

func TestPushSignVerifyChain(t *testing.T) {
	s := newSignSetup(t)
	idx := sampleIndex(t)
	want, _ := idx.Digest()
	writeLayout(t, filepath.Join(s.ws, "image"), idx)
	res := s.run(t, map[string]string{
		"stage": "push,sign,verify", "source": "./image", "images": s.reg.Host + "/chain/app", "tags": "v1",
		"key": "cosign.key", "key-password": keyPassword, "public-key": "cosign.pub", "tlog-upload": "false",
	})
	mustSucceed(t, "push,sign,verify", res)
	signed := strings.Split(res.Outputs["signed"], "\n")
	if len(signed) != 3 || signed[2] != s.reg.Host+"/chain/app@"+want.String() {
		t.Fatalf("sign did not sign what push pushed: %q (digest %s)", res.Outputs["signed"], want)
	}
	if res.Outputs["digest"] != want.String() || res.Outputs["verified"] != "true" {
		t.Fatalf("outputs %v", res.Outputs)
	}
	for _, section := range []string{"## Push", "## Sign", "## Verify"} {
		if !strings.Contains(res.Summary, section) {
			t.Errorf("summary lacks %s", section)
		}
	}
	// The digest came from push: nothing was resolved from a tag.
	if strings.Contains(res.Stdout, "resolved to") {
		t.Errorf("sign resolved a tag in a chain:\n%s", res.Stdout)
	}
	s.noSecrets(t, res)
}

// trivyReport is a Trivy JSON report as "trivy image --format json" writes it.
const trivyReport = `{
  "SchemaVersion": 2,
  "Trivy": {"Version": "0.74.0"},
  "CreatedAt": "2026-01-02T03:04:05Z",
  "ArtifactName": "app",
  "ArtifactType": "container_image",
  "Results": [{"Target": "app (alpine 3.19.1)", "Class": "os-pkgs", "Type": "alpine",
    "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-0001", "PkgName": "musl", "InstalledVersion": "1.2.4-r1", "Severity": "HIGH"}]}]
}`

const cycloneDXSBOM = `{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
  "components": [{"type": "library", "name": "musl", "version": "1.2.4-r1", "purl": "pkg:apk/alpine/musl@1.2.4-r1"}]}`

func TestAttestationsFromFiles(t *testing.T) {
	s := newSignSetup(t)
	os.MkdirAll(filepath.Join(s.ws, "reports"), 0o755)
	os.WriteFile(filepath.Join(s.ws, "reports", "app.trivy.json"), []byte(trivyReport), 0o644)
	os.WriteFile(filepath.Join(s.ws, "reports", "app.cdx.json"), []byte(cycloneDXSBOM), 0o644)
	f := s.push(t, "attested", 30)
	res := s.run(t, map[string]string{
		"stage": "sign", "images": f.index, "key": "cosign.key", "key-password": keyPassword, "tlog-upload": "false",
		"attest": "vuln,sbom", "vuln-file": "reports/app.trivy.json", "sbom-file": "reports/app.cdx.json",
	})
	mustSucceed(t, "sign with attestations", res)
	refs := strings.Split(res.Outputs["signatures"], "\n")
	if len(refs) != 5 || !strings.HasSuffix(refs[3], sigTag(f.index, "att")) {
		t.Fatalf("signatures output %q", res.Outputs["signatures"])
	}
	cmds := res.Outputs["cosign-verify-commands"]
	if !strings.Contains(cmds, "cosign verify-attestation --type=vuln") || !strings.Contains(cmds, "--type=cyclonedx") {
		t.Fatalf("commands %q", cmds)
	}
	if !strings.Contains(res.Summary, "**Attestations** (vuln, cyclonedx)") {
		t.Errorf("summary:\n%s", res.Summary)
	}

	// The vuln attestation, read from the registry: cosign's predicate around the report.
	statements := s.attestations(t, f.index)
	vuln, ok := statements["https://cosign.sigstore.dev/attestation/vuln/v1"]
	if !ok || len(statements) != 2 {
		t.Fatalf("attestations found: %v", keys(statements))
	}
	var pred struct {
		Invocation struct {
			URI string `json:"uri"`
		} `json:"invocation"`
		Scanner struct {
			URI    string         `json:"uri"`
			Result map[string]any `json:"result"`
		} `json:"scanner"`
		Metadata struct {
			ScanFinishedOn string `json:"scanFinishedOn"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(vuln, &pred); err != nil {
		t.Fatal(err)
	}
	if pred.Scanner.URI != "pkg:github/aquasecurity/trivy@0.74.0" || pred.Invocation.URI != runURL || pred.Scanner.Result["ArtifactName"] != "app" || pred.Metadata.ScanFinishedOn != "2026-01-02T03:04:05Z" {
		t.Fatalf("vuln predicate %+v", pred)
	}
	var bom map[string]any
	if err := json.Unmarshal(statements["https://cyclonedx.org/bom"], &bom); err != nil || bom["bomFormat"] != "CycloneDX" {
		t.Fatalf("sbom predicate %v %v", bom, err)
	}

	// The files describe the index named: its platforms carry none, so only
	// the index is asked for them.
	verify := map[string]string{"stage": "verify", "images": f.index, "public-key": "cosign.pub", "tlog-upload": "false", "require-attestations": "vuln,sbom", "recursive": "false"}
	res = s.run(t, verify)
	mustSucceed(t, "verify attestations", res)
	if !strings.Contains(res.Summary, "attestation vuln") || !strings.Contains(res.Summary, "attestation cyclonedx") {
		t.Errorf("verify summary lists no attestations:\n%s", res.Summary)
	}

	// Signed, but never attested.
	g := s.push(t, "unattested", 31)
	mustSucceed(t, "sign", s.run(t, map[string]string{"stage": "sign", "images": g.index, "key": "cosign.key", "key-password": keyPassword, "tlog-upload": "false"}))
	verify["images"] = g.index
	res = s.run(t, verify)
	if msg := oneLineError(t, res); res.Code != 3 || !strings.Contains(msg, "missing attestation: vuln, sbom") {
		t.Fatalf("missing attestations: exit %d, %q", res.Code, msg)
	}
}

// attestations returns the predicate of each statement attached to ref, by
// predicate type.
func (s signSetup) attestations(t *testing.T, ref string) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	for _, st := range s.attestationStatements(t, ref) {
		out[st.PredicateType] = st.Predicate
	}
	return out
}

type statement struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
	Subject       []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

// attestationStatements reads every in-toto statement under the legacy .att
// tag of ref, and checks that each one's subject is ref's digest.
func (s signSetup) attestationStatements(t *testing.T, ref string) []statement {
	t.Helper()
	d, _ := name.NewDigest(ref)
	img, err := remote.Image(d.Context().Tag(sigTag(ref, "att")), s.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	var out []statement
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(rc)
		rc.Close()
		var env struct {
			Payload string `json:"payload"`
		}
		json.Unmarshal(raw, &env)
		payload, _ := base64.StdEncoding.DecodeString(env.Payload)
		var st statement
		if err := json.Unmarshal(payload, &st); err != nil {
			t.Fatalf("attestation payload: %v", err)
		}
		if len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != d.DigestStr() {
			t.Fatalf("statement subject %v, want %s", st.Subject, d.DigestStr())
		}
		out = append(out, st)
	}
	return out
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSignWithAWSKMS(t *testing.T) {
	s := newSignSetup(t)
	kms := fakesigstore.StartKMS(t)
	if _, err := kms.CreateKey("release-signing"); err != nil {
		t.Fatal(err)
	}
	if _, err := kms.CreateDeniedKey("someone-elses"); err != nil {
		t.Fatal(err)
	}
	f := s.push(t, "kms", 40)
	res := s.run(t, map[string]string{"stage": "sign", "images": f.index, "key": "awskms:///alias/release-signing", "tlog-upload": "false"}, kms.Env())
	mustSucceed(t, "KMS sign", res)
	if kms.Signs() != 3 || !strings.Contains(res.Outputs["cosign-verify-commands"], "--key=awskms:///alias/release-signing") {
		t.Fatalf("KMS signs %d, commands %q", kms.Signs(), res.Outputs["cosign-verify-commands"])
	}
	if !strings.Contains(res.Summary, "with KMS key `awskms:///alias/release-signing`") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	res = s.run(t, map[string]string{"stage": "verify", "images": f.index, "public-key": "awskms:///alias/release-signing", "tlog-upload": "false"}, kms.Env())
	mustSucceed(t, "KMS verify", res)

	for alias, want := range map[string]struct {
		code int
		msg  string
	}{
		"missing":       {2, "KMS key awskms:///alias/missing not found: check the key id or alias and the AWS region"},
		"someone-elses": {1, "not permitted to use KMS key awskms:///alias/someone-elses: grant kms:GetPublicKey, kms:DescribeKey and kms:Sign"},
	} {
		res := s.run(t, map[string]string{"stage": "sign", "images": f.index, "key": "awskms:///alias/" + alias, "tlog-upload": "false"}, kms.Env())
		if msg := oneLineError(t, res); res.Code != want.code || !strings.Contains(msg, want.msg) {
			t.Errorf("%s: exit %d, %q", alias, res.Code, msg)
		}
		if leaks(res, "fake-secret") {
			t.Error("the AWS secret key reached the log")
		}
	}
}

func TestSignAndVerifyErrors(t *testing.T) {
	s := newSignSetup(t)
	f := s.push(t, "errors", 50)
	keyInputs := func(kv ...string) map[string]string {
		in := map[string]string{"stage": "sign", "images": f.index, "key": "cosign.key", "key-password": keyPassword, "tlog-upload": "false"}
		for i := 0; i+1 < len(kv); i += 2 {
			in[kv[i]] = kv[i+1]
		}
		return in
	}
	_, digest, _ := strings.Cut(f.index, "@")
	missingDigest := strings.Replace(f.index, digest, "sha256:"+strings.Repeat("ab", 32), 1)
	fs := fakesigstore.Start(t)
	cases := []struct {
		name   string
		inputs map[string]string
		env    map[string]string
		code   int
		want   []string
	}{
		{"keyless without the OIDC variables", map[string]string{"stage": "sign", "images": f.index}, nil, 2,
			[]string{"permissions: id-token: write"}},
		{"wrong key password", keyInputs("key-password", "not-the-password"), nil, 2, []string{"check key-password"}},
		{"unreadable key", keyInputs("key", "keys/missing.key"), nil, 2, []string{"cannot read key file", "keys/missing.key", "key"}},
		{"key is not a key", keyInputs("key", "cosign.pub"), nil, 2, []string{"cosign.pub)", "give a cosign private key"}},
		{"tag not found", keyInputs("images", s.reg.Host+"/errors:v9"), nil, 2, []string{"image not found", "errors:v9", "images input"}},
		{"digest not found", keyInputs("images", missingDigest), nil, 2, []string{"image not found", missingDigest}},
		{"repository refused", keyInputs("registry-password", "wrong-password"), nil, 1, []string{"unauthorized (401)", "registry-username and registry-password"}},
		{"Fulcio unreachable", map[string]string{"stage": "sign", "images": f.index, "fulcio-url": "http://127.0.0.1:1"}, fs.Env(), 1,
			[]string{"Fulcio at http://127.0.0.1:1 unreachable after 4 attempts", "fulcio-url"}},
		{"Rekor unreachable", keyInputs("tlog-upload", "true", "rekor-url", "http://127.0.0.1:1"), nil, 1,
			[]string{"Rekor at http://127.0.0.1:1 unreachable", "tlog-upload: false", "signed: none", "not signed: " + f.children[0]}},
		{"unknown attestation", keyInputs("attest", "slsa"), nil, 2, []string{"attest", "use vuln, sbom"}},
		{"vuln without a scan", keyInputs("attest", "vuln"), nil, 2, []string{"vuln-file"}},
		{"bad annotation", keyInputs("annotations", "novalue"), nil, 2, []string{"annotations", "key=value"}},
		{"bad format", keyInputs("signature-format", "v3"), nil, 2, []string{"signature-format", "legacy or bundle"}},
		{"verify unsigned", map[string]string{"stage": "verify", "images": f.index, "public-key": "cosign.pub", "tlog-upload": "false"}, nil, 3,
			[]string{"verification failed", "no signature"}},
		{"verify with nothing to check against", map[string]string{"stage": "verify", "images": f.index}, nil, 2, []string{"certificate-identity", "public-key"}},
		{"verify missing image", map[string]string{"stage": "verify", "images": missingDigest, "public-key": "cosign.pub"}, nil, 2, []string{"image not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.run(t, c.inputs, c.env)
			msg := oneLineError(t, res)
			if res.Code != c.code {
				t.Errorf("exit %d, want %d: %s", res.Code, c.code, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			s.noSecrets(t, res, "not-the-password", "wrong-password", fs.RequestToken)
			if c.inputs["stage"] == "sign" && c.code != 0 {
				for _, tag := range s.tags(t, f.index) {
					if strings.HasSuffix(tag, ".sig") {
						t.Fatalf("a failed sign left %s behind", tag)
					}
				}
			}
		})
	}
}

func TestPartialSigningSaysWhatWasAndWasNotSigned(t *testing.T) {
	s := newSignSetup(t)
	f := s.push(t, "partial", 60)
	indexTag := sigTag(f.index, "sig")
	rule := &harness.FaultRule{
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/"+indexTag)
		},
		Status: http.StatusForbidden, Times: 1000,
	}
	s.reg.Faults.Add(rule)
	res := s.run(t, map[string]string{"stage": "sign", "images": f.index, "key": "cosign.key", "key-password": keyPassword, "tlog-upload": "false"})
	msg := oneLineError(t, res)
	want := fmt.Sprintf("signed: %s, %s; not signed: %s", f.children[0], f.children[1], f.index)
	if res.Code != 1 || !strings.Contains(msg, want) {
		t.Fatalf("exit %d, %q; want %q", res.Code, msg, want)
	}
	if s.reg.Faults.Hits(rule) == 0 {
		t.Fatal("the fault never fired")
	}
	// The summary reports the two signatures that exist.
	if !strings.Contains(res.Summary, "Signed **2** manifests") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	tags := s.tags(t, f.index)
	for _, c := range f.children {
		if !slices.Contains(tags, sigTag(c, "sig")) {
			t.Errorf("%s reported signed but has no signature", c)
		}
	}
	if slices.Contains(tags, indexTag) {
		t.Error("the index reported unsigned has a signature")
	}
	s.noSecrets(t, res)
}

func TestSignWithKeyContentOrVariableNeverShowsTheKey(t *testing.T) {
	s := newSignSetup(t)
	for i, c := range []struct {
		name string
		key  string
		env  map[string]string
	}{
		{"content", s.privatePEM, nil},
		{"variable", "env://COSIGN_PRIVATE_KEY", map[string]string{"COSIGN_PRIVATE_KEY": s.privatePEM}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := s.push(t, "key-"+c.name, uint64(70+i))
			res := s.run(t, map[string]string{"stage": "sign", "images": f.index, "key": c.key, "key-password": keyPassword, "tlog-upload": "false"}, c.env)
			mustSucceed(t, "sign", res)
			if !strings.HasPrefix(res.Outputs["cosign-verify-commands"], "cosign verify --key=cosign.pub ") {
				t.Fatalf("commands %q", res.Outputs["cosign-verify-commands"])
			}
			s.noSecrets(t, res)
			masked := 0
			for _, line := range strings.Split(res.Stdout, "\n") {
				if strings.HasPrefix(line, "::add-mask::") {
					masked++
				}
			}
			if masked < 3 {
				t.Errorf("the key was not masked for the runner (%d masks)", masked)
			}
			// A wrong password for inline key material: the message names
			// the input, never the key.
			res = s.run(t, map[string]string{"stage": "sign", "images": f.index, "key": c.key, "key-password": "nope-wrong-pass"}, c.env)
			if msg := oneLineError(t, res); res.Code != 2 || !strings.Contains(msg, "check key-password") {
				t.Fatalf("exit %d, %q", res.Code, msg)
			}
			s.noSecrets(t, res, "nope-wrong-pass")
		})
	}
}

// TestCosignCLIAndThisToolAgree runs the cosign CLI (opt-in: COSIGN_CLI
// names a cosign v2.6.5 binary) as an independent verifier of what the
// binary signed, through the very commands the cosign-verify-commands output
// prints, and the binary as the verifier of what the CLI signed.
func TestCosignCLIAndThisToolAgree(t *testing.T) {
	cosignBin := os.Getenv("COSIGN_CLI")
	if cosignBin == "" {
		t.Skip("set COSIGN_CLI to a cosign v2.6.5 binary to compare with the cosign CLI")
	}
	s := newSignSetup(t)
	fs := fakesigstore.Start(t)
	home := t.TempDir()
	rootJSON, _ := fs.TrustedRootJSON()
	os.WriteFile(filepath.Join(home, "trusted_root.json"), rootJSON, 0o644)
	auth := base64.StdEncoding.EncodeToString([]byte(signUser + ":" + signPassword))
	os.MkdirAll(filepath.Join(home, "docker"), 0o700)
	os.WriteFile(filepath.Join(home, "docker", "config.json"), []byte(`{"auths":{"`+s.reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600)
	cosign := func(t *testing.T, args string) (string, error) {
		cmd := exec.Command("sh", "-c", strings.Replace(args, "cosign ", cosignBin+" ", 1))
		cmd.Dir = s.ws
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"),
			"DOCKER_CONFIG=" + filepath.Join(home, "docker"), "SSL_CERT_FILE=" + s.reg.CAFile, "COSIGN_PASSWORD=" + keyPassword}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// With a key, a trusted root keeps the CLI from fetching the public one.
	offline := " --trusted-root=" + filepath.Join(home, "trusted_root.json")
	for i, format := range []string{"legacy", "bundle"} {
		t.Run("ours-to-cli/"+format, func(t *testing.T) {
			f := s.push(t, "to-cli-"+format, uint64(80+i))
			res := s.run(t, map[string]string{"stage": "sign", "images": f.tag, "key": "cosign.key", "key-password": keyPassword,
				"tlog-upload": "false", "signature-format": format, "annotations": "env=prod"})
			mustSucceed(t, "sign", res)
			cmd := res.Outputs["cosign-verify-commands"]
			if out, err := cosign(t, cmd+offline); err != nil {
				t.Fatalf("%s\n%v\n%s", cmd, err, out)
			}
			for _, child := range f.children {
				if out, err := cosign(t, strings.Replace(cmd, f.index, child, 1)+offline); err != nil {
					t.Fatalf("platform %s: %v\n%s", child, err, out)
				}
			}
			if format == "legacy" {
				if out, err := cosign(t, cmd+offline+" -a env=staging"); err == nil {
					t.Fatalf("the CLI accepted a wrong annotation:\n%s", out)
				}
			}
		})
		t.Run("cli-to-ours/"+format, func(t *testing.T) {
			f := s.push(t, "from-cli-"+format, uint64(90+i))
			flags := " --yes --key=cosign.key --tlog-upload=false --recursive -a env=prod"
			if format == "bundle" {
				flags += " --new-bundle-format" + offline
			}
			if out, err := cosign(t, "cosign sign"+flags+" "+f.index); err != nil {
				t.Fatalf("cosign sign: %v\n%s", err, out)
			}
			res := s.run(t, map[string]string{"stage": "verify", "images": f.tag, "public-key": "cosign.pub", "tlog-upload": "false"})
			mustSucceed(t, "verify of CLI signatures", res)
			if !strings.Contains(res.Summary, "✅ **Verified**: 3 manifests") || (format == "legacy" && !strings.Contains(res.Summary, "env=prod")) {
				t.Fatalf("summary:\n%s", res.Summary)
			}
		})
	}

	// Keys made by either tool sign with the other: ours verified and used
	// by the CLI, the CLI's used by ours and verified by both.
	t.Run("our-key-to-cli", func(t *testing.T) {
		keys := filepath.Join(s.ws, "ours")
		os.MkdirAll(keys, 0o700)
		gen := harness.Run(t, harness.Step{Dir: s.ws, Env: map[string]string{"COSIGN_PASSWORD": keyPassword}, Args: []string{"generate-key-pair", "--output-key-prefix", "ours/release"}})
		mustSucceed(t, "registry generate-key-pair", gen)
		f := s.push(t, "our-key", 95)
		res := s.run(t, map[string]string{"stage": "sign", "images": f.tag, "key": "ours/release.key", "key-password": keyPassword, "tlog-upload": "false"})
		mustSucceed(t, "sign with our key", res)
		cmd := res.Outputs["cosign-verify-commands"]
		if !strings.Contains(cmd, "--key=ours/release.pub") {
			t.Fatalf("verify command %q does not name the generated public key", cmd)
		}
		for _, ref := range f.all() {
			if out, err := cosign(t, strings.Replace(cmd, f.index, ref, 1)+offline); err != nil {
				t.Fatalf("cosign verify of %s with our public key: %v\n%s", ref, err, out)
			}
		}
		g := s.push(t, "our-key-cli", 96)
		if out, err := cosign(t, "cosign sign --yes --key=ours/release.key --tlog-upload=false "+g.index); err != nil {
			t.Fatalf("cosign sign with our private key: %v\n%s", err, out)
		}
		if out, err := cosign(t, "cosign verify --key=ours/release.pub --insecure-ignore-tlog=true"+offline+" "+g.index); err != nil {
			t.Fatalf("cosign verify: %v\n%s", err, out)
		}
	})
	t.Run("cli-key-to-ours", func(t *testing.T) {
		keys := filepath.Join(s.ws, "theirs")
		os.MkdirAll(keys, 0o700)
		if out, err := cosign(t, "cosign generate-key-pair --output-key-prefix theirs/release"); err != nil {
			t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
		}
		f := s.push(t, "cli-key", 97)
		res := s.run(t, map[string]string{"stage": "sign", "images": f.tag, "key": "theirs/release.key", "key-password": keyPassword, "tlog-upload": "false"})
		mustSucceed(t, "sign with the CLI's key", res)
		cmd := res.Outputs["cosign-verify-commands"]
		if out, err := cosign(t, cmd+offline); err != nil {
			t.Fatalf("%s\n%v\n%s", cmd, err, out)
		}
		verify := s.run(t, map[string]string{"stage": "verify", "images": f.tag, "public-key": "theirs/release.pub", "tlog-upload": "false"})
		mustSucceed(t, "verify with the CLI's public key", verify)
	})
}

func TestSignAndVerifyFromTheCommandLine(t *testing.T) {
	s := newSignSetup(t)
	f := s.push(t, "cli", 100)
	creds := []string{"--registry-username", signUser, "--registry-password", signPassword}
	res := harness.Run(t, harness.Step{Dir: s.ws, Env: s.env, Args: append([]string{
		"sign", "--images", f.tag, "--key", "cosign.key", "--key-password", keyPassword, "--tlog-upload=false"}, creds...)})
	mustSucceed(t, "registry sign", res)
	for _, want := range []string{"signed 3 manifests of 1 image with key sha256:", "linux/amd64", "index", "verify with:\n  cosign verify --key=cosign.pub --insecure-ignore-tlog=true " + f.index} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("sign output lacks %q:\n%s", want, res.Stdout)
		}
	}
	if !strings.Contains(res.Stderr, "resolved to") {
		t.Errorf("the log (stderr) does not say which digest was signed:\n%s", res.Stderr)
	}
	s.noSecrets(t, res)

	verify := append([]string{"verify", "--images", f.tag, "--public-key", "cosign.pub", "--tlog-upload=false"}, creds...)
	res = harness.Run(t, harness.Step{Dir: s.ws, Env: s.env, Args: verify})
	mustSucceed(t, "registry verify", res)
	if !strings.HasPrefix(res.Stdout, "verified 3 manifests of 1 image\n") {
		t.Errorf("verify output:\n%s", res.Stdout)
	}

	other, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.ws, "other.pub"), other.PublicBytes, 0o644)
	verify[4] = "other.pub"
	res = harness.Run(t, harness.Step{Dir: s.ws, Env: s.env, Args: verify})
	if res.Code != 3 || !strings.Contains(res.Stdout, "NOT verified: 3 of 3 manifests failed") || !strings.Contains(res.Stderr, "bad signature") {
		t.Fatalf("verify with another key: exit %d\n%s", res.Code, res.Log())
	}
}

func TestGenerateKeyPairFromTheCommandLine(t *testing.T) {
	s := newSignSetup(t)
	ws := t.TempDir()
	env := map[string]string{"COSIGN_PASSWORD": keyPassword}
	res := harness.Run(t, harness.Step{Dir: ws, Env: env, Args: []string{"generate-key-pair"}})
	mustSucceed(t, "generate-key-pair", res)
	for _, want := range []string{"Private key written to cosign.key", "Public key written to cosign.pub (key sha256:",
		"  gh secret set COSIGN_PRIVATE_KEY < cosign.key\n  gh secret set COSIGN_PASSWORD\n  gh variable set COSIGN_PUBLIC_KEY < cosign.pub\n"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Stdout)
		}
	}
	if leaks(res, keyPassword) {
		t.Fatal("the password was printed")
	}
	private, _ := os.ReadFile(filepath.Join(ws, "cosign.key"))
	public, _ := os.ReadFile(filepath.Join(ws, "cosign.pub"))
	if !strings.Contains(string(private), "ENCRYPTED SIGSTORE PRIVATE KEY") || !strings.Contains(string(public), "PUBLIC KEY") {
		t.Fatalf("key files:\n%s\n%s", private, public)
	}

	// The pair signs and verifies.
	f := s.push(t, "generated", 120)
	creds := []string{"--registry-username", signUser, "--registry-password", signPassword}
	sign := harness.Run(t, harness.Step{Dir: ws, Env: s.env, Args: append([]string{"sign", "--images", f.tag, "--key", "cosign.key", "--key-password", keyPassword, "--tlog-upload=false"}, creds...)})
	mustSucceed(t, "sign with the generated key", sign)
	verify := harness.Run(t, harness.Step{Dir: ws, Env: s.env, Args: append([]string{"verify", "--images", f.tag, "--public-key", "cosign.pub", "--tlog-upload=false"}, creds...)})
	mustSucceed(t, "verify with the generated key", verify)

	// Run again: refused, both files untouched.
	res = harness.Run(t, harness.Step{Dir: ws, Env: env, Args: []string{"generate-key-pair"}})
	if res.Code != 2 || !strings.Contains(res.Stderr, "cosign.key already exists and is never overwritten") {
		t.Fatalf("second run: exit %d\n%s", res.Code, res.Log())
	}
	if again, _ := os.ReadFile(filepath.Join(ws, "cosign.key")); string(again) != string(private) {
		t.Fatal("the existing private key was replaced")
	}
	if again, _ := os.ReadFile(filepath.Join(ws, "cosign.pub")); string(again) != string(public) {
		t.Fatal("the existing public key was replaced")
	}

	// No password and no terminal to ask on.
	res = harness.Run(t, harness.Step{Dir: ws, Args: []string{"generate-key-pair", "--output-key-prefix", "other"}})
	if res.Code != 2 || !strings.Contains(res.Stderr, "set COSIGN_PASSWORD") {
		t.Fatalf("without a password: exit %d\n%s", res.Code, res.Log())
	}
	if _, err := os.Stat(filepath.Join(ws, "other.key")); !os.IsNotExist(err) {
		t.Fatal("a key was written without a password")
	}

	// --json, under a prefix with a directory.
	os.MkdirAll(filepath.Join(ws, "keys"), 0o700)
	res = harness.Run(t, harness.Step{Dir: ws, Env: env, Args: []string{"generate-key-pair", "--json", "--output-key-prefix", "keys/release"}})
	mustSucceed(t, "generate-key-pair --json", res)
	var out struct {
		PrivateKey, PublicKey, Fingerprint string
		SecretCommands                     []string
	}
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil || out.PrivateKey != "keys/release.key" || out.PublicKey != "keys/release.pub" || len(out.SecretCommands) != 3 {
		t.Fatalf("--json: %v\n%s", err, res.Stdout)
	}
	if _, err := os.Stat(filepath.Join(ws, "keys", "release.key")); err != nil {
		t.Fatal(err)
	}
}
