package e2e

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/steps/push"
	"github.com/registry-actions/registry/test/fakedocker"
	"github.com/registry-actions/registry/test/harness"
)

// TestMain lets this test binary stand in for docker (fakedocker.Install).
func TestMain(m *testing.M) {
	fakedocker.Main()
	os.Exit(m.Run())
}

func TestBuildRunsBuildxAndPushesItsArchive(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: map[string]string{"ci": "cache-pass-word"}})
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	root := t.TempDir()
	base := filepath.Join(root, "base")
	if err := vulndb.WriteSampleLayout(base); err != nil {
		t.Fatal(err)
	}
	bin := fakedocker.Install(t, filepath.Join(root, "bin"))
	log := filepath.Join(root, "docker.log")
	env := map[string]string{
		"PATH":               bin,
		fakedocker.EnvLog:    log,
		fakedocker.EnvBase:   base,
		"SSL_CERT_FILE":      reg.CAFile,
		"BUILD_TOKEN_SOURCE": "token-from-env",
	}
	cache := reg.Host + "/app:buildcache"
	res := harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: map[string]string{
		"context": ".", "file": "Dockerfile", "platforms": "linux/amd64,linux/arm64",
		"build-args": "VERSION=1.2.3\nNOTE=a,b", "target": "runtime", "labels": "org.opencontainers.image.source=https://github.com/acme/app",
		"cache-from": "type=registry,ref=" + cache, "cache-to": "type=registry,ref=" + cache + ",mode=max",
		"secrets": "GIT_AUTH_TOKEN=a-literal-build-secret\nid=token,env=BUILD_TOKEN_SOURCE", "no-cache": "true",
		"images": reg.Host + "/app", "tags": "v1", "registry-username": "ci", "registry-password": "cache-pass-word",
	}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	recs := fakedocker.ReadLog(t, log)
	build := recs[len(recs)-1]
	want := []string{"buildx", "build", "--builder", push.BuilderName, "--progress", "plain", "--file", filepath.Join(ws, "Dockerfile"), "--platform", "linux/amd64,linux/arm64",
		"--build-arg", "VERSION=1.2.3", "--build-arg", "NOTE=a,b", "--target", "runtime",
		"--label", "org.opencontainers.image.source=https://github.com/acme/app",
		"--cache-from", "type=registry,ref=" + cache, "--cache-to", "type=registry,ref=" + cache + ",mode=max"}
	if got := build.Args; len(got) < len(want) || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
		t.Fatalf("buildx arguments\n got %q\nwant %q + …", got, want)
	}
	if got := build.Args[len(build.Args)-1]; got != ws {
		t.Errorf("context %q, want the workspace", got)
	}
	if build.Secrets["GIT_AUTH_TOKEN"] != "a-literal-build-secret" || build.Secrets["token"] != "token-from-env" {
		t.Errorf("secrets reached the build as %v", build.Secrets)
	}
	if build.Auths[reg.Host] != "ci:cache-pass-word" {
		t.Fatalf("buildx did not get the registry's credentials: %v", build.Auths)
	}
	if _, err := os.Stat(build.DockerConfig); !os.IsNotExist(err) {
		t.Fatalf("the temporary DOCKER_CONFIG %s was not removed", build.DockerConfig)
	}
	// What was pushed is what the build wrote: its labels are on every platform.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: reg.Pool()}
	ref, _ := name.ParseReference(reg.Host + "/app:v1")
	idx, err := remote.Index(ref, remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: "ci", Password: "cache-pass-word"}))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	if res.Outputs["digest"] != d.String() {
		t.Fatalf("digest %q, want the pushed index's %s", res.Outputs["digest"], d)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("pushed %d manifests, want the two platforms without attestations", len(im.Manifests))
	}
	for _, m := range im.Manifests {
		img, _ := idx.Image(m.Digest)
		cf, err := img.ConfigFile()
		if err != nil || cf.Config.Labels["org.opencontainers.image.source"] != "https://github.com/acme/app" {
			t.Fatalf("%s: labels %v (%v)", m.Platform, cf.Config.Labels, err)
		}
	}
	// buildx's output cannot issue workflow commands.
	fence := regexp.MustCompile(`(?s)::stop-commands::([0-9a-f]{32})\n.*` + regexp.QuoteMeta(fakedocker.HostileLine) + `.*\n::([0-9a-f]{32})::\n`).FindStringSubmatch(res.Stdout)
	if fence == nil || fence[1] != fence[2] {
		t.Fatalf("buildx's output is not fenced by stop-commands:\n%s", res.Stdout)
	}
	// The secrets input is masked as a whole and line by line; apart from
	// those ::add-mask:: commands no value may show.
	shown := res
	shown.Stdout = regexp.MustCompile(`(?m)^::add-mask::.*$`).ReplaceAllString(res.Stdout, "")
	for _, secret := range []string{"cache-pass-word", "a-literal-build-secret"} {
		if leaks(shown, secret) {
			t.Fatalf("%.6s… reached the log", secret)
		}
	}
}

func TestBuildWithoutDockerSaysSo(t *testing.T) {
	ws := t.TempDir()
	empty := t.TempDir()
	res := harness.Run(t, harness.Step{Dir: ws, Env: map[string]string{"PATH": empty}, Inputs: map[string]string{
		"context": ".", "images": "127.0.0.1:1/app", "tags": "v1",
	}})
	if res.Code != 2 || !strings.Contains(oneLineError(t, res), "needs Docker with buildx on the runner") {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
}
