package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/synth"
	"github.com/registry-actions/registry/test/harness"
)

// standInDocker records how it was called and writes a prepared OCI archive
// where buildx would have written the build.
const standInDocker = `#!/bin/sh
printf '%s\n' "$@" > "$RECORD_DIR/args"
cp "$DOCKER_CONFIG/config.json" "$RECORD_DIR/config.json"
echo "$DOCKER_CONFIG" > "$RECORD_DIR/docker-config-dir"
for a in "$@"; do
  case "$a" in type=oci,dest=*) dest="${a#type=oci,dest=}" ;; esac
done
cp "$FIXTURE_ARCHIVE" "$dest"
`

func TestBuildRunsBuildxAndPushesItsArchive(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Users: map[string]string{"ci": "cache-pass-word"}})
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	bin := filepath.Join(t.TempDir(), "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "docker"), []byte(standInDocker), 0o755)
	record := t.TempDir()
	idx := sampleIndex(t)
	archive := filepath.Join(t.TempDir(), "built.tar")
	if err := synth.WriteOCIArchive(archive, idx); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PATH":            bin + ":" + os.Getenv("PATH"),
		"RECORD_DIR":      record,
		"FIXTURE_ARCHIVE": archive,
		"SSL_CERT_FILE":   reg.CAFile,
	}
	cache := reg.Host + "/app:buildcache"
	res := harness.Run(t, harness.Step{Dir: ws, Env: env, Inputs: map[string]string{
		"context": ".", "file": "Dockerfile", "platforms": "linux/amd64,linux/arm64",
		"build-args": "VERSION=1.2.3\nNOTE=a,b", "target": "runtime", "labels": "org.opencontainers.image.source=https://github.com/acme/app",
		"cache-from": "type=registry,ref=" + cache, "cache-to": "type=registry,ref=" + cache + ",mode=max",
		"images": reg.Host + "/app", "tags": "v1", "registry-username": "ci", "registry-password": "cache-pass-word",
	}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	args, _ := os.ReadFile(filepath.Join(record, "args"))
	want := []string{"buildx", "build", "--file", filepath.Join(ws, "Dockerfile"), "--platform", "linux/amd64,linux/arm64",
		"--build-arg", "VERSION=1.2.3", "--build-arg", "NOTE=a,b", "--target", "runtime",
		"--label", "org.opencontainers.image.source=https://github.com/acme/app",
		"--cache-from", "type=registry,ref=" + cache, "--cache-to", "type=registry,ref=" + cache + ",mode=max", "--output"}
	got := strings.Split(strings.TrimSpace(string(args)), "\n")
	if len(got) != len(want)+2 || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") || got[len(got)-1] != filepath.Join(ws, ".") && got[len(got)-1] != ws {
		t.Fatalf("buildx arguments\n got %q\nwant %q + dest + context", got, want)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	raw, _ := os.ReadFile(filepath.Join(record, "config.json"))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Auths[reg.Host].Auth != base64.StdEncoding.EncodeToString([]byte("ci:cache-pass-word")) {
		t.Fatalf("buildx did not get the cache registry's credentials: %s", raw)
	}
	dir, _ := os.ReadFile(filepath.Join(record, "docker-config-dir"))
	if _, err := os.Stat(strings.TrimSpace(string(dir))); !os.IsNotExist(err) {
		t.Fatalf("the temporary DOCKER_CONFIG %s was not removed", dir)
	}
	wantDigest, _ := idx.Digest()
	if res.Outputs["digest"] != wantDigest.String() {
		t.Fatalf("digest %q, want the built image's %s", res.Outputs["digest"], wantDigest)
	}
	if leaks(res, "cache-pass-word") {
		t.Fatal("the password reached the log")
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
