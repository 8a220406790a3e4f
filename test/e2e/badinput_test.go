package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/internal/demo/vulndb"
	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/test/harness"
)

// badInput is one row of the bad-input table: what the user gives, and what
// the program must answer.
type badInput struct {
	name string
	// in are action inputs ({reg}, {app}, {hostile} are replaced by the
	// registry host, the sample image and the hostile image); args run
	// the CLI instead.
	in   map[string]string
	args []string
	// setup prepares files in the row's own workspace.
	setup func(t *testing.T, ws string)
	// after checks what the run left on disk, returning problems.
	after func(t *testing.T, ws string, res harness.Result) []string
	// faults are installed on the registry for this row.
	faults []*harness.FaultRule
	code   int
	// fix is what the one-line error must say (the fix, or the input it
	// names).
	fix string
}

// TestBadInputsAnswerWithOneLineAndChangeNothing runs every stage with
// inputs a user gets wrong, broken or hostile sources and failing servers.
// Each row checks the exit code, that the error is one line naming the fix,
// that no workflow command was injected, and that the registry holds exactly
// what it held before (no manifest written, no tag moved, nothing deleted).
func TestBadInputsAnswerWithOneLineAndChangeNothing(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})
	ctx := context.Background()
	sample, err := vulndb.Index()
	if err != nil {
		t.Fatal(err)
	}
	appRef, _ := name.NewTag(reg.Host+"/team/app:v1", name.Insecure)
	if err := remote.WriteIndex(appRef, sample, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(appRef.Context().Tag("latest"), sample, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	d, _ := sample.Digest()
	app := appRef.Context().Digest(d.String()).String()
	hostile := hostileIndex(t)
	hostileTag, _ := name.NewTag(reg.Host+"/team/hostile:v1", name.Insecure)
	if err := remote.WriteIndex(hostileTag, hostile, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	hd, _ := hostile.Digest()
	hostileRef := hostileTag.Context().Digest(hd.String()).String()

	base := t.TempDir()
	edgeWorkspace(t, base)
	writeLayout(t, filepath.Join(base, "hostile"), hostile)

	rows := badInputRows()
	if len(rows) < 60 {
		t.Fatalf("the table has %d rows; it must cover at least 60", len(rows))
	}
	expand := func(s string) string {
		return strings.NewReplacer("{reg}", reg.Host, "{app}", app, "{hostile}", hostileRef).Replace(s)
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			ws := filepath.Join(t.TempDir(), "ws")
			copyTree(t, base, ws)
			if row.setup != nil {
				row.setup(t, ws)
			}
			step := harness.Step{Dir: ws}
			if row.args != nil {
				for _, a := range row.args {
					step.Args = append(step.Args, expand(a))
				}
			} else {
				step.Inputs = map[string]string{}
				for k, v := range row.in {
					step.Inputs[k] = expand(v)
				}
			}
			for _, f := range row.faults {
				reg.Faults.Add(f)
			}
			before := snapshotRegistry(t, reg.Host)
			reg.Counter.Reset()
			res := harness.Run(t, step)
			for _, f := range row.faults {
				f.Times = 0 // spent: the next row starts clean
			}
			row.fix = expand(row.fix)
			problems := checkBadInput(t, row, res)
			if row.after != nil {
				problems = append(problems, row.after(t, ws, res)...)
			}
			if n := reg.Counter.Requests("PUT manifests") + reg.Counter.Requests("DELETE manifests") + reg.Counter.Requests("DELETE blobs"); n > 0 {
				problems = append(problems, "the registry received writes or deletes of manifests")
			}
			if after := snapshotRegistry(t, reg.Host); !after.equal(before) {
				problems = append(problems, "the registry's tags changed")
			}
			if len(problems) == 0 {
				return
			}
			t.Error(strings.Join(problems, "\n") + "\n--- log:\n" + res.Log())
		})
	}
}

