package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

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
	// Docker is the docker executable (default: "docker" on PATH).
	Docker string
	// Env is the environment buildx runs in (the caller's, minus nothing);
	// DOCKER_CONFIG is replaced by a private one holding our credentials.
	Env []string
	// Stdout and Stderr receive buildx's own output.
	Stdout, Stderr io.Writer
}

// Build runs docker buildx build, writing an OCI archive that push then
// publishes with its own engine, so authentication, fan-out and the report
// are the same as for any other source. Registry credentials buildx needs
// for cache-from/cache-to come from our keychain through a temporary,
// private DOCKER_CONFIG removed afterwards.
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
		return "", nil, failure.Invalidf("push: build context %q not found", opts.Context)
	}
	work, err := os.MkdirTemp("", "registry-build-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(work) }
	archive := filepath.Join(work, "image.tar")

	configDir := filepath.Join(work, "docker-config")
	if err := writeDockerConfig(ctx, configDir, opts, reg); err != nil {
		cleanup()
		return "", nil, err
	}
	args := BuildArgs(opts, archive)
	log.Infof("docker %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(withoutVar(opts.Env, "DOCKER_CONFIG"), "DOCKER_CONFIG="+configDir)
	cmd.Stdout, cmd.Stderr = opts.Stdout, opts.Stderr
	if err := cmd.Run(); err != nil {
		cleanup()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", nil, fmt.Errorf("push: docker buildx build failed with exit code %d: see its output above", exit.ExitCode())
		}
		return "", nil, fmt.Errorf("push: docker buildx build: %w", err)
	}
	if _, err := os.Stat(archive); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("push: docker buildx build wrote no OCI archive: use a builder that can export OCI (docker/setup-buildx-action's docker-container driver)")
	}
	return archive, cleanup, nil
}

// BuildArgs is the docker command line for a build writing dest.
func BuildArgs(opts BuildOptions, dest string) []string {
	args := []string{"buildx", "build"}
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
	args = append(args, "--output", "type=oci,dest="+dest, opts.Context)
	return args
}

// writeDockerConfig writes a private config.json with credentials for the
// registries named in cache-from/cache-to, and links the user's buildx
// builders and CLI plugins so the selected builder keeps working.
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
	for _, sub := range []string{"buildx", "cli-plugins", "contexts"} {
		if orig == "" {
			break
		}
		if _, err := os.Stat(filepath.Join(orig, sub)); err == nil {
			if err := os.Symlink(filepath.Join(orig, sub), filepath.Join(dir, sub)); err != nil {
				return err
			}
		}
	}
	auths := map[string]map[string]string{}
	for _, spec := range append(append([]string{}, opts.CacheFrom...), opts.CacheTo...) {
		ref := cacheRef(spec)
		if ref == "" {
			continue
		}
		r, err := name.ParseReference(ref)
		if err != nil {
			return failure.Invalidf("push: cache reference %q: %v", ref, err)
		}
		host := r.Context().RegistryStr()
		if _, done := auths[host]; done {
			continue
		}
		auth, err := authn.Resolve(ctx, reg.Keychain(), r.Context())
		if err != nil {
			return fmt.Errorf("push: credentials for build cache %s: %w", host, err)
		}
		cfg, err := authn.Authorization(ctx, auth)
		if err != nil {
			return fmt.Errorf("push: credentials for build cache %s: %w", host, err)
		}
		if cfg.Username == "" && cfg.Password == "" {
			continue
		}
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))}
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
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

func withoutVar(env []string, key string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
