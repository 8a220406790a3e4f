package app

import (
	"io"

	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/push"
)

// buildOptions maps the build inputs to push's build options (context is
// set). Secret values given as NAME=value are masked one by one: the runner
// masks a multi-line input only as a whole.
func buildOptions(r *Run) *push.BuildOptions {
	v := r.Values
	secrets := v.List("secrets")
	for _, value := range push.SecretValues(secrets) {
		r.Mask(value)
	}
	return &push.BuildOptions{
		Context:      r.Path(v.String("context")),
		File:         r.Path(v.String("file")),
		Platforms:    v.List("platforms"),
		BuildArgs:    v.List("build-args"),
		Target:       v.String("target"),
		Labels:       v.List("labels"),
		CacheFrom:    v.List("cache-from"),
		CacheTo:      v.List("cache-to"),
		Secrets:      secrets,
		SSH:          v.List("ssh"),
		NoCache:      v.Bool("no-cache"),
		Pull:         v.Bool("pull"),
		Provenance:   v.String("provenance"),
		SBOM:         v.String("sbom"),
		Repositories: v.List("images"),
		Dir:          r.IO.Dir,
		Env:          r.environ(),
		Output:       r.buildOutput(),
		// A runner reads this output for workflow commands in Action mode
		// and in a run: step alike.
		StopCommands: r.IO.Getenv("GITHUB_ACTIONS") == "true",
	}
}

// buildOutput is where buildx's progress goes: the stream this run logs to
// (stdout for the Action, stderr for the CLI), through the redactor.
func (r *Run) buildOutput() io.Writer {
	w := r.IO.Stderr
	if _, action := r.Log.(*report.Actions); action {
		w = r.IO.Stdout
	}
	return r.Redactor.Writer(w)
}
