package e2e

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/fakegithub"
	"github.com/registry-actions/registry/test/fakesigstore"
	"github.com/registry-actions/registry/test/harness"
)

// Canary values for every secret the program handles. None of them, nor any
// base64 form of them or of the user:password pairs they belong to, may
// appear anywhere a person or a later step can read.
const (
	canaryRegistryPassword = "canary-registry-pw-4d1f"
	canaryGitHubToken      = "ghs_canaryGitHubToken7c21"
	canaryKeyPassword      = "canary-key-pw-9e02"
	canaryTrivyToken       = "canary-trivy-token-31ab"
	canaryECRPassword      = "canary-ecr-pw-55aa"
	canaryAWSSecret        = "canary/aws+secret=key-8b3c"
	canaryBuildSecret      = "canary-build-secret-77e1"
	canaryOIDCRequest      = "canary-oidc-request-token-6f0d"
)

// leakForms lists each canary with its encodings and the encodings of the
// basic-auth pairs that carry them.
func leakForms() map[string]string {
	forms := map[string]string{}
	add := func(label, value string) {
		forms[value] = label
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			forms[enc.EncodeToString([]byte(value))] = label + " (base64)"
		}
	}
	for label, c := range map[string]string{
		"registry-password": canaryRegistryPassword, "github-token": canaryGitHubToken, "key-password": canaryKeyPassword,
		"trivy-server-token": canaryTrivyToken, "ECR password": canaryECRPassword, "AWS_SECRET_ACCESS_KEY": canaryAWSSecret,
		"secrets (build)": canaryBuildSecret, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": canaryOIDCRequest,
	} {
		add(label, c)
	}
	add("ci:registry-password", "ci:"+canaryRegistryPassword)
	add("octocat:github-token", "octocat:"+canaryGitHubToken)
	add("AWS:ECR password", "AWS:"+canaryECRPassword)
	return forms
}

// noLeak fails when a canary form is in the run's stdout or stderr (apart
// from the ::add-mask:: lines that hide secrets from the runner), its
// outputs, summary or env file, any file in the workspace, or any file the
// run left in its temp directory.
func noLeak(t *testing.T, what string, res harness.Result) {
	t.Helper()
	forms := leakForms()
	check := func(where, text string) {
		for form, label := range forms {
			if strings.Contains(text, form) {
				t.Errorf("%s: %s leaked into %s", what, label, where)
			}
		}
	}
	var log []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		// The runner hides the line that registers a mask, and then the
		// value wherever it appears.
		if !strings.HasPrefix(line, "::add-mask::") {
			log = append(log, line)
		}
	}
	check("stdout", strings.Join(log, "\n"))
	check("stderr", res.Stderr)
	check("the summary", res.Summary)
	for _, f := range []string{res.OutputFile, res.EnvFile} {
		data, _ := os.ReadFile(f)
		check(filepath.Base(f), string(data))
	}
	for _, root := range []string{res.Dir, res.TempDir} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err == nil {
				check(p, string(data))
			}
			return nil
		})
	}
	if left := leftovers(t, res.TempDir); len(left) > 0 {
		t.Errorf("%s left files in its temp directory: %v", what, left)
	}
}

