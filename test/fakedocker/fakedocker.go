// Package fakedocker stands in for the docker CLI where no Docker daemon
// exists. A test binary links itself as "docker" (Install) and, started
// under that name, answers the buildx commands the build path runs —
// version, ls, inspect, create and build — the way buildx does: builders are
// kept under $DOCKER_CONFIG/buildx, the default builder uses the docker
// driver (which cannot export OCI without the containerd image store), and
// a build writes a real OCI archive where --output asks, from a base index
// the test provides, with the requested platforms and labels.
//
// Every invocation is appended to the file named by FAKEDOCKER_LOG as one
// JSON Record, so tests can check what the program asked for and which
// credentials reached buildx.
package fakedocker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/demo/synth"
)

// Variables that configure the stand-in.
const (
	// EnvLog names the file invocations are recorded in.
	EnvLog = "FAKEDOCKER_LOG"
	// EnvBase names an OCI layout whose index builds start from.
	EnvBase = "FAKEDOCKER_BASE"
	// EnvContainerd=true gives the daemon the containerd image store, so
	// the default builder can export OCI.
	EnvContainerd = "FAKEDOCKER_CONTAINERD"
	// EnvDaemonDown=true makes the daemon unreachable.
	EnvDaemonDown = "FAKEDOCKER_DAEMON_DOWN"
	// EnvNoBuildx=true leaves the buildx plugin out.
	EnvNoBuildx = "FAKEDOCKER_NO_BUILDX"
)

// HostileLine is printed by every build as a RUN step's output would be: a
// workflow command a runner must not obey.
const HostileLine = "::error title=from a RUN step::a build step printed a workflow command"

// Version is what buildx version reports.
const Version = "github.com/docker/buildx v0.37.2 fakedocker"

// Record is one invocation.
type Record struct {
	Args         []string `json:"args"`
	Dir          string   `json:"dir"`
	DockerConfig string   `json:"dockerConfig"`
	// Auths are the user:password pairs of DOCKER_CONFIG's config.json.
	Auths map[string]string `json:"auths,omitempty"`
	// Secrets are the contents buildx would have mounted, by id.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Builder is the builder a build ran on.
	Builder string `json:"builder,omitempty"`
}

// Install links the running test binary into dir as "docker" and returns
// dir, to be put first on PATH. The test's TestMain must call Main.
func Install(t testing.TB, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "docker")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Main runs the stand-in and exits when the process was started as docker;
// otherwise it returns at once. Call it first in TestMain.
func Main() {
	if filepath.Base(os.Args[0]) != "docker" {
		return
	}
	os.Exit(Run(os.Args[1:], os.Stdout, os.Stderr))
}

// ReadLog returns the recorded invocations.
func ReadLog(t testing.TB, path string) []Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	return out
}

// Run answers one docker command line.
func Run(args []string, stdout, stderr io.Writer) int {
	rec := Record{Args: args, DockerConfig: os.Getenv("DOCKER_CONFIG")}
	rec.Dir, _ = os.Getwd()
	rec.Auths = readAuths(rec.DockerConfig)
	code := dispatch(&rec, args, stdout, stderr)
	if path := os.Getenv(EnvLog); path != "" {
		line, _ := json.Marshal(rec)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "fakedocker: %v\n", err)
			return 99
		}
		f.Write(append(line, '\n'))
		f.Close()
	}
	return code
}

