// Package benchutil holds what the benchmark drivers share: timing a command,
// summarising repeated timings, seeding caches and reading Trivy reports.
package benchutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Timed runs c and returns its wall time and standard output. A failure
// carries the command line and its standard error, so a broken peer tool is
// diagnosed from the benchmark's own output.
func Timed(c *exec.Cmd) (time.Duration, []byte, error) {
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	if err != nil {
		return d, stdout.Bytes(), fmt.Errorf("%s: %v\n%s%s", strings.Join(c.Args, " "), err, stderr.String(), stdout.String())
	}
	return d, stdout.Bytes(), nil
}

// Median is the middle value (the mean of the two middle ones for an even
// count), 0 for none.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	switch {
	case len(s) == 0:
		return 0
	case len(s)%2 == 1:
		return s[len(s)/2]
	default:
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
}

// Ratio is the median of a over the median of b.
func Ratio(a, b []time.Duration) float64 { return float64(Median(a)) / float64(Median(b)) }

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Rounded prints durations to the millisecond.
func Rounded(ds []time.Duration) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Round(time.Millisecond).String())
	}
	return out
}

// CopyDir copies the regular files of src (not its subdirectories) into
// dst, creating it: a seeded cache copied fresh for every run.
func CopyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Slug makes a case name usable in a file name.
func Slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

// Isolated returns a command maker whose processes run in dir with a
// minimal environment and their own home under work (no user's Docker or
// tool configuration leaks into a measurement).
func Isolated(work, dir string) (func(bin string, args ...string) *exec.Cmd, error) {
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, "docker"), "TMPDIR=" + os.TempDir()}
	return func(bin string, args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Dir, c.Env = dir, env
		return c
	}, nil
}

// CountVulnerabilities counts the findings of a Trivy JSON report.
func CountVulnerabilities(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var rep struct {
		Results []struct {
			Vulnerabilities []json.RawMessage
		}
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	n := 0
	for _, r := range rep.Results {
		n += len(r.Vulnerabilities)
	}
	return n, nil
}

// CheckFindings fails unless the Trivy JSON reports in dir hold want
// findings in all: a fast wrong scan is no win.
func CheckFindings(dir string, want int) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	got := 0
	for _, f := range files {
		n, err := CountVulnerabilities(f)
		if err != nil {
			return err
		}
		got += n
	}
	if got != want {
		return fmt.Errorf("%d vulnerabilities in %v, want %d", got, files, want)
	}
	return nil
}

// Absolute makes each command path that names a file (holds a slash)
// absolute, so it still works from the work directories the drivers run
// commands in; bare names are left to PATH.
func Absolute(paths ...*string) {
	for _, p := range paths {
		if abs, err := filepath.Abs(*p); err == nil && strings.Contains(*p, "/") {
			*p = abs
		}
	}
}
