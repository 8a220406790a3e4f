package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// Binary returns the path of the registry binary: $REGISTRY_BIN when the
// Makefile built it already, else a fresh build shared by the whole test
// process.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REGISTRY_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "registry-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "registry")
		cmd := exec.Command("go", "build", "-o", builtPath, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOEXPERIMENT=jsonv2", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// ModuleRoot finds the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Step is one invocation of the binary.
type Step struct {
	// Inputs are passed as INPUT_<NAME> variables (Action mode) when Args
	// is empty.
	Inputs map[string]string
	// Args run the CLI instead.
	Args []string
	// Env adds variables; the process otherwise gets a minimal, isolated
	// environment (no host credentials leak in).
	Env map[string]string
	// Dir is the working directory (default: a fresh temp dir).
	Dir     string
	Timeout time.Duration
	// Started, when set, receives the process once it runs (to signal it).
	Started func(*os.Process)
}

// Result is what the runner would see.
type Result struct {
	Code    int
	Stdout  string
	Stderr  string
	Outputs map[string]string
	Summary string
	Dir     string
	// TempDir is the binary's TMPDIR (unless Env set another).
	TempDir string
	// EnvFile is the GITHUB_ENV file the step could write.
	EnvFile string
	// OutputFile is the GITHUB_OUTPUT file, for checks on its raw form.
	OutputFile string
}

// Log is stdout and stderr together, for assertions about what a user reads.
func (r Result) Log() string { return r.Stdout + r.Stderr }

// Run starts the binary as GitHub's runner would start a container action:
// GITHUB_ACTIONS=true, inputs as INPUT_* variables, and fresh
// GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_ENV files read back after.
func Run(t testing.TB, step Step) Result {
	t.Helper()
	bin := Binary(t)
	tmp := t.TempDir()
	dir := step.Dir
	if dir == "" {
		dir = filepath.Join(tmp, "workspace")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{}
	for _, f := range []string{"GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV"} {
		files[f] = filepath.Join(tmp, strings.ToLower(f))
		if err := os.WriteFile(files[f], nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(tmp, "home")
	os.MkdirAll(home, 0o755)
	// The binary's own temp directory, so a test can see what a run leaves
	// behind there (nothing, by the rules) and no run litters the host's.
	tmpDir := filepath.Join(tmp, "tmp")
	os.MkdirAll(tmpDir, 0o755)
	env := []string{
		"TMPDIR=" + tmpDir,
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"GITHUB_ACTIONS=true",
		"GITHUB_WORKSPACE=" + dir,
		"GITHUB_REPOSITORY=acme/app",
		"GITHUB_ACTOR=octocat",
		"GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
		"GITHUB_SERVER_URL=https://github.com",
		"GITHUB_RUN_ID=42",
		// No AWS credentials from the host: tests that need them say so.
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "aws-credentials"),
	}
	for k, v := range files {
		env = append(env, k+"="+v)
	}
	if len(step.Args) == 0 {
		for k, v := range step.Inputs {
			env = append(env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(k, " ", "_"))+"="+v)
		}
	}
	for k, v := range step.Env {
		env = append(env, k+"="+v)
	}
	timeout := step.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	cmd := exec.Command(bin, step.Args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if step.Started != nil {
		step.Started(cmd.Process)
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Dir: dir, TempDir: tmpDir, EnvFile: files["GITHUB_ENV"], OutputFile: files["GITHUB_OUTPUT"]}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("run %s: %v", bin, err)
	}
	res.Outputs = parseFileCommands(t, files["GITHUB_OUTPUT"])
	summary, _ := os.ReadFile(files["GITHUB_STEP_SUMMARY"])
	res.Summary = string(summary)
	return res
}

// parseFileCommands reads name=value and name<<DELIM … DELIM entries.
func parseFileCommands(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok {
			var lines []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				lines = append(lines, sc.Text())
			}
			if !closed {
				t.Fatalf("%s: output %s: delimiter %s never closed", path, name, delim)
			}
			out[name] = strings.Join(lines, "\n")
			continue
		}
		if name, value, ok := strings.Cut(line, "="); ok {
			out[name] = value
		}
	}
	return out
}

// ReadFileCommands reads a GITHUB_OUTPUT or GITHUB_ENV file the way the
// runner does: name=value and name<<DELIM … DELIM entries.
func ReadFileCommands(t testing.TB, path string) map[string]string {
	t.Helper()
	return parseFileCommands(t, path)
}
