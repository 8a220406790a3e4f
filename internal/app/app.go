// Package app is the program's two front doors — a GitHub Action reading
// INPUT_* variables and a CLI reading flags — leading to one chain of stages.
// It turns inputs into stage options and stage results into outputs, job
// summaries and CLI text; the stages themselves know nothing of either.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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

// OSIO is the real process. It fails when the working directory cannot be
// read (it was removed): relative paths would have nothing to resolve to.
func OSIO() (IO, error) {
	dir, err := os.Getwd()
	if err != nil {
		return IO{}, fmt.Errorf("the working directory cannot be read (%w): run from an existing directory", err)
	}
	return IO{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Dir: dir, Environ: os.Environ, ReadPassword: terminalPassword()}, nil
}

// Main runs the program and returns its exit code.
func Main(ctx context.Context, pio IO) int {
	if pio.Getenv == nil {
		pio.Getenv = func(string) string { return "" }
	}
	action := len(pio.Args) == 0 && pio.Getenv("GITHUB_ACTIONS") == "true"
	// One redactor for everything this process prints, Trivy's log
	// included: secrets registered by either front door are hidden there too.
	red := &report.Redactor{}
	engineLog := pio.Stderr
	if action {
		engineLog = pio.Stdout
	}
	// Trivy's log is third-party text interleaved with this program's own
	// workflow commands, so it cannot sit inside ::stop-commands::; each of
	// its lines is neutralised instead.
	trivyLog := report.GuardLines(red.Writer(engineLog))
	defer report.Flush(trivyLog)
	engine := report.NewRedirect(trivyLog)
	configureEngineLogging(engine, pio.Getenv("RUNNER_DEBUG") == "1")
	if action {
		return runAction(ctx, pio, red, engine)
	}
	return runCLI(ctx, pio, red, engine)
}

