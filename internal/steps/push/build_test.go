package push

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/test/fakedocker"
)

func TestMain(m *testing.M) {
	fakedocker.Main()
	os.Exit(m.Run())
}

// buildEnv is a machine with the docker stand-in on PATH, a user whose
// Docker configuration lives in home/.docker, and a workspace with a
// Dockerfile.
type buildEnv struct {
	t         *testing.T
	ws, home  string
	log       string
	env       []string
	userFiles map[string]string
}

func newBuildEnv(t *testing.T, extra ...string) *buildEnv {
	t.Helper()
	root := t.TempDir()
	e := &buildEnv{t: t, ws: filepath.Join(root, "ws"), home: filepath.Join(root, "home"), log: filepath.Join(root, "docker.log")}
	os.MkdirAll(e.ws, 0o755)
	os.MkdirAll(filepath.Join(e.home, ".docker"), 0o700)
	os.WriteFile(filepath.Join(e.ws, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	base := filepath.Join(root, "base")
	if err := vulndb.WriteSampleLayout(base); err != nil {
		t.Fatal(err)
	}
	bin := fakedocker.Install(t, filepath.Join(root, "bin"))
	e.env = append([]string{
		"PATH=" + bin,
		"HOME=" + e.home,
		fakedocker.EnvLog + "=" + e.log,
		fakedocker.EnvBase + "=" + base,
	}, extra...)
	t.Setenv("PATH", bin)
	return e
}

// snapshot lists the user's Docker configuration, to prove a build leaves it
// as it was.
func (e *buildEnv) snapshot() map[string]string {
	out := map[string]string{}
	root := filepath.Join(e.home, ".docker")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			out[strings.TrimPrefix(p, root)] = string(data)
		}
		return nil
	})
	return out
}

func (e *buildEnv) opts() BuildOptions {
	return BuildOptions{Context: e.ws, Dir: e.ws, Env: e.env, Platforms: []string{"linux/amd64", "linux/arm64"}, Labels: []string{"org.opencontainers.image.revision=abc"}, Output: logWriter{e.t}}
}

// logWriter shows buildx's output in the test's log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *buildEnv) build(opts BuildOptions, reg *registry.Client) (string, func(), error) {
	if reg == nil {
		reg = registry.New(registry.Options{})
	}
	return Build(context.Background(), opts, reg, report.Discard{})
}

func commands(recs []fakedocker.Record) []string {
	var out []string
	for _, r := range recs {
		n := min(3, len(r.Args))
		out = append(out, strings.Join(r.Args[:n], " "))
	}
	return out
}

func TestBuildCreatesADockerContainerBuilderWhenTheDefaultCannotExportOCI(t *testing.T) {
	e := newBuildEnv(t)
	before := e.snapshot()
	archive, cleanup, err := e.build(e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := fakedocker.ReadLog(t, e.log)
	want := []string{"buildx version", "buildx inspect", "buildx inspect " + BuilderName, "buildx create --name", "buildx build --builder"}
	if got := commands(recs); !slices.Equal(got, want) {
		t.Fatalf("docker was run as %q, want %q", got, want)
	}
	if b := recs[len(recs)-1]; b.Builder != BuilderName {
		t.Fatalf("built on %q", b.Builder)
	}
	// The builder went into the private configuration, not the user's.
	cfg := recs[0].DockerConfig
	if cfg == "" || strings.HasPrefix(cfg, e.home) {
		t.Fatalf("DOCKER_CONFIG %q is not private to the run", cfg)
	}
	if after := e.snapshot(); len(after) != len(before) {
		t.Fatalf("the user's Docker configuration changed: %v", after)
	}
	// What the build wrote is an image push can open: the index of both
	// platforms, with the labels asked for.
	src, err := registry.Sources{}.OpenSpec(context.Background(), registry.SourceSpec{Spec: "build", Kind: registry.SourceOCIArchive, Path: archive})
	if err != nil {
		t.Fatal(err)
	}
	idx, ok := src.Root.(v1.ImageIndex)
	if !ok {
		t.Fatalf("the build wrote a %T, want an index", src.Root)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("%d manifests, want one per platform", len(im.Manifests))
	}
	img, _ := idx.Image(im.Manifests[0].Digest)
	if cf, err := img.ConfigFile(); err != nil || cf.Config.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Fatalf("labels of the built image: %v (%v)", cf, err)
	}
	src.Close()
	cleanup()
	if _, err := os.Stat(cfg); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the private configuration %s outlived the build", cfg)
	}
}

