package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/harness"
)

const (
	ecrHost  = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	ghcrHost = "ghcr.io"
)

func sampleIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, 2, 64<<10, 7)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func writeLayout(t *testing.T, dir string, idx v1.ImageIndex) {
	t.Helper()
	if err := synth.WriteLayout(dir, idx); err != nil {
		t.Fatal(err)
	}
}

// oneLineError returns the ::error:: annotation of a failed run.
func oneLineError(t *testing.T, res harness.Result) string {
	t.Helper()
	for _, line := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(line, "::error::") {
			return strings.TrimPrefix(line, "::error::")
		}
	}
	t.Fatalf("no ::error:: annotation in the log:\n%s", res.Log())
	return ""
}

// leaks reports whether secret appears anywhere a person could read it: the
// log (apart from the ::add-mask:: command that hides it), the summary or an
// output.
func leaks(res harness.Result, secret string) bool {
	for _, line := range strings.Split(res.Log(), "\n") {
		if strings.Contains(line, secret) && line != "::add-mask::"+secret {
			return true
		}
	}
	for _, v := range res.Outputs {
		if strings.Contains(v, secret) {
			return true
		}
	}
	return strings.Contains(res.Summary, secret)
}

func TestPushToTwoRegistriesAsTheRunnerWould(t *testing.T) {
	a := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: map[string]string{"ci": "pass-for-ci-registry"}})
	b := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: map[string]string{"ci": "pass-for-ci-registry"}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, append(append([]byte{}, a.CAPEM...), b.CAPEM...), 0o644)

	idx := sampleIndex(t)
	want, _ := idx.Digest()
	ws := t.TempDir()
	writeLayout(t, filepath.Join(ws, "image"), idx)

	step := harness.Step{
		Dir: ws,
		Inputs: map[string]string{
			"stage":             "push",
			"source":            "./image",
			"images":            a.Host + "/team/app\n" + b.Host + "/app",
			"tags":              "v1.2.3, latest",
			"registry-username": "ci",
			"registry-password": "pass-for-ci-registry",
		},
		Env: map[string]string{"SSL_CERT_FILE": ca},
	}
	res := harness.Run(t, step)
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	if res.Outputs["digest"] != want.String() {
		t.Fatalf("digest output %q, want %s", res.Outputs["digest"], want)
	}
	if got := strings.Split(res.Outputs["tags"], "\n"); len(got) != 4 {
		t.Fatalf("tags output %q", res.Outputs["tags"])
	}
	if res.Outputs["platforms"] != "linux/amd64,linux/arm64" {
		t.Fatalf("platforms output %q", res.Outputs["platforms"])
	}
	var meta []map[string]any
	if err := json.Unmarshal([]byte(res.Outputs["metadata"]), &meta); err != nil || len(meta) != 2 {
		t.Fatalf("metadata output %q: %v", res.Outputs["metadata"], err)
	}
	if meta[0]["digest"] != want.String() || meta[0]["bytesUploaded"].(float64) == 0 {
		t.Fatalf("metadata %v", meta[0])
	}
	for _, want := range []string{"## Push", "| Repository |", a.Host + "/team/app", "Transferred"} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	if !strings.Contains(res.Stdout, "::group::push "+a.Host+"/team/app") {
		t.Errorf("no log group per target:\n%s", res.Stdout)
	}
	if leaks(res, "pass-for-ci-registry") {
		t.Fatal("the registry password reached the log or summary")
	}
	if !strings.Contains(res.Stdout, "::add-mask::pass-for-ci-registry") {
		t.Error("the password was not masked for the runner")
	}

	// The same push again moves nothing.
	a.Counter.Reset()
	res = harness.Run(t, step)
	if res.Code != 0 {
		t.Fatalf("re-push exit %d\n%s", res.Code, res.Log())
	}
	if n := a.Counter.Requests("PATCH uploads") + a.Counter.Requests("PUT manifests"); n != 0 {
		t.Fatalf("identical re-push wrote %d uploads/manifests", n)
	}
}