// checkBadInput returns what is wrong with one row's run.
func checkBadInput(t *testing.T, row badInput, res harness.Result) []string {
	t.Helper()
	var problems []string
	if res.Code != row.code {
		problems = append(problems, "exit "+itoa(res.Code)+", want "+itoa(row.code))
	}
	errs := errorLines(res)
	t.Logf("exit %d: %q", res.Code, errs)
	switch {
	case len(errs) != 1:
		problems = append(problems, "want exactly one error line, got "+itoa(len(errs)))
	case strings.Contains(errs[0], "%0A") || strings.Contains(errs[0], "\r"):
		problems = append(problems, "the error spans several lines: "+errs[0])
	case !strings.Contains(errs[0], row.fix):
		problems = append(problems, "the error does not say "+strconvQuote(row.fix)+": "+errs[0])
	}
	// The only masks allowed are those of the secret inputs the row gave.
	secrets := []string{edgeKeyPassword}
	for k, v := range row.in {
		if decl, ok := inputs.Lookup(k); ok && decl.Secret {
			secrets = append(secrets, v)
		}
	}
	if bad := injectedCommands(res, secrets...); len(bad) > 0 {
		problems = append(problems, "workflow commands injected: "+strconvQuote(strings.Join(bad, " | ")))
	}
	if left := leftovers(t, res.TempDir); len(left) > 0 {
		problems = append(problems, "the run left files in its temp directory: "+strings.Join(left, ", "))
	}
	for _, trace := range []string{"goroutine ", "panic:"} {
		if strings.Contains(res.Log(), trace) {
			problems = append(problems, "a stack trace reached the log")
		}
	}
	return problems
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// in builds a row's inputs from key, value pairs.
func in(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// layoutCopy copies the workspace's sample layout to dir and returns the
// path of one of its blobs chosen by pick (index.json's root manifest, a
// layer…) for the row to damage.
func layoutCopy(t *testing.T, ws, dir string) string {
	t.Helper()
	copyTree(t, filepath.Join(ws, "image"), filepath.Join(ws, dir))
	return filepath.Join(ws, dir)
}

// rootBlob returns the path of the manifest index.json points at.
func rootBlob(t *testing.T, dir string) string {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "blobs", "sha256", im.Manifests[0].Digest.Hex)
}

// layerBlob returns the path of the first layer of the layout's first
// platform image.
func layerBlob(t *testing.T, dir string) string {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := root.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	children, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(children.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("no layer: %v", err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "blobs", "sha256", d.Hex)
}

// flipByte changes one byte of a file, keeping its size.
func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[at%len(data)] ^= 0x20
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tarEntry is one entry of a hand-made tar.
type tarEntry struct {
	hdr  tar.Header
	body string
}

// writeTar writes entries as they are, however hostile; with truncate the
// last entry's body is cut short of its declared size.
func writeTar(t *testing.T, path string, entries []tarEntry, truncate bool) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if truncate && i == len(entries)-1 {
			tw.Write([]byte(e.body))
			break // no padding, no end-of-archive: the size is a lie
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if !truncate {
		tw.Close()
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

func badInputRows() []badInput {
	push := func(kv ...string) map[string]string {
		return in(append([]string{"stage", "push", "images", "{reg}/team/app", "tags", "v2"}, kv...)...)
	}
	scan := func(kv ...string) map[string]string {
		return in(append([]string{"stage", "scan", "images", "{app}", "skip-db-update", "true"}, kv...)...)
	}
	sign := func(kv ...string) map[string]string {
		return in(append([]string{"stage", "sign", "images", "{app}", "key", "cosign.key", "key-password", edgeKeyPassword, "tlog-upload", "false"}, kv...)...)
	}
	verify := func(kv ...string) map[string]string {
		return in(append([]string{"stage", "verify", "images", "{app}", "public-key", "cosign.pub", "tlog-upload", "false"}, kv...)...)
	}
	clean := func(kv ...string) map[string]string {
		return in(append([]string{"stage", "clean", "images", "{reg}/team/app"}, kv...)...)
	}
	file := func(rel, content string) func(*testing.T, string) {
		return func(t *testing.T, ws string) { writeFile(t, filepath.Join(ws, rel), content) }
	}
	// nothingEscaped checks that a hostile archive wrote no file outside
	// the directories the program made: not beside the workspace, not beside
	// the temp directory.
	nothingEscaped := func(t *testing.T, ws string, res harness.Result) []string {
		var out []string
		for _, dir := range []string{ws, filepath.Dir(ws), filepath.Dir(filepath.Dir(ws)), res.TempDir, filepath.Dir(res.TempDir)} {
			if _, err := os.Lstat(filepath.Join(dir, "evil.txt")); err == nil {
				out = append(out, "the archive wrote "+filepath.Join(dir, "evil.txt"))
			}
		}
		return out
	}
	serverError := func(path string) []*harness.FaultRule {
		return []*harness.FaultRule{{
			Match:  func(r *http.Request) bool { return strings.Contains(r.URL.Path, path) },
			Status: http.StatusServiceUnavailable, Times: 1 << 30,
			Body: `{"errors":[{"code":"UNAVAILABLE","message":"maintenance\n::error title=pwned::from the server\n##[warning]pwned"}]}`,
		}}
	}
	return []badInput{
		// Every stage: the chain and shared inputs.
		{name: "unknown stage", in: in("stage", "push,deploy"), code: 2, fix: "valid stages are push, scan, sign, verify, clean"},
		{name: "stage listed twice", in: in("stage", "scan,scan", "images", "{app}"), code: 2, fix: "list each stage once"},
		{name: "timeout not a duration", in: push("source", "image", "timeout", "soon"), code: 2, fix: "use forms like 30d"},
		{name: "negative timeout", in: push("source", "image", "timeout", "-5m"), code: 2, fix: "durations count forward"},
		{name: "overflowing timeout", in: push("source", "image", "timeout", "99999999999999999999d"), code: 2, fix: "too large"},
		{name: "CLI unknown flag", args: []string{"push", "--sauce", "image"}, code: 2, fix: "unknown flag: --sauce"},
		{name: "CLI unknown command", args: []string{"deploy"}, code: 2, fix: "valid stages are push, scan, sign, verify, clean"},
		{name: "CLI bad boolean flag", args: []string{"push", "--ecr-create-repository=perhaps", "--source", "image", "--images", "{reg}/team/app"}, code: 2, fix: "use true or false"},
		{name: "CLI summary file not ours", args: []string{"push", "--source", "image", "--images", "{reg}/team/app", "--tags", "v2", "--summary", "README.md"},
			setup: file("README.md", "# my project\n"), code: 2, fix: "name a new file"},

		// push: references, tags, numbers, booleans.
		{name: "push without source", in: push(), code: 2, fix: "set source"},
		{name: "push without images", in: in("stage", "push", "source", "image"), code: 2, fix: `"images" is required`},
		{name: "repository with spaces", in: push("source", "image", "images", "{reg}/App Name"), code: 2, fix: "invalid repository"},
		{name: "upper-case repository", in: push("source", "image", "images", "{reg}/Team/App"), code: 2, fix: "lower-case"},
		{name: "empty path segment", in: push("source", "image", "images", "{reg}//app"), code: 2, fix: "{reg}//app"},
		{name: "tag starting with a dash", in: push("source", "image", "tags", "-bad"), code: 2, fix: `invalid tag "-bad"`},
		{name: "tag with a space", in: push("source", "image", "tags", "v1 beta"), code: 2, fix: "invalid tag"},
		{name: "tag too long", in: push("source", "image", "tags", strings.Repeat("v", 129)), code: 2, fix: "invalid tag"},
		{name: "tag carrying a command", in: push("source", "image", "tags", "::add-mask::hunter2"), code: 2, fix: "invalid tag"},
		{name: "concurrency not a number", in: push("source", "image", "concurrency", "many"), code: 2, fix: "from 1 to 256"},
		{name: "concurrency zero", in: push("source", "image", "concurrency", "0"), code: 2, fix: "out of range: use a whole number from 1 to 256"},
		{name: "concurrency overflowing", in: push("source", "image", "concurrency", "99999999999999999999"), code: 2, fix: "99999999999999999999 is out of range: use a whole number from 1 to 256"},
		{name: "boolean spelled oddly", in: push("source", "image", "ecr-create-repository", "sometimes"), code: 2, fix: "use true or false"},
		{name: "platform without architecture", in: push("source", "image", "platforms", "linux"), code: 2, fix: "linux"},
		{name: "platform not in the image", in: push("source", "image", "platforms", "linux/s390x"), code: 2, fix: "it has linux/amd64, linux/arm64"},
		{name: "platform filter on a hostile image", in: push("source", "hostile", "platforms", "linux/s390x"), code: 2, fix: "linux/s390x"},

		// push: sources that are missing, broken or hostile.
		{name: "source missing", in: push("source", "./nope"), code: 2, fix: "not found"},
		{name: "source empty directory", in: push("source", "empty"), setup: func(t *testing.T, ws string) { os.MkdirAll(filepath.Join(ws, "empty"), 0o755) }, code: 2, fix: "empty"},
		{name: "layout index.json not JSON", in: push("source", "broken"), setup: func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(layoutCopy(t, ws, "broken"), "index.json"), "{not json")
		}, code: 2, fix: "index.json"},
		{name: "layout blob missing", in: push("source", "broken", "images", "{reg}/team/fresh"), setup: func(t *testing.T, ws string) {
			os.Remove(layerBlob(t, layoutCopy(t, ws, "broken")))
		}, code: 2, fix: "broken"},
		{name: "layout layer altered", in: push("source", "broken", "images", "{reg}/team/fresh"), setup: func(t *testing.T, ws string) {
			flipByte(t, layerBlob(t, layoutCopy(t, ws, "broken")), 100)
		}, code: 2, fix: "re-export or rebuild the image"},
		{name: "layout root index altered", in: push("source", "broken"), setup: func(t *testing.T, ws string) {
			flipByte(t, rootBlob(t, layoutCopy(t, ws, "broken")), 10)
		}, code: 2, fix: "hashes to"},
		{name: "layout index.json size wrong", in: push("source", "broken"), setup: func(t *testing.T, ws string) {
			dir := layoutCopy(t, ws, "broken")
			data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
			var doc map[string]any
			json.Unmarshal(data, &doc)
			doc["manifests"].([]any)[0].(map[string]any)["size"] = 7
			data, _ = json.Marshal(doc)
			writeFile(t, filepath.Join(dir, "index.json"), string(data))
		}, code: 2, fix: "is 1057 bytes"},
		{name: "archive that is not a tar", in: push("source", "image.tar"), setup: file("image.tar", "this is not a tar archive at all, just text\n"), code: 2, fix: "image.tar"},
		{name: "archive escaping its directory", in: push("source", "evil.tar"), setup: func(t *testing.T, ws string) {
			writeTar(t, filepath.Join(ws, "evil.tar"), []tarEntry{
				{hdr: tar.Header{Name: "oci-layout"}, body: ociLayoutFile},
				{hdr: tar.Header{Name: "../../evil.txt"}, body: "owned"},
				{hdr: tar.Header{Name: "index.json"}, body: `{"schemaVersion":2,"manifests":[]}`},
			}, false)
		}, after: nothingEscaped, code: 2, fix: "evil.tar"},
		{name: "archive with a symlink to the host", in: push("source", "link.tar"), setup: func(t *testing.T, ws string) {
			writeTar(t, filepath.Join(ws, "link.tar"), []tarEntry{
				{hdr: tar.Header{Name: "oci-layout"}, body: ociLayoutFile},
				{hdr: tar.Header{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}},
			}, false)
		}, code: 2, fix: "link.tar"},
		{name: "archive entry claiming a huge size", in: push("source", "huge.tar"), setup: func(t *testing.T, ws string) {
			writeTar(t, filepath.Join(ws, "huge.tar"), []tarEntry{
				{hdr: tar.Header{Name: "oci-layout"}, body: ociLayoutFile},
				{hdr: tar.Header{Name: "blobs/sha256/" + strings.Repeat("a", 64), Size: 1 << 40}, body: "short"},
			}, true)
		}, code: 2, fix: "huge.tar"},
		{name: "docker-save manifest.json not JSON", in: push("source", "save.tar"), setup: func(t *testing.T, ws string) {
			writeTar(t, filepath.Join(ws, "save.tar"), []tarEntry{{hdr: tar.Header{Name: "manifest.json"}, body: "[{"}}, false)
		}, code: 2, fix: "save.tar"},
		{name: "docker-save config missing", in: push("source", "save.tar"), setup: func(t *testing.T, ws string) {
			writeTar(t, filepath.Join(ws, "save.tar"), []tarEntry{{hdr: tar.Header{Name: "manifest.json"}, body: `[{"Config":"missing.json","RepoTags":["x:1"],"Layers":["l.tar"]}]`}}, false)
		}, code: 2, fix: "save.tar"},
		{name: "OCI archive of a tampered layout", in: push("source", "tampered.tar", "images", "{reg}/team/fresh"), setup: func(t *testing.T, ws string) {
			dir := layoutCopy(t, ws, "tampered")
			flipByte(t, layerBlob(t, dir), 7)
			if err := synth.TarDir(dir, filepath.Join(ws, "tampered.tar"), ""); err != nil {
				t.Fatal(err)
			}
		}, code: 2, fix: "re-export or rebuild the image"},
		{name: "source reference malformed", in: push("source", "docker://{reg}/Bad Name:v1"), code: 2, fix: "Bad Name"},
		{name: "source reference not in the registry", in: push("source", "{reg}/team/none:v1"), code: 2, fix: "{reg}/team/none:v1"},
		{name: "registry answers 503 with a hostile body", in: push("source", "image", "images", "{reg}/team/outage", "timeout", "20s"), faults: serverError("/team/outage/"), code: 1, fix: "{reg}/team/outage"},

		// scan.
		{name: "scan without images", in: in("stage", "scan"), code: 2, fix: `"images" is required`},
		{name: "scan unknown scanner", in: scan("scanner", "grype"), code: 2, fix: "is not supported: use trivy"},
		{name: "scan unknown severity", in: scan("severity", "HIGH,SEVERE"), code: 2, fix: "valid severities are"},
		{name: "scan unknown fail-on", in: scan("fail-on", "urgent"), code: 2, fix: "or none"},
		{name: "scan unknown format", in: scan("formats", "pdf"), code: 2, fix: "use sarif, json, sbom"},
		{name: "scan unknown package type", in: scan("pkg-types", "apps"), code: 2, fix: "apps"},
		{name: "scan unknown scanner kind", in: scan("scanners", "virus"), code: 2, fix: "virus"},
		{name: "scan boolean spelled oddly", in: scan("ignore-unfixed", "perhaps"), code: 2, fix: "use true or false"},
		{name: "scan image not in the registry", in: scan("images", "{reg}/team/none:v1"), code: 2, fix: "check the reference"},
		{name: "scan reference malformed", in: scan("images", "{reg}/team/app:bad tag"), code: 2, fix: "bad tag"},
		{name: "scan path missing", in: scan("images", "./missing-layout"), code: 2, fix: "check the path"},
		{name: "scan layout index.json not JSON", in: scan("images", "./broken"), setup: func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(layoutCopy(t, ws, "broken"), "index.json"), "{not json")
		}, code: 2, fix: "broken"},
		{name: "scan archive escaping its directory", in: scan("images", "./evil.tar"), setup: func(t *testing.T, ws string) {
			writeTar(t, filepath.Join(ws, "evil.tar"), []tarEntry{
				{hdr: tar.Header{Name: "oci-layout"}, body: ociLayoutFile},
				{hdr: tar.Header{Name: "../../evil.txt"}, body: "owned"},
			}, false)
		}, after: nothingEscaped, code: 2, fix: "evil.tar"},
		{name: "scan ignore file missing", in: scan("ignore-file", "missing.trivyignore"), code: 2, fix: "missing.trivyignore"},
		{name: "scan VEX file missing", in: scan("vex", "missing.vex.json"), code: 2, fix: "missing.vex.json"},
		{name: "scan output-dir holds other files", in: scan("output-dir", "docs"), setup: file("docs/guide.md", "# mine\n"), code: 2, fix: "name a new or empty directory"},
		{name: "scan output-dir is a file", in: scan("output-dir", "notes.txt"), setup: file("notes.txt", "mine\n"), code: 2, fix: "is a file"},
		{name: "scan cache-dir holds other files", in: scan("cache-dir", "."), code: 2, fix: "not a Trivy cache"},
		{name: "scan ECR findings of a non-ECR image", in: scan("scanner", "ecr"), code: 2, fix: "use scanner: trivy"},
		{name: "scan registry answers 503 with a hostile body", in: scan("images", "{reg}/team/outage:v1", "timeout", "20s"), faults: serverError("/team/outage/"), code: 1, fix: "{reg}/team/outage"},
		{name: "scan hostile image with a bad gate", in: scan("images", "{hostile}", "fail-on", "SEVERE"), code: 2, fix: "or none"},

		// sign.
		{name: "sign without images", in: in("stage", "sign", "key", "cosign.key"), code: 2, fix: `"images" is required`},
		{name: "sign key file missing", in: sign("key", "missing.key"), code: 2, fix: "missing.key"},
		{name: "sign key not a key", in: sign("key", "junk.key"), setup: file("junk.key", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGEga2V5\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), code: 2, fix: "key"},
		{name: "sign wrong key password", in: sign("key-password", "not-the-password"), code: 2, fix: "check key-password"},
		{name: "sign key password without key", in: in("stage", "sign", "images", "{app}", "key-password", "x1234"), code: 2, fix: "set key"},
		{name: "sign unknown signature format", in: sign("signature-format", "pgp"), code: 2, fix: "use legacy or bundle"},
		{name: "sign unknown attestation", in: sign("attest", "provenance"), code: 2, fix: "use vuln, sbom"},
		{name: "sign attestation without a scan", in: sign("attest", "vuln"), code: 2, fix: "set vuln-file"},
		{name: "sign vuln-file missing", in: sign("attest", "vuln", "vuln-file", "missing.json"), code: 2, fix: "missing.json"},
		{name: "sign annotation without a value", in: sign("annotations", "novalue"), code: 2, fix: "key=value"},
		{name: "sign boolean spelled oddly", in: sign("tlog-upload", "sometimes"), code: 2, fix: "use true or false"},
		{name: "sign image not in the registry", in: sign("images", "{reg}/team/none:v1"), code: 2, fix: "check the images input"},
		{name: "sign reference malformed", in: sign("images", "{reg}/team/app@sha256:xyz"), code: 2, fix: "sha256:xyz"},
		{name: "sign keyless outside a workflow with id-token", in: in("stage", "sign", "images", "{app}", "tlog-upload", "false"), code: 2, fix: "id-token: write"},
		{name: "sign registry answers 503 with a hostile body", in: sign("images", "{reg}/team/outage:v1", "timeout", "20s"), faults: serverError("/team/outage/"), code: 1, fix: "{reg}/team/outage"},

		// verify.
		{name: "verify without identity or key", in: in("stage", "verify", "images", "{app}"), code: 2, fix: "set certificate-identity"},
		{name: "verify key and identity", in: verify("certificate-identity", "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"), code: 2, fix: "not both"},
		{name: "verify identity and regexp", in: in("stage", "verify", "images", "{app}", "certificate-identity", "a", "certificate-identity-regexp", "b"), code: 2, fix: "not both"},
		{name: "verify regexp invalid", in: in("stage", "verify", "images", "{app}", "certificate-identity-regexp", "(["), code: 2, fix: "not a regular expression"},
		{name: "verify public key missing", in: verify("public-key", "missing.pub"), code: 2, fix: "missing.pub"},
		{name: "verify trusted root missing", in: in("stage", "verify", "images", "{app}", "certificate-identity-regexp", ".*", "trusted-root", "missing.json"), code: 2, fix: "missing.json"},
		{name: "verify trusted root not one", in: in("stage", "verify", "images", "{app}", "certificate-identity-regexp", ".*", "trusted-root", "root.json"), setup: file("root.json", `{"hello":"world"}`), code: 2, fix: "not a Sigstore trusted_root.json"},
		{name: "verify unknown attestation", in: verify("require-attestations", "provenance"), code: 2, fix: "provenance"},
		{name: "verify image not in the registry", in: verify("images", "{reg}/team/none:v1"), code: 2, fix: "check the images input"},
		{name: "verify registry answers 503 with a hostile body", in: verify("images", "{reg}/team/outage:v1", "timeout", "20s"), faults: serverError("/team/outage/"), code: 1, fix: "{reg}/team/outage"},

		// clean.
		{name: "clean without a policy", in: clean(), code: 2, fix: "set policy"},
		{name: "clean policy and shorthand", in: clean("policy", `{"rules":[]}`, "keep-tagged", "5"), code: 2, fix: "use policy alone"},
		{name: "clean policy file missing", in: clean("policy", "missing.json"), code: 2, fix: "missing.json"},
		{name: "clean policy not JSON", in: clean("policy", "policy.json"), setup: file("policy.json", "{\"rules\": [\n {\"rulePriority\": 1,}\n]}"), code: 2, fix: "invalid JSON at line 2"},
		{name: "clean rule priority zero", in: clean("policy", `{"rules":[{"rulePriority":0,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), code: 2, fix: "rulePriority"},
		{name: "clean prefixes and patterns together", in: clean("policy", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), code: 2, fix: "tagPatternList"},
		{name: "clean policy description carrying a command", in: clean("policy", `{"rules":[{"rulePriority":0,"description":"::add-mask::hunter2\n##[error]pwned","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), code: 2, fix: "rulePriority"},
		{name: "clean keep-tagged zero", in: clean("keep-tagged", "0"), code: 2, fix: "from 1 to 1000000"},
		{name: "clean max-deletions overflowing", in: clean("keep-tagged", "1", "max-deletions", "99999999999999999999"), code: 2, fix: "99999999999999999999 is out of range: use a whole number from 0 to 1000000"},
		{name: "clean age not in days", in: clean("untagged-older-than", "7x"), code: 2, fix: "7x"},
		{name: "clean unknown mode", in: clean("keep-tagged", "1", "mode", "delete"), code: 2, fix: "preview, apply or enforce"},
		{name: "clean boolean spelled oddly", in: clean("keep-tagged", "1", "delete-orphans", "maybe"), code: 2, fix: "use true or false"},
		{name: "clean repository missing", in: clean("keep-tagged", "1", "images", "{reg}/team/none"), code: 2, fix: "check the repository name"},
		{name: "clean a tag instead of a repository", in: clean("keep-tagged", "1", "images", "{reg}/team/app:v1"), code: 2, fix: "give the repository alone"},
		{name: "clean output-dir holds other files", in: clean("keep-tagged", "1", "output-dir", "docs"), setup: file("docs/guide.md", "# mine\n"), code: 2, fix: "name a new or empty directory"},
		{name: "clean registry answers 503 with a hostile body", in: clean("keep-tagged", "1", "images", "{reg}/team/outage", "timeout", "20s"), faults: serverError("/team/outage/"), code: 1, fix: "{reg}/team/outage"},
	}
}

// TestAnOutageIsNeverAVerdict: a registry that fails (503) while verify
// reads a signature bundle stops verification with exit 1; it must not
// report the image unsigned (exit 3).
func TestAnOutageIsNeverAVerdict(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := t.TempDir()
	edgeWorkspace(t, ws)
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: in(
		"stage", "push,sign", "source", "image", "images", reg.Host+"/team/app", "tags", "v1",
		"key", "cosign.key", "key-password", edgeKeyPassword, "tlog-upload", "false", "signature-format", "bundle", "recursive", "false")})
	if res.Code != 0 {
		t.Fatalf("push and sign: exit %d\n%s", res.Code, res.Log())
	}
	subject, err := name.NewDigest(reg.Host+"/team/app@"+res.Outputs["digest"], name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(subject)
	if err != nil {
		t.Fatal(err)
	}
	im, err := refs.IndexManifest()
	if err != nil || len(im.Manifests) == 0 {
		t.Fatalf("no bundle was attached as a referrer: %v", err)
	}
	bundle := im.Manifests[0].Digest.String()
	outage := &harness.FaultRule{
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+bundle)
		},
		Status: http.StatusServiceUnavailable, Times: 1 << 30,
	}
	reg.Faults.Add(outage)
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: in(
		"stage", "verify", "images", subject.String(), "public-key", "cosign.pub", "tlog-upload", "false", "recursive", "false")})
	if reg.Faults.Hits(outage) == 0 {
		t.Fatal("verify never read the bundle: the outage was not exercised")
	}
	if errs := errorLines(res); res.Code != 1 || len(errs) != 1 || !strings.Contains(errs[0], subject.Context().String()) {
		t.Fatalf("verify during an outage: exit %d, errors %q; want exit 1 naming the repository\n%s", res.Code, errs, res.Log())
	}
}
