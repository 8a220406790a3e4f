package push

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

// BuilderName is the docker-container builder created (or reused, when its
// BuildKit container is still on the daemon) when the current builder
// cannot export an OCI image.
const BuilderName = "registry-action"

// BuildOptions are passed through to docker buildx build.
type BuildOptions struct {
	Context   string
	File      string
	Platforms []string
	BuildArgs []string
	Target    string
	Labels    []string
	CacheFrom []string
	CacheTo   []string
	// Secrets are buildx --secret specs (id=…,src=… or id=…,env=…), or
	// KEY=value pairs whose value is handed over through a private file.
	Secrets []string
	// SSH are buildx --ssh specs (default, or id=path,…).
	SSH        []string
	NoCache    bool
	Pull       bool
	Provenance string // buildx --provenance; empty means false
	SBOM       string // buildx --sbom; empty means false
	// Repositories whose registries' credentials buildx also gets: the
	// push targets (base images often come from the same registry).
	Repositories []string
	// Docker is the docker executable (default: "docker" on PATH).
	Docker string
	// Dir is the working directory docker runs in (relative paths in
	// secrets and ssh specs are its).
	Dir string
	// Env is the environment docker runs in; DOCKER_CONFIG is replaced by a
	// private one holding our credentials.
	Env []string
	// Output receives buildx's own output (both streams).
	Output io.Writer
	// StopCommands wraps buildx's output so a GitHub runner reading it
	// ignores workflow commands in it: a Dockerfile's RUN can print anything.
	StopCommands bool
}

// Build runs docker buildx build, writing an OCI archive that push then
// publishes with its own engine, so authentication, fan-out and the report
// are the same as for any other source. Registry credentials reach buildx
// only through a private DOCKER_CONFIG this call creates and removes; the
// user's own Docker configuration is read, never written.
func Build(ctx context.Context, opts BuildOptions, reg *registry.Client, log report.Logger) (string, func(), error) {
	docker := opts.Docker
	if docker == "" {
		docker = "docker"
	}
	path, err := exec.LookPath(docker)
	if err != nil {
		return "", nil, failure.Invalidf("push: building (context is set) needs Docker with buildx on the runner, and %q is not on PATH: build in an earlier step and set source to its OCI output, or use a runner with Docker", docker)
	}
	if _, err := os.Stat(opts.Context); err != nil && !strings.Contains(opts.Context, "://") {
		return "", nil, failure.Invalidf("push: build context %q not found: set context to a directory in the workspace", opts.Context)
	}
	work, err := os.MkdirTemp("", "registry-build-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(work) }
	fail := func(err error) (string, func(), error) {
		cleanup()
		return "", nil, err
	}
	archive := filepath.Join(work, "image.tar")

	configDir := filepath.Join(work, "docker-config")
	if err := writeDockerConfig(ctx, configDir, opts, reg); err != nil {
		return fail(err)
	}
	cli := dockerCLI{
		path: path,
		dir:  opts.Dir,
		// BUILDX_CONFIG would send buildx's state (builders, build records)
		// to the user's directory instead of the private one.
		env: append(withoutVars(opts.Env, "DOCKER_CONFIG", "BUILDX_CONFIG", "DEBUG"), "DOCKER_CONFIG="+configDir),
	}
	if _, err := cli.output(ctx, nil, "buildx", "version"); err != nil {
		return fail(failure.Invalidf("push: building (context is set) needs the docker buildx plugin, and %s: install buildx on the runner, or build in an earlier step and set source to its OCI output", err))
	}
	builder, err := chooseBuilder(ctx, cli, log)
	if err != nil {
		return fail(err)
	}
	secrets, err := secretSpecs(opts.Secrets, work)
	if err != nil {
		return fail(err)
	}
	args := buildArgs(opts, builder, secrets, archive)
	log.Infof("docker %s", strings.Join(args, " "))
	if err := cli.stream(ctx, opts.Output, opts.StopCommands, args...); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fail(fmt.Errorf("push: docker buildx build failed with exit code %d: see its output above", exit.ExitCode()))
		}
		return fail(fmt.Errorf("push: docker buildx build: %w", err))
	}
	if _, err := os.Stat(archive); err != nil {
		return fail(fmt.Errorf("push: docker buildx build wrote no OCI archive: use a builder that can export OCI (the docker-container driver)"))
	}
	return archive, cleanup, nil
}