func dispatch(rec *Record, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "buildx" {
		fmt.Fprintf(stderr, "docker: unknown command: docker %s\n", strings.Join(args, " "))
		return 1
	}
	if os.Getenv(EnvNoBuildx) == "true" {
		fmt.Fprintln(stderr, "docker: unknown command: docker buildx\n\nRun 'docker --help' for more information")
		return 1
	}
	if len(args) < 2 {
		fmt.Fprintln(stderr, "Usage:  docker buildx [OPTIONS] COMMAND")
		return 1
	}
	st := store{dir: filepath.Join(configDir(), "buildx")}
	switch args[1] {
	case "version":
		fmt.Fprintln(stdout, Version)
		return 0
	case "ls":
		return st.ls(stdout)
	case "inspect":
		return st.inspect(args[2:], stdout, stderr)
	case "create":
		return st.create(args[2:], stdout, stderr)
	case "build":
		return build(rec, st, args[2:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "ERROR: unknown command: buildx %s\n", args[1])
	return 1
}

func configDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker")
}

func readAuths(dir string) map[string]string {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if json.Unmarshal(data, &cfg) != nil {
		return nil
	}
	out := map[string]string{}
	for host, a := range cfg.Auths {
		raw, _ := base64.StdEncoding.DecodeString(a.Auth)
		out[host] = string(raw)
	}
	return out
}

// instance is buildx's stored builder, reduced to what matters here.
type instance struct {
	Name   string
	Driver string
}

// store is buildx's state directory ($DOCKER_CONFIG/buildx).
type store struct{ dir string }

func (s store) get(name string) (instance, bool) {
	if name == "" || name == "default" {
		return instance{Name: "default", Driver: "docker"}, true
	}
	data, err := os.ReadFile(filepath.Join(s.dir, "instances", name))
	if err != nil {
		return instance{}, false
	}
	var in instance
	if json.Unmarshal(data, &in) != nil {
		return instance{}, false
	}
	return in, true
}

func (s store) current() string {
	data, err := os.ReadFile(filepath.Join(s.dir, "current"))
	if err != nil {
		return "default"
	}
	var cur struct{ Name string }
	if json.Unmarshal(data, &cur) != nil || cur.Name == "" {
		return "default"
	}
	return cur.Name
}

// features are what the driver can do.
func features(driver string) map[string]bool {
	if driver != "docker" {
		return map[string]bool{"OCI exporter": true, "Docker exporter": true, "Cache export": true, "Multi-platform build": true, "Automatically load images to the Docker Engine image store": false}
	}
	cd := os.Getenv(EnvContainerd) == "true"
	return map[string]bool{"OCI exporter": cd, "Docker exporter": cd, "Cache export": cd, "Multi-platform build": cd, "Automatically load images to the Docker Engine image store": true}
}

const daemonDown = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"

func (s store) ls(stdout io.Writer) int {
	w := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintln(w, "NAME/NODE\tDRIVER/ENDPOINT\tSTATUS\tBUILDKIT\tPLATFORMS")
	cur := s.current()
	names := []string{"default"}
	entries, _ := os.ReadDir(filepath.Join(s.dir, "instances"))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for _, n := range names {
		in, _ := s.get(n)
		star := ""
		if n == cur {
			star = "*"
		}
		fmt.Fprintf(w, "%s%s\t%s\t\t\t\n", n, star, in.Driver)
	}
	w.Flush()
	return 0
}

func (s store) inspect(args []string, stdout, stderr io.Writer) int {
	name := s.current()
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			name = a
		}
	}
	in, ok := s.get(name)
	if !ok {
		fmt.Fprintf(stderr, "ERROR: no builder %q found\n", name)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", in.Name)
	fmt.Fprintf(w, "Driver:\t%s\n", in.Driver)
	if os.Getenv(EnvDaemonDown) == "true" {
		fmt.Fprintf(w, "Error:\t%s\n", daemonDown)
		w.Flush()
		return 0
	}
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Nodes:")
	fmt.Fprintf(w, "Name:\t%s\n", in.Name+"0")
	fmt.Fprintf(w, "Endpoint:\t%s\n", "unix:///var/run/docker.sock")
	fmt.Fprintf(w, "Status:\t%s\n", "running")
	fmt.Fprintf(w, "Platforms:\t%s\n", "linux/amd64, linux/arm64")
	if os.Getenv("DEBUG") != "" {
		fmt.Fprintf(w, "Features:\n")
		feats := features(in.Driver)
		for _, k := range slices.Sorted(maps.Keys(feats)) {
			fmt.Fprintf(w, "\t%s:\t%t\n", k, feats[k])
		}
	}
	w.Flush()
	return 0
}