func TestPushToGHCRWithTheWorkflowToken(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Hostnames: []string{ghcrHost}, Users: map[string]string{"octocat": "ghs_workflowtoken123"}})
	proxy := harness.StartProxy(t)
	proxy.Route(ghcrHost, reg.Host)
	ws := t.TempDir()
	writeLayout(t, filepath.Join(ws, "image"), sampleIndex(t))
	env := map[string]string{"SSL_CERT_FILE": reg.CAFile, "HTTPS_PROXY": proxy.URL}

	res := harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: map[string]string{
		"source": "image", "images": "ghcr.io/Acme/App", "tags": "v1", "github-token": "ghs_workflowtoken123",
	}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	if !strings.Contains(res.Outputs["tags"], "ghcr.io/acme/app:v1") {
		t.Fatalf("repository not lower-cased: %q", res.Outputs["tags"])
	}
	if !strings.Contains(res.Summary, "lower-cased") {
		t.Errorf("summary does not mention the lower-casing:\n%s", res.Summary)
	}
	if proxy.Seen(ghcrHost) == 0 {
		t.Fatal("the push did not go to ghcr.io")
	}

	// A token without write access: one line naming the permission.
	res = harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: map[string]string{
		"source": "image", "images": "ghcr.io/acme/app", "tags": "v2", "github-token": "ghs_readonlytoken999",
	}})
	if res.Code == 0 {
		t.Fatal("push with a bad token succeeded")
	}
	msg := oneLineError(t, res)
	if !strings.Contains(msg, "packages: write") || leaks(res, "ghs_readonlytoken999") {
		t.Fatalf("error %q should name packages: write and hide the token", msg)
	}
}

func TestPushToECRCreatesRepositoriesAndRespectsImmutableTags(t *testing.T) {
	fake := fakeecr.Start(t)
	fake.SetPassword("ecr-registry-password")
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Hostnames: []string{ecrHost}, Users: map[string]string{"AWS": "ecr-registry-password"}})
	proxy := harness.StartProxy(t)
	proxy.Route(ecrHost, reg.Host)
	ws := t.TempDir()
	idx := sampleIndex(t)
	writeLayout(t, filepath.Join(ws, "v1"), idx)
	other, _ := synth.MultiArch([]string{"linux/amd64"}, 1, 4096, 99)
	writeLayout(t, filepath.Join(ws, "v1-rebuilt"), other)
	env := map[string]string{
		"SSL_CERT_FILE":         reg.CAFile,
		"HTTPS_PROXY":           proxy.URL,
		"AWS_ENDPOINT_URL_ECR":  fake.URL(),
		"AWS_REGION":            "us-east-1",
		"AWS_ACCESS_KEY_ID":     "AKIAEXAMPLEEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret-access-key-example",
	}
	inputs := map[string]string{
		"source": "v1", "images": ecrHost + "/team/app", "tags": "v1",
		"ecr-create-repository": "true", "ecr-tag-mutability": "IMMUTABLE", "ecr-scan-on-push": "true",
	}

	// Missing repository without auto-create: names the input.
	noCreate := map[string]string{}
	for k, v := range inputs {
		noCreate[k] = v
	}
	noCreate["ecr-create-repository"] = "false"
	res := harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: noCreate})
	if res.Code != 2 || !strings.Contains(oneLineError(t, res), "ecr-create-repository: true") {
		t.Fatalf("missing repository: exit %d, %s", res.Code, res.Log())
	}

	res = harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	repo, ok := fake.Repository("team/app")
	if !ok || repo.TagMutability != "IMMUTABLE" || !repo.ScanOnPush {
		t.Fatalf("repository not created as asked: %+v %v", repo, ok)
	}
	if fake.Calls(fakeecr.OpGetAuthorizationToken) != 1 {
		t.Fatalf("GetAuthorizationToken called %d times, want once per run", fake.Calls(fakeecr.OpGetAuthorizationToken))
	}
	if leaks(res, "ecr-registry-password") || leaks(res, "secret-access-key-example") {
		t.Fatal("a credential reached the log")
	}

	// Same digest, same immutable tag: idempotent.
	res = harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("idempotent re-push failed: %s", res.Log())
	}

	// Another image under the immutable tag: refused before any upload.
	reg.Counter.Reset()
	inputs["source"] = "v1-rebuilt"
	res = harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: inputs})
	want, _ := idx.Digest()
	got, _ := other.Digest()
	msg := oneLineError(t, res)
	if res.Code != 2 || !strings.Contains(msg, want.String()) || !strings.Contains(msg, got.String()) || !strings.Contains(msg, "immutable") {
		t.Fatalf("immutable tag: exit %d, %q", res.Code, msg)
	}
	if reg.Counter.Requests("PATCH uploads")+reg.Counter.Requests("PUT manifests") != 0 {
		t.Fatal("something was written although the tag is immutable")
	}
}

