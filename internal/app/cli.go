package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/version"
)

// cliOptions are the flags that exist only on the command line.
type cliOptions struct {
	json        bool
	summaryFile string
	// red hides secrets in everything the run prints.
	red *report.Redactor
	// engine is where Trivy's log goes (see Run.EngineLog).
	engine *report.Redirect
}

func runCLI(ctx context.Context, pio IO, red *report.Redactor, engine *report.Redirect) int {
	exit := failure.ExitOK
	root := newRootCommand(ctx, pio, &cliOptions{red: red, engine: engine}, &exit)
	root.SetArgs(pio.Args)
	root.SetOut(pio.Stdout)
	root.SetErr(pio.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		// Cobra's own errors: unknown command or flag, bad arguments.
		msg := report.OneLine(err.Error())
		if strings.HasPrefix(msg, "unknown command") {
			msg += ": valid stages are push, scan, sign, verify, clean; chain them with registry run push,scan,sign"
		}
		fmt.Fprintf(pio.Stderr, "registry: %s\n", msg)
		return failure.ExitInvalid
	}
	return exit
}

func newRootCommand(ctx context.Context, pio IO, opts *cliOptions, exit *int) *cobra.Command {
	root := &cobra.Command{
		Use:   "registry",
		Short: "Push, scan, sign and clean container images in any OCI registry, ECR and GHCR",
		Long: `registry publishes multi-arch images to ECR, GHCR and any OCI registry, scans
them with Trivy, signs them with Cosign and cleans repositories with ECR
lifecycle policies — as a GitHub Action or from this command line.

Every flag has the name of the Action input it mirrors. Run one stage
(registry push …) or a chain (registry run push,scan,sign …).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVar(&opts.json, "json", false, "print a machine-readable JSON result on stdout")
	root.PersistentFlags().StringVar(&opts.summaryFile, "summary", "", "also write the job-summary markdown to this file (a new file, or one an earlier run wrote)")

	for _, st := range inputs.Stages() {
		root.AddCommand(stageCommand(pio, st, opts, exit))
	}
	root.AddCommand(runCommand(pio, opts, exit))
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "registry %s\n", version.String())
		},
	})
	root.AddCommand(demoCommand(pio, exit))
	root.AddCommand(keyPairCommand(pio, opts, exit))
	root.CompletionOptions.HiddenDefaultCmd = true
	return root
}

var stageBlurbs = map[inputs.Stage]string{
	inputs.Push:   "Publish an image (layout, archive, docker-save tarball, registry reference or a build) to every repository and tag",
	inputs.Scan:   "Scan every platform of an image for vulnerabilities and gate on severities",
	inputs.Sign:   "Sign images by digest with Cosign, keyless or with a key, and attach attestations",
	inputs.Verify: "Verify signatures and attestations of every platform of an image",
	inputs.Clean:  "Preview, apply or enforce an ECR lifecycle policy on ECR, GHCR or any OCI registry",
}

func stageCommand(pio IO, st inputs.Stage, opts *cliOptions, exit *int) *cobra.Command {
	cmd := &cobra.Command{
		Use:   string(st) + " [flags]",
		Short: stageBlurbs[st],
		Args:  cobra.NoArgs,
	}
	raw := bindInputs(cmd.Flags(), inputs.ForStages(st))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		*exit = runChainCLI(cmd.Context(), pio, []inputs.Stage{st}, raw(cmd.Flags()), opts)
		return nil
	}
	return cmd
}

func runCommand(pio IO, opts *cliOptions, exit *int) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "run STAGES [flags]",
		Short:   "Run a chain of stages in order, e.g. registry run push,scan,sign",
		Example: "  registry run push,scan,sign --source ./oci --images ghcr.io/acme/app --tags v1 --key cosign.key",
		Args:    cobra.ExactArgs(1),
	}
	var all []inputs.Input
	for _, in := range inputs.All() {
		if in.Name != "stage" {
			all = append(all, in)
		}
	}
	raw := bindInputs(cmd.Flags(), all)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		chain, err := inputs.ParseChain(args[0])
		if err != nil {
			return err
		}
		*exit = runChainCLI(cmd.Context(), pio, chain, raw(cmd.Flags()), opts)
		return nil
	}
	return cmd
}

// bindInputs registers one flag per input, named like the input, and
// returns a func collecting the values the user actually set.
func bindInputs(fs *pflag.FlagSet, ins []inputs.Input) func(*pflag.FlagSet) map[string]string {
	values := map[string]*string{}
	for _, in := range ins {
		if in.Name == "stage" {
			continue
		}
		usage := strings.TrimSuffix(in.Description, ".")
		if in.Default != "" {
			usage += " (default " + strings.ReplaceAll(in.Default, "\n", ",") + ")"
		}
		v := new(string)
		values[in.Name] = v
		switch in.Kind {
		case inputs.Bool:
			fs.Var(&boolValue{v: v}, in.Name, usage)
			fs.Lookup(in.Name).NoOptDefVal = "true"
		case inputs.List:
			fs.Var(&listValue{v: v}, in.Name, usage+"; repeat the flag or separate values with commas")
		case inputs.Lines:
			fs.Var(&listValue{v: v}, in.Name, usage+"; repeat the flag for each line")
		default:
			fs.Var(&stringValue{v: v, kind: in.Kind}, in.Name, usage)
		}
	}
	return func(fs *pflag.FlagSet) map[string]string {
		raw := map[string]string{}
		for name, v := range values {
			if fs.Changed(name) {
				raw[name] = *v
			}
		}
		return raw
	}
}

type stringValue struct {
	v    *string
	kind inputs.Kind
}

func (s *stringValue) String() string     { return "" }
func (s *stringValue) Set(x string) error { *s.v = x; return nil }
func (s *stringValue) Type() string       { return s.kind.String() }

type boolValue struct{ v *string }

func (b *boolValue) String() string { return "" }
func (b *boolValue) Set(x string) error {
	if _, err := inputs.ParseBool(x); err != nil {
		return err
	}
	*b.v = x
	return nil
}
func (b *boolValue) Type() string     { return "bool" }
func (b *boolValue) IsBoolFlag() bool { return true }

// listValue accumulates repeated flags as newline-separated items, the form
// list inputs take in a workflow.
type listValue struct{ v *string }

func (l *listValue) String() string { return "" }
func (l *listValue) Set(x string) error {
	if *l.v != "" {
		*l.v += "\n"
	}
	*l.v += x
	return nil
}
func (l *listValue) Type() string { return "list" }

// runChainCLI runs a chain from the command line and prints its results.
func runChainCLI(ctx context.Context, pio IO, chain []inputs.Stage, raw map[string]string, opts *cliOptions) int {
	if raw["github-token"] == "" {
		// The gh CLI's and Actions' conventional variables.
		raw["github-token"] = firstNonEmpty(pio.Getenv("GITHUB_TOKEN"), pio.Getenv("GH_TOKEN"))
	}
	red := opts.red
	console := report.NewConsole(pio.Stderr, red)
	defer console.Close()
	values := inputs.NewValues(raw)
	maskSecrets(values, pio.Getenv, console.Mask)

	summaryPath := ""
	if opts.summaryFile != "" {
		// Checked before any stage runs: a file the program did not write
		// is never overwritten, and a push is not wasted on finding out.
		summaryPath = resolvePath(pio.Dir, opts.summaryFile)
		if err := checkSummaryFile(summaryPath); err != nil {
			console.Infof("error: %s", report.OneLine(err.Error()))
			return failure.Code(err)
		}
	}

	// Inside a workflow's run: step, outputs and the summary still reach
	// the runner.
	var actions *report.Actions
	if pio.Getenv("GITHUB_ACTIONS") == "true" {
		actions = report.NewActions(io.Discard, pio.Getenv, red)
	}
	var summary report.Markdown
	run := &Run{IO: pio, Values: values, Log: console, Mask: console.Mask, Redactor: red, EngineLog: opts.engine}
	stdout := red.Writer(pio.Stdout)
	defer report.Flush(stdout)
	// The text rendering carries tags, platforms and findings from outside
	// the workflow file; a runner reads stdout too.
	text := report.GuardLines(stdout)
	defer report.Flush(text)
	results, err := run.Chain(ctx, chain, func(st inputs.Stage, res report.Result, outs []report.Output) {
		var md report.Markdown
		res.Summary(&md)
		summary.Append(&md)
		if actions != nil {
			checked, err := stageOutputs(st, outs)
			if err != nil {
				console.Warnf("%s", err)
			}
			if err := actions.SetOutputs(checked); err != nil {
				console.Warnf("%s", err)
			}
			actions.AddSummary(&md)
		}
		if !opts.json {
			res.Text(text)
		}
	})
	if actions != nil {
		if ferr := actions.FlushSummary(); ferr != nil {
			console.Warnf("%s", ferr)
		}
	}
	if summaryPath != "" {
		if werr := writeSummaryFile(summaryPath, red.Redact(summary.String())); werr != nil {
			console.Warnf("%s", werr)
		}
	}
	if opts.json {
		if jerr := writeJSON(stdout, results, err); jerr != nil && err == nil {
			err = jerr
		}
	}
	if err != nil {
		console.Infof("error: %s", report.OneLine(err.Error()))
		return failure.Code(err)
	}
	return failure.ExitOK
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
