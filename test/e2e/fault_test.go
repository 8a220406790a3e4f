package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/test/faultproxy"
	"github.com/registry-actions/registry/test/harness"
)

// faultRig is a registry behind a fault proxy, a workspace holding an OCI
// layout of a two-platform image, and an older image the tag "stable"
// already points at, so a test can tell whether a tag moved.
type faultRig struct {
	reg   *harness.Registry
	proxy *faultproxy.Proxy
	ws    string
	want  v1.Hash // the image pushed
	old   v1.Hash // what stable pointed at before
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	rig := &faultRig{reg: reg, proxy: faultproxy.Start(t, reg.URL, nil), ws: t.TempDir()}
	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, 3, 192<<10, 11)
	if err != nil {
		t.Fatal(err)
	}
	writeLayout(t, filepath.Join(rig.ws, "image"), idx)
	rig.want, _ = idx.Digest()
	old, err := synth.MultiArch([]string{"linux/amd64"}, 1, 8<<10, 99)
	if err != nil {
		t.Fatal(err)
	}
	rig.old, _ = old.Digest()
	if err := synth.Push(context.Background(), rig.ref(t, "stable"), old); err != nil {
		t.Fatal(err)
	}
	return rig
}

// ref names a tag of the image at the registry itself, not through the proxy.
func (r *faultRig) ref(t *testing.T, tag string) name.Reference {
	t.Helper()
	ref, err := name.NewTag(r.reg.Host+"/app:"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (r *faultRig) step() harness.Step {
	return harness.Step{Dir: r.ws, Inputs: map[string]string{
		"stage":  "push",
		"source": "./image",
		"images": r.proxy.Host + "/app",
		"tags":   "stable, new",
	}}
}

// assertNoTagMoved: stable still points at the old image, new does not exist.
func (r *faultRig) assertNoTagMoved(t *testing.T) {
	t.Helper()
	desc, err := remote.Head(r.ref(t, "stable"))
	if err != nil || desc.Digest != r.old {
		t.Fatalf("stable moved: %v %v (was %s)", desc, err, r.old)
	}
	if _, err := remote.Head(r.ref(t, "new")); err == nil {
		t.Fatal("tag new was written by a failed push")
	}
}

// assertComplete: both tags point at the image, and every manifest and
// blob of it is there with the bytes its digest names.
func (r *faultRig) assertComplete(t *testing.T) {
	t.Helper()
	for _, tag := range []string{"stable", "new"} {
		desc, err := remote.Head(r.ref(t, tag))
		if err != nil || desc.Digest != r.want {
			t.Fatalf("%s: %v %v, want %s", tag, desc, err, r.want)
		}
	}
	idx, err := remote.Index(r.ref(t, "new"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest) // fetched by digest: checked
		if err != nil {
			t.Fatalf("manifest %s: %v", d.Digest, err)
		}
		if _, err := img.RawConfigFile(); err != nil {
			t.Fatalf("config of %s: %v", d.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("layer of %s: %v", d.Digest, err)
			}
			// go-containerregistry fails the read if the bytes do not
			// hash to the layer's digest.
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("layer of %s: %v", d.Digest, err)
			}
			rc.Close()
		}
	}
}

// assertRerunsComplete re-runs the push without faults: it completes, and
// the run after it uploads nothing (one HEAD of the root per target).
func (r *faultRig) assertRerunsComplete(t *testing.T) {
	t.Helper()
	r.proxy.Clear()
	if res := harness.Run(t, r.step()); res.Code != 0 {
		t.Fatalf("re-run: exit %d\n%s", res.Code, res.Log())
	}
	r.assertComplete(t)
	r.proxy.Reset()
	res := harness.Run(t, r.step())
	if res.Code != 0 {
		t.Fatalf("third run: exit %d\n%s", res.Code, res.Log())
	}
	if n := r.proxy.Count("POST uploads") + r.proxy.Count("PATCH uploads") + r.proxy.Count("PUT uploads") + r.proxy.Count("PUT manifests"); n != 0 {
		t.Fatalf("the third run made %d upload or manifest requests", n)
	}
	var meta []struct {
		BlobsUploaded int `json:"blobsUploaded"`
	}
	if err := json.Unmarshal([]byte(res.Outputs["metadata"]), &meta); err != nil || len(meta) != 1 || meta[0].BlobsUploaded != 0 {
		t.Fatalf("third run metadata %q: %v", res.Outputs["metadata"], err)
	}
}

// assertActionableFailure: exit 1 (never 2 for the registry's trouble), one
// error line with no upload token or query string, and no output written.
func assertActionableFailure(t *testing.T, res harness.Result, want ...string) {
	t.Helper()
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.Code, res.Log())
	}
	line := oneLineError(t, res)
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("error %q lacks %q", line, w)
		}
	}
	if strings.Contains(res.Log(), "_state") || strings.Contains(line, "?") || strings.Contains(line, "ContentLength") {
		t.Errorf("the log carries an upload URL's query:\n%s", res.Log())
	}
	if len(res.Outputs) != 0 {
		t.Errorf("a push that completed nowhere wrote outputs: %v", res.Outputs)
	}
}

func isPatch(r *http.Request) bool { return r.Method == http.MethodPatch }

