package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// The test binary doubles as a launcher that confines the program before it
// starts: with these variables set it restricts itself with Landlock (the
// kernel refuses every write outside the listed paths, for the program and
// every process it starts) and executes the program in its place.
const (
	envSandboxExec = "RUNNER_TEST_SANDBOX_EXEC"
	envSandboxRW   = "RUNNER_TEST_SANDBOX_RW"
	// envWriteFile makes the test binary write one file and exit, to prove
	// the sandbox refuses writes.
	envWriteFile = "RUNNER_TEST_WRITE_FILE"
)

// sandbox is what the launcher may let the program write.
type sandbox struct {
	Dirs  []string `json:"dirs"`
	Files []string `json:"files"`
}

// landlockAvailable reports whether the kernel can confine writes (ABI 3:
// writes, renames across directories and truncation are all restricted).
func landlockAvailable() (bool, string) {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return false, err.Error()
	}
	if v < 3 {
		return false, fmt.Sprintf("Landlock ABI %d (3 needed)", v)
	}
	return true, ""
}

// sandboxMain runs the launcher when the variables ask for it; it does not
// return then.
func sandboxMain() {
	bin := os.Getenv(envSandboxExec)
	if bin == "" {
		if path := os.Getenv(envWriteFile); path != "" {
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		}
		return
	}
	var sb sandbox
	if err := json.Unmarshal([]byte(os.Getenv(envSandboxRW)), &sb); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		os.Exit(125)
	}
	rules := []landlock.Rule{
		landlock.RODirs("/"),
		landlock.RWDirs(sb.Dirs...).WithRefer(),
		landlock.RWFiles(append(sb.Files, "/dev/null")...),
	}
	if err := landlock.V3.RestrictPaths(rules...); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		os.Exit(125)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envSandboxExec+"=") && !strings.HasPrefix(kv, envSandboxRW+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(bin, []string{bin}, env)
	fmt.Fprintf(os.Stderr, "sandbox: exec %s: %v\n", bin, err)
	os.Exit(125)
}

func TestSandboxRefusesWritesOutsideTheAllowedPaths(t *testing.T) {
	if ok, why := landlockAvailable(); !ok {
		t.Skip(why)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	allowed, outside := t.TempDir(), t.TempDir()
	rw, _ := json.Marshal(sandbox{Dirs: []string{allowed}})
	for _, tc := range []struct {
		path string
		ok   bool
	}{{filepath.Join(allowed, "f"), true}, {filepath.Join(outside, "f"), false}} {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), envSandboxExec+"="+self, envSandboxRW+"="+string(rw), envWriteFile+"="+tc.path)
		out, err := cmd.CombinedOutput()
		if (err == nil) != tc.ok {
			t.Errorf("write to %s: %v %s", tc.path, err, out)
		}
		if _, serr := os.Stat(tc.path); (serr == nil) != tc.ok {
			t.Errorf("write to %s: file exists = %v", tc.path, serr == nil)
		}
	}
}