// runAction reads inputs the way a runner passes them.
func runAction(ctx context.Context, pio IO, red *report.Redactor, engine *report.Redirect) int {
	gha := githubactions.New(githubactions.WithGetenv(pio.Getenv), githubactions.WithWriter(io.Discard))
	raw := map[string]string{}
	for _, in := range inputs.All() {
		raw[in.Name] = gha.GetInput(in.Name)
	}
	sink := report.NewActions(pio.Stdout, pio.Getenv, red)
	values := inputs.NewValues(raw)
	maskSecrets(values, pio.Getenv, sink.Mask)
	chain, err := inputs.ParseChain(values.Raw("stage"))
	if err != nil {
		sink.Errorf("%s", err)
		return failure.ExitInvalid
	}
	run := &Run{IO: pio, Values: values, Log: sink, Mask: sink.Mask, Redactor: red, EngineLog: engine}
	_, err = run.Chain(ctx, chain, func(st inputs.Stage, res report.Result, outs []report.Output) {
		checked, err := stageOutputs(st, outs)
		if err != nil {
			sink.Warnf("%s", err)
		}
		if err := sink.SetOutputs(checked); err != nil {
			sink.Warnf("%s", err)
		}
		var md report.Markdown
		res.Summary(&md)
		sink.AddSummary(&md)
	})
	if err := sink.FlushSummary(); err != nil {
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
	IO     IO
	Values *inputs.Values
	Log    report.Logger
	Mask   func(string)
	// Redactor hides secrets in third-party output the run passes through
	// (buildx's progress).
	Redactor *report.Redactor
	// EngineLog is where Trivy's log goes; a scan running beside push
	// redirects it to its own deferred log. Nil leaves it alone.
	EngineLog *report.Redirect
	// Registry is the one client every stage of the chain uses (one token
	// per registry for the whole chain); Chain builds it from the inputs.
	Registry *registry.Client
	// State carries what earlier stages produced to later ones.
	State State

	// onPushReady, set while a push runs whose scan may start beside it,
	// receives the image push is about to write (see early.go).
	onPushReady func(view *registry.Source, digest string, pushed []string)
	// scanBeforeWrite is the scan stage's BeforeWrite when it runs beside
	// push.
	scanBeforeWrite func(ctx context.Context) error
}

// StageResult pairs a stage with what it returned, for --json.
type StageResult struct {
	Stage  inputs.Stage  `json:"stage"`
	Result report.Result `json:"result,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// emitFunc receives what a stage returned: its result (for the summary)
// and the outputs that may be written for it (see Chain).
type emitFunc func(st inputs.Stage, res report.Result, outs []report.Output)

// Chain runs stages in order; the first failure stops it. emit is called with
// every result a stage returns, including one that comes with an error, so
// the summary says what happened. Outputs follow the outputs table: a stage
// that succeeded, or ran to a gate's verdict, writes all of them; a stage
// that failed writes only those the table says describe completed work on
// failure (for example the digests signed before the error), never a value
// that stands for work that did not happen.
func (r *Run) Chain(ctx context.Context, chain []inputs.Stage, emit emitFunc) ([]StageResult, error) {
	if err := r.Values.Err(); err != nil {
		return nil, err
	}
	r.Registry = r.registryClient()
	timeout, _ := r.Values.Duration("timeout")
	if err := r.Values.Err(); err != nil {
		return nil, err
	}
	r.startSignKey(ctx, chain)
	// push keeps its local source open for the scan after it; whatever no
	// stage took is closed with the chain.
	defer func() {
		if r.State.Source != nil {
			r.State.Source.Close()
		}
	}()
	var results []StageResult
	var early *earlyScan
	for i, st := range chain {
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
		var res report.Result
		var err error
		deadline, beside := false, ""
		switch {
		case st == inputs.Scan && early != nil:
			// Started beside push; its time counts from then.
			res, err, deadline = early.finish(r, r.Log)
			started, early, beside = early.started, nil, " (it read the image from the source while push uploaded it)"

		case r.scanCanStartEarly(chain, i):
			r.onPushReady = func(view *registry.Source, digest string, pushed []string) {
				early = r.startEarlyScan(ctx, timeout, view, digest, pushed)
			}
			res, err = runner(stageCtx, r)
			r.onPushReady = nil
			if early != nil {
				early.pushDone(err)
				if err != nil {
					early = nil
				}
			}
		default:
			res, err = runner(stageCtx, r)
		}
		deadline = deadline || stageCtx.Err() == context.DeadlineExceeded
		if err != nil && deadline && ctx.Err() == nil {
			err = timedOut(st, timeout, err)
		}
		cancel()
		sr := StageResult{Stage: st, Result: res}
		if res != nil && emit != nil {
			emit(st, res, outputsFor(st, res, err))
		}
		if err != nil {
			sr.Error = report.OneLine(err.Error())
			results = append(results, sr)
			return results, err
		}
		r.Log.Infof("%s finished in %s%s", st, time.Since(started).Round(time.Millisecond), beside)
		results = append(results, sr)
	}
	return results, nil
}

// timedOut words a stage that ran out of time, keeping what it was doing
// when that says more than the deadline itself (a registry answering 503
// until the end is an outage, not a slow push).
func timedOut(st inputs.Stage, timeout time.Duration, err error) error {
	msg := fmt.Sprintf("%s: timed out after %s", st, inputs.FormatDuration(timeout))
	cause := strings.TrimPrefix(report.OneLine(err.Error()), string(st)+": ")
	switch {
	case cause == context.DeadlineExceeded.Error() || strings.HasPrefix(cause, "timed out") || strings.HasPrefix(cause, string(st)+" timed out"):
		return errors.New(msg + ": raise the timeout input")
	case strings.Contains(cause, "raise the timeout"):
		// The stage already said what it was doing and what to do.
		return errors.New(msg + ": " + report.Clip(cause, 400))
	}
	return errors.New(msg + " (" + report.Clip(cause, 300) + "): raise the timeout input")
}

// outputsFor picks the outputs a stage's result may write given how the
// stage ended (see Chain).
func outputsFor(st inputs.Stage, res report.Result, err error) []report.Output {
	outs := res.Outputs()
	if err == nil || failure.Code(err) == failure.ExitGate {
		return outs
	}
	var kept []report.Output
	for _, o := range outs {
		if decl, ok := inputs.LookupOutput(st, o.Name); ok && decl.OnFailure != "" {
			kept = append(kept, o)
		}
	}
	return kept
}

func (r *Run) registryClient() *registry.Client {
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
	})
}

// Path resolves a user-given path against the working directory.
func (r *Run) Path(p string) string { return resolvePath(r.IO.Dir, p) }

// secretEnv are variables holding credentials the program's libraries read
// by themselves (the AWS SDK): masked like secret inputs, so that no error
// quoting them can print them.
var secretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

func maskSecrets(v *inputs.Values, getenv func(string) string, mask func(string)) {
	for _, in := range inputs.All() {
		if in.Secret && v.IsSet(in.Name) {
			mask(v.Raw(in.Name))
		}
	}
	for _, name := range secretEnv {
		if s := getenv(name); s != "" {
			mask(s)
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
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	// Strings from registries and images may hold "##[", which a runner
	// reads as a workflow command anywhere in a line; inside a JSON string
	// the escape \u005b reads back as the same "[".
	data = bytes.ReplaceAll(data, []byte("##["), []byte(`##\u005b`))
	_, err = w.Write(append(data, '\n'))
	return err
}

// environ rebuilds the process environment from Getenv for child processes.
func (r *Run) environ() []string {
	if r.IO.Environ != nil {
		return r.IO.Environ()
	}
	return os.Environ()
}
