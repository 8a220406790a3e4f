// Package runner runs the Action's entrypoint exactly as GitHub's runner
// starts a container action — the environment, the paths and the files of
// actions/runner's ContainerActionHandler, emulated under a prefix directory
// — through a whole job: build and push with context, scan, sign, verify and
// clean. Docker is stood in by test/fakedocker. Where the kernel supports
// Landlock, the program and everything it starts may write only to the
// workspace, the container's /tmp and the runner's file-command files, so a
// write anywhere else fails the step.
package runner

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/steps/push"
	"github.com/registry-actions/registry/test/fakedocker"
	"github.com/registry-actions/registry/test/harness"
)

func TestMain(m *testing.M) {
	fakedocker.Main()
	sandboxMain()
	os.Exit(m.Run())
}

// runnerHost is the job's machine: the runner's directories, mounted into
// the action's container under a prefix instead of at /github.
type runnerHost struct {
	t          *testing.T
	prefix     string
	workspace  string // /github/workspace
	home       string // /github/home
	workflow   string // /github/workflow
	commands   string // /github/file_commands
	tmp        string // the container's own /tmp
	bin        string // the image's PATH: docker and nothing else
	record     string // where the docker stand-in records its calls
	confined   bool
	registry   string // the program under test
	stepNumber int
}

