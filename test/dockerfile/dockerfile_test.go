// Package dockerfile checks the Action's Dockerfile without Docker: BuildKit's
// own parser reads it and BuildKit's linter applies the rules `docker build
// --check` applies, and every base image must be pinned by digest.
package dockerfile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func readDockerfile(t *testing.T) []byte {
	t.Helper()
	dt, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

// offlineResolver answers BuildKit's base-image lookups without a registry:
// each image is an empty Linux image of the platform asked for, with the
// digest its reference pins.
type offlineResolver struct{ seen []string }

func (r *offlineResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	r.seen = append(r.seen, ref)
	p := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	cfg, err := json.Marshal(ocispecs.Image{Platform: p, Config: ocispecs.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}})
	if err != nil {
		return "", "", nil, err
	}
	_, dgst, _ := strings.Cut(ref, "@")
	return ref, digest.Digest(dgst), cfg, nil
}

// lint runs BuildKit's Dockerfile linter on dt, for every stage and for the
// platforms the release builds.
func lint(t *testing.T, dt []byte) ([]string, *offlineResolver) {
	t.Helper()
	sm := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", dt)
	sm.Definition = &llb.Definition{}
	res := &offlineResolver{}
	var platforms []ocispecs.Platform
	for _, arch := range []string{"amd64", "arm64"} {
		platforms = append(platforms, ocispecs.Platform{OS: "linux", Architecture: arch})
	}
	results, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		Config:       dockerui.Config{TargetPlatforms: platforms, MultiPlatformRequested: true},
		SourceMap:    sm,
		MetaResolver: res,
	})
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	if results.Error != nil {
		warnings = append(warnings, "build error: "+results.Error.Message)
	}
	for _, w := range results.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		warnings = append(warnings, fmt.Sprintf("line %d: %s: %s (%s)", line, w.RuleName, w.Detail, w.URL))
	}
	return warnings, res
}

func TestDockerfilePassesBuildKitsChecks(t *testing.T) {
	dt := readDockerfile(t)
	parsed, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range parsed.Warnings {
		t.Errorf("parser: line %d: %s", w.Location.Start.Line, w.Short)
	}
	warnings, res := lint(t, dt)
	for _, w := range warnings {
		t.Error(w)
	}
	if len(res.seen) == 0 {
		t.Fatal("the linter resolved no base image: it did not walk the stages")
	}
}

// TestLintCatchesAWarning proves the check can fail: lowercase FROM … as
// and an undefined variable are what docker build --check reports.
func TestLintCatchesAWarning(t *testing.T) {
	warnings, _ := lint(t, []byte("FROM scratch as build\nCOPY $UNDEFINED /x\n"))
	joined := strings.Join(warnings, "\n")
	for _, rule := range []string{"FromAsCasing", "UndefinedVar"} {
		if !strings.Contains(joined, rule) {
			t.Errorf("the linter did not report %s:\n%s", rule, joined)
		}
	}
}

var pinned = regexp.MustCompile(`^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$`)

// TestBaseImagesArePinnedByDigest: every FROM that is not an earlier stage
// names a tag (for people and Dependabot) and the digest it resolved to.
func TestBaseImagesArePinnedByDigest(t *testing.T) {
	problems := unpinned(t, readDockerfile(t))
	for _, p := range problems {
		t.Error(p)
	}
	if got := unpinned(t, []byte("FROM golang:1.26 AS build\nFROM build\nFROM alpine@sha256:"+strings.Repeat("a", 64)+"\n")); len(got) != 2 {
		t.Errorf("the check missed unpinned images: %q", got)
	}
}

func unpinned(t *testing.T, dt []byte) []string {
	t.Helper()
	parsed, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(parsed.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	names := map[string]bool{}
	for _, st := range stages {
		if !names[strings.ToLower(st.BaseName)] && st.BaseName != "scratch" && !pinned.MatchString(st.BaseName) {
			problems = append(problems, fmt.Sprintf("line %d: FROM %s is not pinned as name:tag@sha256:digest", st.Location[0].Start.Line, st.BaseName))
		}
		if st.Name != "" {
			names[strings.ToLower(st.Name)] = true
		}
	}
	if _, _, _, ok := parser.DetectSyntax(dt); ok {
		problems = append(problems, "a # syntax= directive pulls a frontend image on every build: use the daemon's built-in frontend")
	}
	return problems
}
