// Package app is the program's two front doors — a GitHub Action reading
// INPUT_* variables and a CLI reading flags — leading to one chain of stages.
// It turns inputs into stage options and stage results into outputs, job
// summaries and CLI text; the stages themselves know nothing of either.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/sethvargo/go-githubactions"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/version"
)

// IO is the process's outside world, passed in so tests and the demo can run
// the program exactly as a runner would without touching the real one.
type IO struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Dir is the working directory relative paths resolve against.
	Dir string
	// Environ lists the environment for child processes (docker buildx).
	Environ func() []string
	// ReadPassword asks for a password on the terminal without echo; nil
	// when there is no terminal to ask on.
	ReadPassword func(prompt string) ([]byte, error)
}

// OSIO is the real process.
func OSIO() IO {
	dir, _ := os.Getwd()
	return IO{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Dir: dir, Environ: os.Environ, ReadPassword: terminalPassword()}
}

// Main runs the program and returns its exit code.
func Main(ctx context.Context, pio IO) int {
	if pio.Getenv == nil {
		pio.Getenv = func(string) string { return "" }
	}
	action := len(pio.Args) == 0 && pio.Getenv("GITHUB_ACTIONS") == "true"
	engineLog := pio.Stderr
	if action {
		engineLog = pio.Stdout
	}
	configureEngineLogging(engineLog, pio.Getenv("RUNNER_DEBUG") == "1")
	if action {
		return runAction(ctx, pio)
	}
	return runCLI(ctx, pio)
}

// runAction reads inputs the way a runner passes them.
func runAction(ctx context.Context, pio IO) int {
	gha := githubactions.New(githubactions.WithGetenv(pio.Getenv), githubactions.WithWriter(io.Discard))
	raw := map[string]string{}
	for _, in := range inputs.All() {
		raw[in.Name] = gha.GetInput(in.Name)
	}
	red := &report.Redactor{}
	sink := report.NewActions(pio.Stdout, pio.Getenv, red)
	values := inputs.NewValues(raw)
	maskSecrets(values, sink.Mask)
	chain, err := inputs.ParseChain(values.Raw("stage"))
	if err != nil {
		sink.Errorf("%s", err)
		return failure.ExitInvalid
	}
	run := &Run{IO: pio, Values: values, Log: sink, Mask: sink.Mask, Redactor: red}
	results, err := run.Chain(ctx, chain, func(st inputs.Stage, res report.Result) {
		outs, err := stageOutputs(st, res.Outputs())
		if err != nil {
			sink.Warnf("%s", err)
		}
		if err := sink.SetOutputs(outs); err != nil {
			sink.Warnf("%s", err)
		}
		var md report.Markdown
		res.Summary(&md)
		sink.AddSummary(&md)
	})
	_ = results
	full := ""
	if err := sink.FlushSummary(full); err != nil {
		sink.Warnf("%s", err)
	}
	if err != nil {
		sink.Errorf("%s", report.OneLine(red.Redact(err.Error())))
		return failure.Code(err)
	}
	return failure.ExitOK
}

// Run is one execution of a chain of stages.
type Run struct {
	IO       IO
	Values   *inputs.Values
	Log      report.Logger
	Mask     func(string)
	Redactor *report.Redactor
	// Registry overrides the client built from inputs (tests, demo).
	Registry *registry.Client
	// State carries what earlier stages produced to later ones.
	State State
}

// StageResult pairs a stage with what it returned, for --json.
type StageResult struct {
	Stage  inputs.Stage  `json:"stage"`
	Result report.Result `json:"result,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// Chain runs stages in order; the first failure stops it. emit is called with
// every result a stage returns, including one that comes with an error (a
// failed gate still reports its findings).
func (r *Run) Chain(ctx context.Context, chain []inputs.Stage, emit func(inputs.Stage, report.Result)) ([]StageResult, error) {
	if err := r.Values.Err(); err != nil {
		return nil, err
	}
	if r.Registry == nil {
		client, err := r.registryClient(ctx)
		if err != nil {
			return nil, err
		}
		r.Registry = client
	}
	timeout, _ := r.Values.Duration("timeout")
	if err := r.Values.Err(); err != nil {
		return nil, err
	}
	r.startSignKey(ctx, chain)
	var results []StageResult
	for _, st := range chain {
		runner, ok := runnerFor(st)
		if !ok {
			return results, failure.Invalidf("stage %q is not available in this build", st)
		}
		// Stages open their own log groups; GitHub does not nest groups,
		// so the stage boundary is a plain line.
		r.Log.Infof("== %s", st)
		stageCtx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			stageCtx, cancel = context.WithTimeout(ctx, timeout)
		}
		started := time.Now()
		res, err := runner(stageCtx, r)
		if err != nil && stageCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("%s: timed out after %s: raise the timeout input", st, inputs.FormatDuration(timeout))
		}
		cancel()
		sr := StageResult{Stage: st, Result: res}
		if res != nil && emit != nil {
			emit(st, res)
		}
		if err != nil {
			sr.Error = report.OneLine(err.Error())
			results = append(results, sr)
			return results, err
		}
		r.Log.Infof("%s finished in %s", st, time.Since(started).Round(time.Millisecond))
		results = append(results, sr)
	}
	return results, nil
}

func (r *Run) registryClient(ctx context.Context) (*registry.Client, error) {
	v := r.Values
	creds := registry.Credentials{
		GitHubToken: v.String("github-token"),
		GitHubActor: r.IO.Getenv("GITHUB_ACTOR"),
		Username:    v.String("registry-username"),
		Password:    v.String("registry-password"),
		// $DOCKER_CONFIG/config.json (or ~/.docker) and its credential
		// helpers, the way an earlier docker login left them.
		DockerConfig: authn.DefaultKeychain,
		ECR:          newECRTokens(),
		Mask:         r.Mask,
	}
	return registry.New(registry.Options{
		UserAgent:   version.UserAgent(),
		Insecure:    v.List("insecure-registries"),
		Credentials: creds,
	}), nil
}

// Path resolves a user-given path against the working directory.
func (r *Run) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.IO.Dir, p)
}

func maskSecrets(v *inputs.Values, mask func(string)) {
	for _, in := range inputs.All() {
		if in.Secret && v.IsSet(in.Name) {
			mask(v.Raw(in.Name))
		}
	}
}

// writeJSON prints the chain's results for machines.
func writeJSON(w io.Writer, results []StageResult, err error) error {
	doc := struct {
		Version string        `json:"version"`
		OK      bool          `json:"ok"`
		Error   string        `json:"error,omitempty"`
		Stages  []StageResult `json:"stages"`
	}{Version: version.Version, OK: err == nil, Stages: results}
	if err != nil {
		doc.Error = report.OneLine(err.Error())
	}
	if doc.Stages == nil {
		doc.Stages = []StageResult{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// environ rebuilds the process environment from Getenv for child processes.
func (r *Run) environ() []string {
	if r.IO.Environ != nil {
		return r.IO.Environ()
	}
	return os.Environ()
}

// sourcePath resolves a local source path against the working directory,
// leaving registry references alone.
func (r *Run) sourcePath(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") {
		return r.Path(s)
	}
	if _, err := os.Stat(r.Path(s)); err == nil {
		return r.Path(s)
	}
	return s
}

func isPrefixed(s string) bool {
	for _, p := range []string{"oci:", "oci-layout:", "oci-archive:", "docker-archive:", "docker://", "registry:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