func (s store) create(args []string, stdout, stderr io.Writer) int {
	fl, pos, err := parseFlags(args, map[string]bool{"--name": true, "--driver": true, "--driver-opt": true, "--platform": true, "--buildkitd-flags": true, "--buildkitd-config": true}, map[string]bool{"--use": true, "--bootstrap": true, "--append": true})
	if err != nil || len(pos) > 1 {
		fmt.Fprintf(stderr, "ERROR: %v\n", err)
		return 1
	}
	name := last(fl["--name"])
	driver := last(fl["--driver"])
	if driver == "" {
		driver = "docker-container"
	}
	if name == "" {
		name = "fake_builder"
	}
	if _, exists := s.get(name); exists {
		fmt.Fprintf(stderr, "ERROR: existing instance for %q but no append mode, specify the node name to make changes for existing instances\n", name)
		return 1
	}
	data, _ := json.Marshal(instance{Name: name, Driver: driver})
	if err := os.MkdirAll(filepath.Join(s.dir, "instances"), 0o755); err != nil {
		fmt.Fprintf(stderr, "ERROR: %v\n", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(s.dir, "instances", name), data, 0o644); err != nil {
		fmt.Fprintf(stderr, "ERROR: %v\n", err)
		return 1
	}
	if len(fl["--use"]) > 0 {
		cur, _ := json.Marshal(map[string]string{"Name": name})
		os.WriteFile(filepath.Join(s.dir, "current"), cur, 0o644)
	}
	fmt.Fprintln(stdout, name)
	return 0
}

var (
	buildValueFlags = map[string]bool{
		"--builder": true, "--progress": true, "--file": true, "-f": true, "--platform": true, "--build-arg": true,
		"--target": true, "--label": true, "--cache-from": true, "--cache-to": true, "--secret": true, "--ssh": true,
		"--output": true, "-o": true, "--metadata-file": true, "--tag": true, "-t": true, "--provenance": true,
		"--sbom": true, "--attest": true, "--network": true, "--add-host": true, "--build-context": true,
	}
	buildBoolFlags = map[string]bool{"--no-cache": true, "--pull": true, "--push": true, "--load": true, "--quiet": true, "-q": true}
)

func build(rec *Record, st store, args []string, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "ERROR: "+format+"\n", a...)
		return 1
	}
	fl, pos, err := parseFlags(args, buildValueFlags, buildBoolFlags)
	if err != nil {
		return fail("%v", err)
	}
	if len(pos) != 1 {
		return fail("\"docker buildx build\" requires exactly 1 argument")
	}
	bname := last(fl["--builder"])
	if bname == "" {
		bname = st.current()
	}
	b, ok := st.get(bname)
	if !ok {
		return fail("no builder %q found", bname)
	}
	rec.Builder = b.Name
	feats := features(b.Driver)
	if os.Getenv(EnvDaemonDown) == "true" {
		return fail("%s", daemonDown)
	}
	outputs := append(fl["--output"], fl["-o"]...)
	if len(outputs) != 1 {
		return fail("exactly one --output is supported by this stand-in, got %q", outputs)
	}
	out := csvMap(outputs[0])
	if out["type"] != "oci" || out["dest"] == "" {
		return fail("this stand-in writes type=oci,dest=… only, got %q", outputs[0])
	}
	if !feats["OCI exporter"] {
		return fail("OCI exporter is not supported for the docker driver.\nSwitch to a different driver, or turn on the containerd image store, and try again.\nLearn more at https://docs.docker.com/go/build-exporters/")
	}
	platforms := splitCSV(last(fl["--platform"]))
	if len(platforms) > 1 && !feats["Multi-platform build"] {
		return fail("Multi-platform build is not supported for the docker driver.")
	}
	context := pos[0]
	if fi, err := os.Stat(context); err != nil || !fi.IsDir() {
		return fail("unable to prepare context: path %q not found", context)
	}
	dockerfile := last(append(fl["--file"], fl["-f"]...))
	if dockerfile == "" {
		dockerfile = filepath.Join(context, "Dockerfile")
	}
	if _, err := os.Stat(dockerfile); err != nil {
		return fail("failed to read dockerfile: open %s: no such file or directory", filepath.Base(dockerfile))
	}
	rec.Secrets = map[string]string{}
	for _, spec := range fl["--secret"] {
		m := csvMap(spec)
		id := m["id"]
		switch {
		case m["src"] != "" || m["source"] != "":
			src := m["src"] + m["source"]
			data, err := os.ReadFile(src)
			if err != nil {
				return fail("failed to stat %s: %v", src, err)
			}
			rec.Secrets[id] = string(data)
		case m["env"] != "":
			rec.Secrets[id] = os.Getenv(m["env"])
		default:
			rec.Secrets[id] = os.Getenv(id)
		}
	}
	attest := false
	for _, f := range []string{"--provenance", "--sbom"} {
		if v := last(fl[f]); v != "" && v != "false" {
			attest = true
		}
	}
	fmt.Fprintf(stderr, "#0 building with %q instance using %s driver\n\n", b.Name, b.Driver)
	fmt.Fprintf(stderr, "#1 [internal] load build definition from %s\n#1 DONE 0.0s\n\n", filepath.Base(dockerfile))
	fmt.Fprintf(stderr, "#5 [2/2] RUN ./configure\n#5 0.102 %s\n#5 DONE 0.1s\n\n", HostileLine)

	idx, err := image(platforms, fl["--label"], attest)
	if err != nil {
		return fail("%v", err)
	}
	if err := synth.WriteOCIArchive(out["dest"], idx); err != nil {
		return fail("%v", err)
	}
	d, _ := idx.Digest()
	fmt.Fprintf(stderr, "#9 exporting to oci image format\n#9 exporting manifest list %s done\n#9 DONE 0.1s\n", d)
	return 0
}