func TestPushBadInputFailsWithOneLine(t *testing.T) {
	ws := t.TempDir()
	writeLayout(t, filepath.Join(ws, "image"), sampleIndex(t))
	cases := []struct {
		name   string
		inputs map[string]string
		code   int
		want   string
	}{
		{"unknown stage", map[string]string{"stage": "push,deploy"}, 2, `unknown stage "deploy": valid stages are push, scan, sign, verify, clean`},
		{"no images", map[string]string{"source": "image"}, 2, `input "images" is required`},
		{"no source", map[string]string{"images": "127.0.0.1:1/app"}, 2, "set source"},
		{"bad tag", map[string]string{"source": "image", "images": "127.0.0.1:1/app", "tags": "-bad"}, 2, `invalid tag "-bad"`},
		{"bad repository", map[string]string{"source": "image", "images": "registry.example.com/App Name"}, 2, `invalid repository "registry.example.com/App Name"`},
		{"missing platform", map[string]string{"source": "image", "images": "127.0.0.1:1/app", "platforms": "linux/s390x"}, 2, "platform linux/s390x is not in the image: it has linux/amd64, linux/arm64"},
		{"bad bool", map[string]string{"source": "image", "images": "127.0.0.1:1/app", "ecr-create-repository": "sometimes"}, 2, `"sometimes" is not a boolean`},
		{"bad duration", map[string]string{"source": "image", "images": "127.0.0.1:1/app", "timeout": "forever"}, 2, `"forever" is not a duration`},
		{"missing source", map[string]string{"source": "./nope", "images": "127.0.0.1:1/app"}, 2, `source "`},
		{"unreachable registry", map[string]string{"source": "image", "images": "127.0.0.1:1/app", "tags": "v1"}, 1, "127.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := harness.Run(t, harness.Step{Dir: ws, Inputs: tc.inputs})
			if res.Code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", res.Code, tc.code, res.Log())
			}
			msg := oneLineError(t, res)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(res.Log(), "goroutine ") || strings.Contains(res.Log(), "panic") {
				t.Fatalf("stack trace in the log:\n%s", res.Log())
			}
		})
	}
}

func TestPushFromTheCommandLineWithJSON(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := t.TempDir()
	idx := sampleIndex(t)
	writeLayout(t, filepath.Join(ws, "image"), idx)
	res := harness.Run(t, harness.Step{Dir: ws, Args: []string{"push", "--source", "image", "--images", reg.Host + "/cli/app", "--tags", "v1", "--tags", "v2", "--json"}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	var doc struct {
		OK     bool `json:"ok"`
		Stages []struct {
			Stage  string `json:"stage"`
			Result struct {
				Digest  string `json:"digest"`
				Targets []struct {
					Tags []string `json:"tags"`
				} `json:"targets"`
			} `json:"result"`
		} `json:"stages"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, res.Stdout)
	}
	want, _ := idx.Digest()
	if !doc.OK || doc.Stages[0].Result.Digest != want.String() || len(doc.Stages[0].Result.Targets[0].Tags) != 2 {
		t.Fatalf("JSON result %+v", doc)
	}

	// Without --json: a table for people.
	res = harness.Run(t, harness.Step{Dir: ws, Args: []string{"push", "--source", "image", "--images", reg.Host + "/cli/app", "--tags", "v3"}})
	if res.Code != 0 || !strings.Contains(res.Stdout, "REPOSITORY") || !strings.Contains(res.Stdout, "pushed "+want.String()) {
		t.Fatalf("text output:\n%s", res.Log())
	}
}