// BuildArgs is the docker command line for a build writing dest with the
// current builder, secrets passed as given.
func BuildArgs(opts BuildOptions, dest string) []string {
	return buildArgs(opts, "", opts.Secrets, dest)
}

func buildArgs(opts BuildOptions, builder string, secrets []string, dest string) []string {
	args := []string{"buildx", "build"}
	if builder != "" {
		args = append(args, "--builder", builder)
	}
	// Plain progress: a log reads better than a redrawn terminal.
	args = append(args, "--progress", "plain")
	if opts.File != "" {
		args = append(args, "--file", opts.File)
	}
	if len(opts.Platforms) > 0 {
		args = append(args, "--platform", strings.Join(opts.Platforms, ","))
	}
	for _, a := range opts.BuildArgs {
		args = append(args, "--build-arg", a)
	}
	if opts.Target != "" {
		args = append(args, "--target", opts.Target)
	}
	for _, l := range opts.Labels {
		args = append(args, "--label", l)
	}
	for _, c := range opts.CacheFrom {
		args = append(args, "--cache-from", c)
	}
	for _, c := range opts.CacheTo {
		args = append(args, "--cache-to", c)
	}
	for _, s := range secrets {
		args = append(args, "--secret", s)
	}
	for _, s := range opts.SSH {
		args = append(args, "--ssh", s)
	}
	if opts.NoCache {
		args = append(args, "--no-cache")
	}
	if opts.Pull {
		args = append(args, "--pull")
	}
	// buildx attaches provenance to OCI output by default; here it is the
	// user's choice, off unless asked for.
	args = append(args, "--provenance="+orFalse(opts.Provenance), "--sbom="+orFalse(opts.SBOM))
	args = append(args, "--output", "type=oci,dest="+dest, opts.Context)
	return args
}

func orFalse(s string) string {
	if strings.TrimSpace(s) == "" {
		return "false"
	}
	return strings.TrimSpace(s)
}

// secretSpecs turns the secrets input into buildx --secret specs. buildx's
// own form (id=…,src=… / id=…,env=…) passes through; KEY=value, the form
// docker/build-push-action's secrets input takes, is written to a file only
// this run can read, so the value never appears on a command line.
func secretSpecs(in []string, work string) ([]string, error) {
	var out []string
	dir := filepath.Join(work, "secrets")
	for i, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		key, value, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return nil, failure.Invalidf("push: secrets entry %d is not id=NAME,src=PATH, id=NAME,env=VAR or NAME=value: write one secret per line", i+1)
		}
		if isSecretSpecKey(key) {
			if !strings.Contains(s, "id=") {
				return nil, failure.Invalidf("push: secrets entry %d (%s=…) has no id: write id=NAME,src=PATH or id=NAME,env=VAR", i+1, key)
			}
			out = append(out, s)
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		file := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
			return nil, err
		}
		out = append(out, "id="+key+",src="+file)
	}
	return out, nil
}

// SecretValues returns the values of the NAME=value entries of secrets, for
// masking before anything is logged.
func SecretValues(secrets []string) []string {
	var values []string
	for _, s := range secrets {
		key, value, ok := strings.Cut(strings.TrimSpace(s), "=")
		if ok && key != "" && !isSecretSpecKey(key) && value != "" {
			values = append(values, value)
		}
	}
	return values
}

// isSecretSpecKey reports whether key starts buildx's --secret syntax.
func isSecretSpecKey(key string) bool {
	switch key {
	case "id", "type", "src", "source", "env", "required":
		return true
	}
	return false
}