// image is the base index reduced to the requested platforms, with the
// labels set on every image; attestation manifests stay only when asked for.
func image(platforms, labels []string, attest bool) (v1.ImageIndex, error) {
	base := os.Getenv(EnvBase)
	if base == "" {
		return nil, errors.New(EnvBase + " is not set")
	}
	p, err := layout.FromPath(base)
	if err != nil {
		return nil, err
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	// The layout's index.json is the image index itself, or points at it
	// (as buildx writes it).
	src := top
	if im, err := top.IndexManifest(); err == nil && len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsIndex() {
		if src, err = top.ImageIndex(im.Manifests[0].Digest); err != nil {
			return nil, err
		}
	}
	sm, err := src.IndexManifest()
	if err != nil {
		return nil, err
	}
	kept := map[string]string{} // old digest → new digest
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var atts []v1.Descriptor
	for _, desc := range sm.Manifests {
		if desc.Platform == nil || desc.Platform.OS == "unknown" {
			atts = append(atts, desc)
			continue
		}
		if len(platforms) > 0 && !slices.ContainsFunc(platforms, func(s string) bool { return matches(s, desc.Platform) }) {
			continue
		}
		img, err := src.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		if len(labels) > 0 {
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, err
			}
			cfg := cf.Config
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				cfg.Labels[k] = v
			}
			if img, err = mutate.Config(img, cfg); err != nil {
				return nil, err
			}
		}
		nd, err := img.Digest()
		if err != nil {
			return nil, err
		}
		kept[desc.Digest.String()] = nd.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: desc.Platform}})
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("no platform of the base matches %v", platforms)
	}
	if attest {
		for _, desc := range atts {
			subject, ok := kept[desc.Annotations["vnd.docker.reference.digest"]]
			if !ok {
				continue
			}
			att, err := src.Image(desc.Digest)
			if err != nil {
				return nil, err
			}
			ann := map[string]string{}
			for k, v := range desc.Annotations {
				ann[k] = v
			}
			ann["vnd.docker.reference.digest"] = subject
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: desc.Platform, Annotations: ann}})
		}
	}
	return idx, nil
}

func matches(spec string, p *v1.Platform) bool {
	want, err := synth.Platform(spec)
	if err != nil {
		return false
	}
	return want.OS == p.OS && want.Architecture == p.Architecture && (want.Variant == "" || want.Variant == p.Variant)
}

// parseFlags splits a command line into flags (both --flag value and
// --flag=value) and positional arguments, refusing unknown flags the way
// cobra does.
func parseFlags(args []string, valued, boolean map[string]bool) (map[string][]string, []string, error) {
	fl := map[string][]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		switch {
		case boolean[name]:
			fl[name] = append(fl[name], "true")
		case valued[name]:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, nil, fmt.Errorf("flag needs an argument: %s", name)
				}
				i++
				value = args[i]
			}
			fl[name] = append(fl[name], value)
		default:
			return nil, nil, fmt.Errorf("unknown flag: %s", name)
		}
	}
	return fl, pos, nil
}

func csvMap(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		m[k] = v
	}
	return m
}

func splitCSV(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func last(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[len(vals)-1]
}