// Transient trouble is absorbed: the push completes with every byte in
// place, and the runs after it move nothing.
func TestPushThroughTransientFaults(t *testing.T) {
	cases := map[string][]*faultproxy.Rule{
		"server errors": {
			{Times: 2, Status: http.StatusServiceUnavailable, Match: isPatch},
			{Times: 2, Status: http.StatusInternalServerError, Match: func(r *http.Request) bool {
				return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
			}},
		},
		"429 with Retry-After": {
			{Times: 3, Status: http.StatusTooManyRequests, RetryAfter: "1", Match: func(r *http.Request) bool {
				return r.Method == http.MethodHead || r.Method == http.MethodPost
			}},
		},
		"dropped connections": {
			{Times: 2, Drop: true, Match: func(r *http.Request) bool { return r.Method == http.MethodHead }},
			{Times: 2, Drop: true, DropAfter: 64 << 10, Match: isPatch},
		},
	}
	for name, rules := range cases {
		t.Run(name, func(t *testing.T) {
			rig := newFaultRig(t)
			for _, r := range rules {
				rig.proxy.Add(r)
			}
			res := harness.Run(t, rig.step())
			if res.Code != 0 {
				t.Fatalf("exit %d\n%s", res.Code, res.Log())
			}
			for _, r := range rules {
				if got := rig.proxy.Hits(r); got != r.Times {
					t.Errorf("a fault fired %d of %d times", got, r.Times)
				}
			}
			if res.Outputs["digest"] != rig.want.String() {
				t.Errorf("digest output %q", res.Outputs["digest"])
			}
			rig.assertComplete(t)
			rig.assertRerunsComplete(t)
		})
	}
}

// A registry that goes away mid-push fails the run with a line a person can
// act on, moves no tag, and a re-run once it is back finishes the job.
func TestPushWhenTheRegistryStopsMidPush(t *testing.T) {
	rig := newFaultRig(t)
	rig.proxy.Add(&faultproxy.Rule{Times: 1, Match: isPatch, Hook: func(*http.Request) { go rig.proxy.Down() }, Delay: 50 * time.Millisecond, Drop: true})
	res := harness.Run(t, rig.step())
	assertActionableFailure(t, res, rig.proxy.Host, "re-run")
	rig.assertNoTagMoved(t)
	rig.proxy.Up()
	rig.assertRerunsComplete(t)
}

// SIGTERM (a cancelled job) stops the push cleanly: no tag moved, a message
// saying so, and a re-run completes.
func TestPushInterruptedBySIGTERM(t *testing.T) {
	rig := newFaultRig(t)
	var proc atomic.Pointer[os.Process]
	rig.proxy.Add(&faultproxy.Rule{Times: 1, Match: isPatch, Delay: 2 * time.Second, Hook: func(*http.Request) {
		if p := proc.Load(); p != nil {
			p.Signal(syscall.SIGTERM)
		}
	}})
	step := rig.step()
	step.Started = func(p *os.Process) { proc.Store(p) }
	res := harness.Run(t, step)
	assertActionableFailure(t, res, "interrupted", "no tag was written")
	rig.assertNoTagMoved(t)
	rig.assertRerunsComplete(t)
}

// Outputs describe only what happened: when one of two targets cannot be
// tagged, metadata, images and tags list the one that completed.
func TestPushOutputsOnPartialFailure(t *testing.T) {
	rig := newFaultRig(t)
	other := harness.StartRegistry(t, harness.RegistryOptions{})
	broken := faultproxy.Start(t, other.URL, nil)
	// Tags are PUT by tag name; manifests by digest go through.
	broken.Add(&faultproxy.Rule{Status: http.StatusForbidden, Match: func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "sha256:")
	}})
	step := rig.step()
	step.Inputs["images"] = rig.proxy.Host + "/app\n" + broken.Host + "/app"
	res := harness.Run(t, step)
	if res.Code != 1 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	if res.Outputs["digest"] != rig.want.String() {
		t.Errorf("digest output %q, want %s", res.Outputs["digest"], rig.want)
	}
	if want := rig.proxy.Host + "/app@" + rig.want.String(); res.Outputs["images"] != want {
		t.Errorf("images output %q, want only %q", res.Outputs["images"], want)
	}
	if strings.Contains(res.Outputs["tags"], broken.Host) || !strings.Contains(res.Outputs["tags"], rig.proxy.Host+"/app:new") {
		t.Errorf("tags output %q", res.Outputs["tags"])
	}
	var meta []map[string]any
	if err := json.Unmarshal([]byte(res.Outputs["metadata"]), &meta); err != nil || len(meta) != 1 || meta[0]["repository"] != rig.proxy.Host+"/app" {
		t.Errorf("metadata output %q: %v", res.Outputs["metadata"], err)
	}
}

// A registry source is checked too: a manifest fetched by digest must hash
// to that digest, or the source is corrupt (exit 2) and nothing is written.
func TestPushFromARegistryThatAltersAManifest(t *testing.T) {
	rig := newFaultRig(t)
	src := rig.proxy.Host + "/app@" + rig.old.String()
	rig.proxy.Add(&faultproxy.Rule{Match: func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/sha256:")
	}, Rewrite: func(b []byte) []byte { return append(b, ' ') }})
	step := rig.step()
	step.Inputs["source"] = src
	step.Inputs["images"] = rig.proxy.Host + "/copy"
	res := harness.Run(t, step)
	if res.Code != 2 {
		t.Fatalf("exit %d, want 2\n%s", res.Code, res.Log())
	}
	if line := oneLineError(t, res); !strings.Contains(line, "corrupt") || !strings.Contains(line, rig.old.String()) || !strings.Contains(line, src) {
		t.Errorf("error %q should name the source and the manifest", line)
	}
	if n := rig.proxy.Count("PUT manifests") + rig.proxy.Count("POST uploads"); n != 0 {
		t.Errorf("%d writes for a corrupt source", n)
	}
}