// dockerCLI runs the docker executable in a fixed environment.
type dockerCLI struct {
	path string
	dir  string
	env  []string
}

// output runs docker and returns its stdout; a failure carries its stderr.
func (d dockerCLI) output(ctx context.Context, extraEnv []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.path, args...)
	cmd.Dir = d.dir
	cmd.Env = append(append([]string{}, d.env...), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := report.Clip(report.OneLine(stderr.String()), 300)
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), fmt.Errorf("docker %s said: %s", strings.Join(args[:min(2, len(args))], " "), msg)
	}
	return stdout.String(), nil
}

// stream runs docker with its output passed through to w, wrapped so that a
// GitHub runner ignores workflow commands in it when stop is set.
func (d dockerCLI) stream(ctx context.Context, w io.Writer, stop bool, args ...string) error {
	if w == nil {
		w = io.Discard
	}
	out, end := w, func() error { return nil }
	if stop {
		out, end = report.StopCommands(w)
	}
	cmd := exec.CommandContext(ctx, d.path, args...)
	cmd.Dir = d.dir
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if eerr := end(); err == nil {
		err = eerr
	}
	if ferr := report.Flush(w); err == nil {
		err = ferr
	}
	return err
}

// builderInfo is what docker buildx inspect says about a builder.
type builderInfo struct {
	Name, Driver string
	// Err is the first error the builder or one of its nodes reports.
	Err string
	// Features are printed in debug mode only (buildx ≥ 0.13).
	Features map[string]bool
}

// canExportOCI reports whether the builder can write type=oci: the docker
// driver only with the containerd image store, every other driver always.
func (b builderInfo) canExportOCI() bool {
	if v, ok := b.Features["OCI exporter"]; ok {
		return v
	}
	return b.Driver != "docker"
}

// parseInspect reads docker buildx inspect's tab-aligned output.
func parseInspect(out string) builderInfo {
	info := builderInfo{Features: map[string]bool{}}
	inFeatures := false
	for _, line := range strings.Split(out, "\n") {
		indented := strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
		key, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		if inFeatures && indented {
			if b, err := strconv.ParseBool(value); err == nil {
				info.Features[key] = b
			}
			continue
		}
		inFeatures = false
		switch key {
		case "Name":
			if info.Name == "" {
				info.Name = value
			}
		case "Driver":
			if info.Driver == "" {
				info.Driver = value
			}
		case "Error":
			if info.Err == "" {
				info.Err = value
			}
		case "Features":
			inFeatures = true
		}
	}
	return info
}

// chooseBuilder returns the builder to pass to --builder: empty for the
// current one when it can export OCI, else a docker-container builder
// created under a fixed name, whose BuildKit container later runs on the
// same daemon reuse.
func chooseBuilder(ctx context.Context, cli dockerCLI, log report.Logger) (string, error) {
	// DEBUG makes inspect list the driver's features (OCI exporter among them).
	out, err := cli.output(ctx, []string{"DEBUG=1"}, "buildx", "inspect")
	if err != nil {
		return "", fmt.Errorf("push: %w: check the Docker installation on the runner", err)
	}
	current := parseInspect(out)
	if current.Err != "" {
		return "", fmt.Errorf("push: the buildx builder %q cannot reach Docker (%s): a container action needs the runner's /var/run/docker.sock, which GitHub's Linux runners mount", current.Name, report.Clip(current.Err, 300))
	}
	if current.canExportOCI() {
		log.Infof("building with buildx builder %s (%s driver)", current.Name, current.Driver)
		return "", nil
	}
	if out, err := cli.output(ctx, nil, "buildx", "inspect", BuilderName); err == nil {
		if named := parseInspect(out); named.Err == "" && named.canExportOCI() {
			log.Infof("building with buildx builder %s (%s driver): %s's %s driver cannot export OCI images", BuilderName, named.Driver, current.Name, current.Driver)
			return BuilderName, nil
		}
	}
	if _, err := cli.output(ctx, nil, "buildx", "create", "--name", BuilderName, "--driver", "docker-container"); err != nil {
		return "", fmt.Errorf("push: the current builder (%s driver) cannot export OCI images, and creating a docker-container builder failed: %w: turn on the containerd image store or create a docker-container builder", current.Driver, err)
	}
	log.Infof("building with a new docker-container builder %s: %s's %s driver cannot export OCI images", BuilderName, current.Name, current.Driver)
	return BuilderName, nil
}