func TestBuildUsesTheDefaultBuilderWithTheContainerdStore(t *testing.T) {
	e := newBuildEnv(t, fakedocker.EnvContainerd+"=true")
	_, cleanup, err := e.build(e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	recs := fakedocker.ReadLog(t, e.log)
	if got := commands(recs); !slices.Equal(got, []string{"buildx version", "buildx inspect", "buildx build --progress"}) {
		t.Fatalf("docker was run as %q", got)
	}
}

func TestBuildReusesTheNamedBuilderOfTheUsersConfigWithoutWritingIt(t *testing.T) {
	e := newBuildEnv(t)
	inst := filepath.Join(e.home, ".docker", "buildx", "instances")
	os.MkdirAll(inst, 0o700)
	os.WriteFile(filepath.Join(inst, BuilderName), []byte(`{"Name":"`+BuilderName+`","Driver":"docker-container"}`), 0o600)
	before := e.snapshot()
	_, cleanup, err := e.build(e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	recs := fakedocker.ReadLog(t, e.log)
	if got := commands(recs); !slices.Equal(got, []string{"buildx version", "buildx inspect", "buildx inspect " + BuilderName, "buildx build --builder"}) {
		t.Fatalf("docker was run as %q", got)
	}
	after := e.snapshot()
	if len(after) != len(before) {
		t.Fatalf("the user's Docker configuration changed: %v", after)
	}
}

func TestBuildPassesSecretsWithoutPuttingValuesOnTheCommandLine(t *testing.T) {
	e := newBuildEnv(t, "NPM_TOKEN=from-the-environment", fakedocker.EnvContainerd+"=true")
	os.WriteFile(filepath.Join(e.ws, "netrc"), []byte("machine example.com"), 0o600)
	opts := e.opts()
	opts.Secrets = []string{"GIT_AUTH_TOKEN=literal-secret-value", "id=netrc,src=netrc", "id=npm,env=NPM_TOKEN"}
	opts.SSH = []string{"default"}
	opts.NoCache, opts.Pull = true, true
	opts.Provenance = "mode=max"
	_, cleanup, err := e.build(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	recs := fakedocker.ReadLog(t, e.log)
	b := recs[len(recs)-1]
	want := map[string]string{"GIT_AUTH_TOKEN": "literal-secret-value", "netrc": "machine example.com", "npm": "from-the-environment"}
	for id, v := range want {
		if b.Secrets[id] != v {
			t.Errorf("secret %s reached the build as %q, want %q", id, b.Secrets[id], v)
		}
	}
	line := strings.Join(b.Args, " ")
	if strings.Contains(line, "literal-secret-value") {
		t.Fatalf("a secret value is on the command line: %s", line)
	}
	for _, flag := range []string{"--ssh default", "--no-cache", "--pull", "--provenance=mode=max", "--sbom=false"} {
		if !strings.Contains(line, flag) {
			t.Errorf("%s missing from %s", flag, line)
		}
	}
	if got := SecretValues(opts.Secrets); !slices.Equal(got, []string{"literal-secret-value"}) {
		t.Errorf("values to mask %q", got)
	}
}

func TestBuildRejectsASecretWithoutAnID(t *testing.T) {
	e := newBuildEnv(t)
	opts := e.opts()
	opts.Secrets = []string{"src=./token"}
	_, _, err := e.build(opts, nil)
	if failure.Code(err) != failure.ExitInvalid || !strings.Contains(err.Error(), "has no id") {
		t.Fatalf("err %v", err)
	}
}

func TestBuildGivesBuildxCredentialsForCacheAndTargetsOnly(t *testing.T) {
	e := newBuildEnv(t, fakedocker.EnvContainerd+"=true")
	reg := registry.New(registry.Options{Credentials: registry.Credentials{Username: "ci", Password: "cache-password"}})
	opts := e.opts()
	opts.CacheFrom = []string{"type=registry,ref=cache.example.com/app:buildcache"}
	opts.CacheTo = []string{"type=local,dest=/tmp/never-used"}
	opts.Repositories = []string{"registry.example.com/team/app"}
	_, cleanup, err := e.build(opts, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	recs := fakedocker.ReadLog(t, e.log)
	auths := recs[len(recs)-1].Auths
	want := map[string]string{"cache.example.com": "ci:cache-password", "registry.example.com": "ci:cache-password"}
	if len(auths) != len(want) || auths["cache.example.com"] != want["cache.example.com"] || auths["registry.example.com"] != want["registry.example.com"] {
		t.Fatalf("buildx got credentials %v, want %v", auths, want)
	}
}

func TestBuildOutputCannotIssueWorkflowCommands(t *testing.T) {
	e := newBuildEnv(t, fakedocker.EnvContainerd+"=true")
	var out bytes.Buffer
	opts := e.opts()
	opts.Output, opts.StopCommands = &out, true
	_, cleanup, err := e.build(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	m := regexp.MustCompile(`(?s)^::stop-commands::([0-9a-f]{32})\n(.*)\n::([0-9a-f]{32})::\n$`).FindStringSubmatch(out.String())
	if m == nil || m[1] != m[3] || !strings.Contains(m[2], fakedocker.HostileLine) {
		t.Fatalf("buildx's output is not fenced by stop-commands:\n%s", out.String())
	}
}

func TestBuildFailuresSayWhatTheRunnerLacks(t *testing.T) {
	for _, tc := range []struct {
		name, env, want string
		code            int
	}{
		{"no buildx", fakedocker.EnvNoBuildx + "=true", "needs the docker buildx plugin", failure.ExitInvalid},
		{"no daemon", fakedocker.EnvDaemonDown + "=true", "/var/run/docker.sock", failure.ExitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newBuildEnv(t, tc.env)
			_, _, err := e.build(e.opts(), nil)
			if err == nil || failure.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v (exit %d), want exit %d mentioning %q", err, failure.Code(err), tc.code, tc.want)
			}
		})
	}
}

func TestParseInspectReadsBuildxOutput(t *testing.T) {
	// docker buildx inspect (DEBUG=1) on a docker driver without the
	// containerd image store, as buildx's tabwriter lays it out.
	out := `Name:          default
Driver:        docker
Last Activity: 2026-08-01 10:00:00 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.25.2
Platforms:        linux/amd64, linux/amd64/v2, linux/386
Features:
 Automatically load images to the Docker Engine image store: true
 Cache export:                                               false
 Docker exporter:                                            false
 Multi-platform build:                                       false
 OCI exporter:                                               false
Labels:
 org.mobyproject.buildkit.worker.moby.host-gateway-ip: 172.17.0.1
`
	info := parseInspect(out)
	if info.Name != "default" || info.Driver != "docker" || info.Err != "" || info.canExportOCI() {
		t.Fatalf("%+v", info)
	}
	if !parseInspect("Name: b\nDriver: docker-container\n").canExportOCI() {
		t.Fatal("a docker-container builder without a features list can export OCI")
	}
	if parseInspect("Name: default\nDriver: docker\n").canExportOCI() {
		t.Fatal("a docker driver without a features list cannot be assumed to export OCI")
	}
	if got := parseInspect("Name: default\nDriver: docker\nError: Cannot connect\n").Err; got != "Cannot connect" {
		t.Fatalf("error %q", got)
	}
}