func newRunnerHost(t *testing.T) *runnerHost {
	t.Helper()
	prefix := t.TempDir()
	h := &runnerHost{
		t:         t,
		prefix:    prefix,
		workspace: filepath.Join(prefix, "github", "workspace"),
		home:      filepath.Join(prefix, "github", "home"),
		workflow:  filepath.Join(prefix, "github", "workflow"),
		commands:  filepath.Join(prefix, "github", "file_commands"),
		tmp:       filepath.Join(prefix, "tmp"),
		registry:  harness.Binary(t),
	}
	for _, d := range []string{h.workspace, h.home, h.workflow, h.commands, h.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(h.workflow, "event.json"), []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/app"}}`), 0o644)
	outside := t.TempDir()
	h.bin = fakedocker.Install(t, filepath.Join(outside, "bin"))
	h.record = filepath.Join(outside, "record")
	os.MkdirAll(h.record, 0o755)
	h.confined, _ = landlockAvailable()
	if !h.confined {
		_, why := landlockAvailable()
		t.Logf("Landlock is unavailable (%s): writes are checked by inspecting the runner's directories only", why)
	}
	return h
}

// step is one `uses: registry-actions/registry@v1` step.
type step struct {
	with map[string]string
	env  map[string]string // the step's env:
}

// stepResult is what the runner reads back.
type stepResult struct {
	code    int
	stdout  string
	outputs map[string]string
	summary string
}

// environment is the container's environment as ContainerActionHandler
// builds it: every input of action.yml as INPUT_<NAME> (upper case, hyphens
// kept, defaults filled in), the github context as GITHUB_* variables with
// host paths translated to the container's, and the runner's variables
// untranslated (RUNNER_TEMP names a host directory the container cannot see).
func (h *runnerHost) environment(s step, files map[string]string) []string {
	env := []string{
		"PATH=" + h.bin,
		// The image's /tmp, emulated.
		"TMPDIR=" + h.tmp,
		"HOME=" + h.home,
		"CI=true",
		"GITHUB_ACTIONS=true",
		"GITHUB_JOB=release",
		"GITHUB_REF=refs/heads/main",
		"GITHUB_REF_NAME=main",
		"GITHUB_REF_TYPE=branch",
		"GITHUB_REF_PROTECTED=true",
		"GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
		"GITHUB_REPOSITORY=acme/app",
		"GITHUB_REPOSITORY_ID=1296269",
		"GITHUB_REPOSITORY_OWNER=acme",
		"GITHUB_REPOSITORY_OWNER_ID=9919",
		"GITHUB_RUN_ID=42",
		"GITHUB_RUN_NUMBER=7",
		"GITHUB_RUN_ATTEMPT=1",
		"GITHUB_RETENTION_DAYS=90",
		"GITHUB_ACTOR=octocat",
		"GITHUB_ACTOR_ID=583231",
		"GITHUB_TRIGGERING_ACTOR=octocat",
		"GITHUB_WORKFLOW=release",
		"GITHUB_WORKFLOW_REF=acme/app/.github/workflows/release.yml@refs/heads/main",
		"GITHUB_WORKFLOW_SHA=0123456789abcdef0123456789abcdef01234567",
		"GITHUB_EVENT_NAME=push",
		"GITHUB_EVENT_PATH=" + filepath.Join(h.workflow, "event.json"),
		"GITHUB_SERVER_URL=https://github.com",
		"GITHUB_API_URL=https://api.github.com",
		"GITHUB_GRAPHQL_URL=https://api.github.com/graphql",
		"GITHUB_HEAD_REF=",
		"GITHUB_BASE_REF=",
		"GITHUB_WORKSPACE=" + h.workspace,
		fmt.Sprintf("GITHUB_ACTION=__registry-actions_registry_%d", h.stepNumber),
		"GITHUB_ACTION_REPOSITORY=registry-actions/registry",
		"GITHUB_ACTION_REF=v1",
		"RUNNER_OS=Linux",
		"RUNNER_ARCH=X64",
		"RUNNER_NAME=GitHub Actions 7",
		"RUNNER_ENVIRONMENT=github-hosted",
		"RUNNER_TOOL_CACHE=/opt/hostedtoolcache",
		"RUNNER_TEMP=/home/runner/work/_temp",
		"RUNNER_WORKSPACE=/home/runner/work/app",
		"RUNNER_DEBUG=1",
		"ACTIONS_RUNTIME_URL=https://pipelines.actions.githubusercontent.com/acme/",
		"ACTIONS_RUNTIME_TOKEN=runtime-token-not-for-this-program",
		"ACTIONS_CACHE_URL=https://artifactcache.actions.githubusercontent.com/acme/",
		"ACTIONS_RESULTS_URL=https://results-receiver.actions.githubusercontent.com/",
		fakedocker.EnvLog + "=" + filepath.Join(h.record, "docker.log"),
	}
	for kind, path := range files {
		env = append(env, kind+"="+path)
	}
	for _, in := range inputs.All() {
		v, ok := s.with[in.Name]
		if !ok {
			v = in.Default
			if in.ActionDefault != "" {
				// ${{ github.token }}, evaluated by the runner.
				v = "ghs_workflowtokenforthisjob0123456789"
			}
		}
		env = append(env, "INPUT_"+strings.ToUpper(in.Name)+"="+v)
	}
	for k := range s.with {
		if _, ok := inputs.Lookup(k); !ok {
			h.t.Fatalf("with: %s is not an input of action.yml", k)
		}
	}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	return env
}

// run starts the entrypoint in the workspace, with fresh file-command files
// as the runner creates them for every step.
func (h *runnerHost) run(s step) stepResult {
	h.t.Helper()
	h.stepNumber++
	files := map[string]string{}
	for kind, prefix := range map[string]string{"GITHUB_OUTPUT": "set_output_", "GITHUB_STEP_SUMMARY": "step_summary_", "GITHUB_ENV": "set_env_", "GITHUB_PATH": "add_path_", "GITHUB_STATE": "save_state_"} {
		var id [16]byte
		rand.Read(id[:])
		files[kind] = filepath.Join(h.commands, prefix+hex.EncodeToString(id[:]))
		if err := os.WriteFile(files[kind], nil, 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	env := h.environment(s, files)
	var cmd *exec.Cmd
	if h.confined {
		self, err := os.Executable()
		if err != nil {
			h.t.Fatal(err)
		}
		allowed, _ := json.Marshal(sandbox{
			Dirs:  []string{h.workspace, h.tmp, h.record},
			Files: slices.Collect(maps.Values(files)),
		})
		cmd = exec.Command(self)
		cmd.Env = append(env, envSandboxExec+"="+h.registry, envSandboxRW+"="+string(allowed))
	} else {
		cmd = exec.Command(h.registry)
		cmd.Env = env
	}
	cmd.Dir = h.workspace
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	timer := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	res := stepResult{stdout: stdout.String() + stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		h.t.Fatal(err)
	}
	if res.code == 125 && strings.Contains(stderr.String(), "sandbox:") {
		h.t.Fatalf("the sandbox could not start the program: %s", stderr.String())
	}
	res.outputs = harness.ReadFileCommands(h.t, files["GITHUB_OUTPUT"])
	summary, _ := os.ReadFile(files["GITHUB_STEP_SUMMARY"])
	res.summary = string(summary)
	return res
}

func (h *runnerHost) mustSucceed(what string, res stepResult) {
	h.t.Helper()
	if res.code != 0 {
		h.t.Fatalf("%s: exit %d\n%s", what, res.code, res.stdout)
	}
}

const keyPassword = "cosign-key-password-for-the-job"

func TestContainerActionJob(t *testing.T) {
	h := newRunnerHost(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})

	// The checkout: a Dockerfile, the signing key pair, a build secret
	// file and the vulnerability DB restored from a cache.
	ws := h.workspace
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM alpine\nRUN --mount=type=secret,id=netrc true\n"), 0o644)
	os.WriteFile(filepath.Join(ws, "netrc"), []byte("machine git.example.com"), 0o600)
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(keyPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ws, "cosign.key"), kb.PrivateBytes, 0o600)
	os.WriteFile(filepath.Join(ws, "cosign.pub"), kb.PublicBytes, 0o644)
	if err := vulndb.SeedCache(filepath.Join(ws, ".cache", "trivy"), vulndb.MetadataAt(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "base")
	if err := vulndb.WriteSampleLayout(base); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, h.prefix, ws, h.tmp, h.commands)

	// Build from source, push to two repositories, scan, sign.
	app, mirror := reg.Host+"/team/app", reg.Host+"/mirror/app"
	res := h.run(step{
		with: map[string]string{
			"stage": "push,scan,sign", "context": ".", "file": "Dockerfile", "platforms": "linux/amd64,linux/arm64",
			"labels":  "org.opencontainers.image.source=https://github.com/acme/app",
			"secrets": "id=netrc,src=netrc\nid=token,env=BUILD_TOKEN",
			"images":  app + "\n" + mirror, "tags": "v1",
			"skip-db-update": "true", "fail-on": "none", "formats": "sarif,json",
			"key": "cosign.key", "key-password": keyPassword, "tlog-upload": "false",
		},
		env: map[string]string{fakedocker.EnvBase: base, "BUILD_TOKEN": "token-from-the-step-env"},
	})
	h.mustSucceed("push,scan,sign", res)

	digest := res.outputs["digest"]
	for _, repo := range []string{app, mirror} {
		ref, _ := name.ParseReference(repo+":v1", name.Insecure)
		desc, err := remote.Head(ref)
		if err != nil || desc.Digest.String() != digest {
			t.Fatalf("%s:v1 is %v (%v), want the digest output %s", repo, desc, err, digest)
		}
	}
	recs := fakedocker.ReadLog(t, filepath.Join(h.record, "docker.log"))
	build := recs[len(recs)-1]
	if build.Args[1] != "build" || build.Builder != push.BuilderName {
		t.Fatalf("last docker call %q on builder %q, want a build on %s", build.Args, build.Builder, push.BuilderName)
	}
	// Relative inputs are the workspace's; the build ran there.
	if ctx := build.Args[len(build.Args)-1]; ctx != ws || build.Dir != ws || !slices.Contains(build.Args, filepath.Join(ws, "Dockerfile")) {
		t.Errorf("build context %q, dir %q, args %q: want the workspace", ctx, build.Dir, build.Args)
	}
	if build.Secrets["netrc"] != "machine git.example.com" || build.Secrets["token"] != "token-from-the-step-env" {
		t.Errorf("secrets reached the build as %v", build.Secrets)
	}
	// The private Docker configuration lived in the container's /tmp and
	// is gone.
	if !strings.HasPrefix(build.DockerConfig, h.tmp+string(filepath.Separator)) {
		t.Errorf("DOCKER_CONFIG %s is not in the container's temporary directory", build.DockerConfig)
	}
	if _, err := os.Stat(build.DockerConfig); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DOCKER_CONFIG %s outlived the step", build.DockerConfig)
	}
	// buildx's output cannot issue workflow commands.
	fence := regexp.MustCompile(`(?s)::stop-commands::([0-9a-f]{32})\n.*` + regexp.QuoteMeta(fakedocker.HostileLine) + `.*\n::([0-9a-f]{32})::\n`).FindStringSubmatch(res.stdout)
	if fence == nil || fence[1] != fence[2] {
		t.Errorf("buildx's output is not fenced by stop-commands:\n%s", res.stdout)
	}
	// Report paths are relative to the workspace, where later steps find them.
	sarif := res.outputs["sarif"]
	if sarif == "" || filepath.IsAbs(sarif) {
		t.Fatalf("sarif output %q, want a path relative to the workspace", sarif)
	}
	if _, err := os.Stat(filepath.Join(ws, sarif)); err != nil {
		t.Errorf("the SARIF file is not in the workspace: %v", err)
	}
	if res.outputs["signed"] == "" || !strings.Contains(res.summary, "## ") {
		t.Errorf("signed %q, summary:\n%s", res.outputs["signed"], res.summary)
	}

	// Verify with the public key from the checkout.
	res = h.run(step{with: map[string]string{
		"stage": "verify", "images": app + "@" + digest, "public-key": "cosign.pub", "tlog-upload": "false",
	}})
	h.mustSucceed("verify", res)
	if res.outputs["verified"] != "true" {
		t.Errorf("verified %q", res.outputs["verified"])
	}

	// Clean in preview.
	reg.Counter.Reset()
	res = h.run(step{with: map[string]string{
		"stage": "clean", "images": app, "untagged-older-than": "7d", "mode": "preview",
	}})
	h.mustSucceed("clean", res)
	if n := reg.Counter.Requests("DELETE manifests"); n != 0 {
		t.Errorf("preview sent %d DELETE requests", n)
	}
	if plan := res.outputs["plan"]; plan == "" || filepath.IsAbs(plan) {
		t.Errorf("plan output %q, want a path relative to the workspace", plan)
	} else if _, err := os.Stat(filepath.Join(ws, plan)); err != nil {
		t.Errorf("the plan is not in the workspace: %v", err)
	}

	// Nothing outside the workspace, /tmp and the file commands changed.
	after := snapshot(t, h.prefix, ws, h.tmp, h.commands)
	if diff := changed(before, after); len(diff) > 0 {
		t.Errorf("the job wrote outside the workspace and temporary directories: %q", diff)
	}
	if left, _ := os.ReadDir(h.tmp); len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("the container's /tmp still holds %q after the job", names)
	}
}

// snapshot lists every file under root (outside the skipped directories)
// with its size and modification time.
func snapshot(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains(skip, p) {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%v %d %s", info.Mode(), info.Size(), info.ModTime())
		return nil
	})
	return out
}

func changed(before, after map[string]string) []string {
	var diff []string
	for p, v := range after {
		if before[p] != v {
			diff = append(diff, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			diff = append(diff, p)
		}
	}
	slices.Sort(diff)
	return diff
}