// writeDockerConfig writes the private Docker configuration buildx runs
// with: credentials for the registries the build reads and writes, a copy of
// the user's buildx builders (so the selected builder keeps working, and a
// builder created here stays out of the user's files) and read-only links to
// the user's CLI plugins and contexts.
func writeDockerConfig(ctx context.Context, dir string, opts BuildOptions, reg *registry.Client) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	orig := envValue(opts.Env, "DOCKER_CONFIG")
	if orig == "" {
		if home := envValue(opts.Env, "HOME"); home != "" {
			orig = filepath.Join(home, ".docker")
		}
	}
	currentContext := ""
	if orig != "" {
		for _, sub := range []string{"cli-plugins", "contexts"} {
			if _, err := os.Stat(filepath.Join(orig, sub)); err == nil {
				if err := os.Symlink(filepath.Join(orig, sub), filepath.Join(dir, sub)); err != nil {
					return err
				}
			}
		}
		var user struct {
			CurrentContext string `json:"currentContext"`
		}
		if data, err := os.ReadFile(filepath.Join(orig, "config.json")); err == nil {
			_ = json.Unmarshal(data, &user)
			currentContext = user.CurrentContext
		}
	}
	buildxState := envValue(opts.Env, "BUILDX_CONFIG")
	if buildxState == "" && orig != "" {
		buildxState = filepath.Join(orig, "buildx")
	}
	if buildxState != "" {
		for _, part := range []string{"instances", "defaults", "current"} {
			if err := copyTree(filepath.Join(buildxState, part), filepath.Join(dir, "buildx", part)); err != nil {
				return fmt.Errorf("push: copying buildx builders: %w", err)
			}
		}
	}

	auths := map[string]map[string]string{}
	var repos []name.Repository
	for _, spec := range append(append([]string{}, opts.CacheFrom...), opts.CacheTo...) {
		ref := cacheRef(spec)
		if ref == "" {
			continue
		}
		r, err := name.ParseReference(ref)
		if err != nil {
			return failure.Invalidf("push: cache reference %q: %v", ref, err)
		}
		repos = append(repos, r.Context())
	}
	for _, repo := range opts.Repositories {
		if r, err := name.NewRepository(repo); err == nil {
			repos = append(repos, r)
		}
	}
	for _, repo := range repos {
		host := repo.RegistryStr()
		if _, done := auths[host]; done {
			continue
		}
		auth, err := authn.Resolve(ctx, reg.Keychain(), repo)
		if err != nil {
			return fmt.Errorf("push: credentials for %s: %w", host, err)
		}
		cfg, err := authn.Authorization(ctx, auth)
		if err != nil {
			return fmt.Errorf("push: credentials for %s: %w", host, err)
		}
		if cfg.Username == "" && cfg.Password == "" {
			continue
		}
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))}
	}
	doc := map[string]any{"auths": auths}
	if currentContext != "" {
		doc["currentContext"] = currentContext
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}

// copyTree copies a file or directory of small regular files; a missing
// source is nothing to copy.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == src {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	})
}

// cacheRef extracts ref=… from a buildx cache spec of type registry.
func cacheRef(spec string) string {
	isRegistry := false
	ref := ""
	for _, kv := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "type":
			isRegistry = v == "registry"
		case "ref":
			ref = v
		}
	}
	if !strings.Contains(spec, "type=") && !strings.Contains(spec, "=") {
		// The short form, cache-from: ghcr.io/acme/app:cache, is a registry ref.
		return spec
	}
	if isRegistry {
		return ref
	}
	return ""
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func withoutVars(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}