// TestNoSecretLeaksFromAnyStage runs every stage, succeeding and failing,
// with canary values for every secret input, the ECR password the ECR
// stand-in hands out and AWS_SECRET_ACCESS_KEY; failing servers echo the
// secrets back in their error bodies, as a misconfigured proxy would.
func TestNoSecretLeaksFromAnyStage(t *testing.T) {
	plain := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: map[string]string{"ci": canaryRegistryPassword}})
	ecrReg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Hostnames: []string{ecrHost}, Users: map[string]string{"AWS": canaryECRPassword}})
	ghcrReg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Hostnames: []string{ghcrHost}, Users: map[string]string{"octocat": canaryGitHubToken}})
	proxy := harness.StartProxy(t)
	proxy.Route(ecrHost, ecrReg.Host)
	proxy.Route(ghcrHost, ghcrReg.Host)
	fake := fakeecr.Start(t)
	fake.SetPassword(canaryECRPassword)
	gh := fakegithub.Start(t)
	gh.SetToken(canaryGitHubToken)
	gh.AddOwner("acme", fakegithub.Organization)
	gh.AddPackage("acme", "app", false)
	// A Trivy server that refuses the token and quotes it back.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("Trivy-Token")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "invalid token %q (%s)", tok, base64.StdEncoding.EncodeToString([]byte(tok)))
	}))
	t.Cleanup(echo.Close)

	ws := t.TempDir()
	edgeWorkspace(t, ws)
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(canaryKeyPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ws, "cosign.key"), string(kb.PrivateBytes))
	writeFile(t, filepath.Join(ws, "cosign.pub"), string(kb.PublicBytes))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, ca, string(plain.CAPEM)+string(ecrReg.CAPEM)+string(ghcrReg.CAPEM))
	env := map[string]string{
		"SSL_CERT_FILE": ca, "HTTPS_PROXY": proxy.URL, "GITHUB_API_URL": gh.URL(),
		"AWS_ENDPOINT_URL_ECR": fake.URL(), "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIACANARYEXAMPLE", "AWS_SECRET_ACCESS_KEY": canaryAWSSecret,
	}
	// Every run carries every secret input.
	secrets := map[string]string{
		"registry-username": "ci", "registry-password": canaryRegistryPassword, "github-token": canaryGitHubToken,
		"key-password": canaryKeyPassword, "trivy-server-token": canaryTrivyToken,
		"secrets": "NPM_TOKEN=" + canaryBuildSecret,
	}
	runWith := func(what string, code int, in, extraEnv map[string]string) harness.Result {
		t.Helper()
		stepEnv := maps.Clone(env)
		maps.Copy(stepEnv, extraEnv)
		all := map[string]string{}
		for k, v := range secrets {
			all[k] = v
		}
		for k, v := range in {
			all[k] = v
		}
		res := harness.Run(t, harness.Step{Dir: ws, Inputs: all, Env: stepEnv})
		if res.Code != code {
			t.Errorf("%s: exit %d, want %d\n%s", what, res.Code, code, res.Log())
		}
		noLeak(t, what, res)
		return res
	}
	run := func(what string, code int, in map[string]string) harness.Result {
		t.Helper()
		return runWith(what, code, in, nil)
	}
	repo := plain.Host + "/team/app"

	// Succeeding runs of every stage.
	run("push, scan, sign, verify, clean", 0, map[string]string{
		"stage": "push,scan,sign,verify,clean", "source": "image", "images": repo, "tags": "v1",
		"skip-db-update": "true", "formats": "sarif,json,sbom", "fail-on": "none",
		"key": "cosign.key", "tlog-upload": "false", "attest": "vuln,sbom",
		"public-key": "cosign.pub", "require-attestations": "vuln,sbom", "keep-tagged": "5",
	})
	// Keyless signing with the runner's OIDC request token, and with a
	// Fulcio that refuses the certificate.
	sigstore := fakesigstore.Start(t)
	sigstore.RequestToken = canaryOIDCRequest
	runWith("sign keyless", 0, map[string]string{"stage": "sign", "images": repo + ":v1", "key-password": "", "fulcio-url": sigstore.FulcioURL, "rekor-url": sigstore.RekorURL}, sigstore.Env())
	sigstore.FailFulcio(http.StatusInternalServerError)
	runWith("sign keyless, Fulcio failing", 1, map[string]string{"stage": "sign", "images": repo + ":v1", "key-password": "", "fulcio-url": sigstore.FulcioURL, "rekor-url": sigstore.RekorURL}, sigstore.Env())
	run("push to ECR", 0, map[string]string{"stage": "push", "source": "image", "images": ecrHost + "/team/app", "tags": "v1", "ecr-create-repository": "true"})
	// ghcr.io takes the workflow token with GITHUB_ACTOR (registry-username
	// would replace the actor).
	res := run("push to ghcr.io", 0, map[string]string{"stage": "push", "source": "image", "images": ghcrHost + "/acme/app", "tags": "v1", "registry-username": ""})
	gh.AddVersions("acme", "app", fakegithub.Version{Digest: res.Outputs["digest"], Tags: []string{"v1"}, CreatedAt: time.Now()})
	run("clean ghcr.io", 0, map[string]string{"stage": "clean", "images": ghcrHost + "/acme/app", "keep-tagged": "5", "registry-username": ""})
	cli := harness.Run(t, harness.Step{Dir: ws, Env: env, Args: []string{
		"run", "push,scan,sign", "--source", "image", "--images", plain.Host + "/cli/app", "--tags", "v1",
		"--registry-username", "ci", "--registry-password", canaryRegistryPassword,
		"--skip-db-update", "--fail-on", "none", "--key", "cosign.key", "--key-password", canaryKeyPassword, "--tlog-upload=false",
		"--summary", "cli-summary.md", "--json",
	}})
	if cli.Code != 0 {
		t.Errorf("CLI chain: exit %d\n%s", cli.Code, cli.Log())
	}
	noLeak(t, "CLI chain", cli)

	// Failing runs: servers refuse and quote the secrets back.
	echoing := fmt.Sprintf(`{"errors":[{"code":"DENIED","message":"denied: password %s, header Basic %s"}]}`,
		canaryRegistryPassword, base64.StdEncoding.EncodeToString([]byte("ci:"+canaryRegistryPassword)))
	plain.Faults.Add(&harness.FaultRule{
		Match:  func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/team/denied/") },
		Status: http.StatusForbidden, Body: echoing, Times: 1 << 30,
	})
	run("push refused", 1, map[string]string{"stage": "push", "source": "image", "images": plain.Host + "/team/denied", "tags": "v1"})
	run("scan refused", 1, map[string]string{"stage": "scan", "images": plain.Host + "/team/denied:v1", "skip-db-update": "true"})
	run("scan against a server refusing the token", 1, map[string]string{"stage": "scan", "images": repo + ":v1", "trivy-server": echo.URL})
	run("sign refused", 1, map[string]string{"stage": "sign", "images": plain.Host + "/team/denied:v1", "key": "cosign.key", "tlog-upload": "false"})
	other, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("another-password"), nil })
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ws, "other.key"), string(other.PrivateBytes))
	run("sign with the wrong key password", 2, map[string]string{"stage": "sign", "images": repo + ":v1", "key": "other.key", "tlog-upload": "false"})
	run("verify refused", 1, map[string]string{"stage": "verify", "images": plain.Host + "/team/denied:v1", "public-key": "cosign.pub", "tlog-upload": "false"})
	run("clean refused", 1, map[string]string{"stage": "clean", "images": plain.Host + "/team/denied", "keep-tagged": "5"})
	gh.FailNext("", -1, fakegithub.ServerError())
	run("clean ghcr.io during an outage", 1, map[string]string{"stage": "clean", "images": ghcrHost + "/acme/app", "keep-tagged": "5", "timeout": "20s", "registry-username": ""})
	fake.FailNext("GetAuthorizationToken", -1, fakeecr.Fault{Status: http.StatusBadRequest, Code: "AccessDeniedException", Message: "not authorized with secret " + canaryAWSSecret})
	run("push to ECR refused", 1, map[string]string{"stage": "push", "source": "image", "images": ecrHost + "/team/app", "tags": "v2"})
}
