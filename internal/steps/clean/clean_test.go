package clean_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/ecr"
	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/clean"
	"github.com/registry-actions/registry/test/fakeecr"
)

func TestMain(m *testing.M) {
	fakeecr.IsolateAWS()
	os.Exit(m.Run())
}

var (
	now     = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	longAgo = now.AddDate(0, 0, -90)
)

const ecrHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// methodCounter counts requests by method in front of a registry; before,
// when set, runs first and may answer a status instead.
type methodCounter struct {
	h      http.Handler
	mu     sync.Mutex
	counts map[string]int
	before func(*http.Request) int
}

func (c *methodCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.counts[r.Method]++
	before := c.before
	c.mu.Unlock()
	if before != nil {
		if status := before(r); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"refused by the test"}]}`))
			return
		}
	}
	c.h.ServeHTTP(w, r)
}

func (c *methodCounter) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[method]
}

func startRegistry(t *testing.T) (*methodCounter, string) {
	t.Helper()
	c := &methodCounter{h: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))), counts: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, repo string, spec cleanfixture.Image) *cleanfixture.Built {
	t.Helper()
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cleanfixture.Push(context.Background(), r, spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func baseOptions(t *testing.T, images ...string) clean.Options {
	return clean.Options{
		Images:       images,
		MaxDeletions: 100,
		OutputDir:    t.TempDir(),
		Now:          now,
		Registry:     registry.New(registry.Options{UserAgent: "clean-test"}),
		AWSPreview:   ecr.PreviewOptions{PollInterval: time.Millisecond, Timeout: 5 * time.Second},
	}
}

func withECR(opts clean.Options, srv *fakeecr.Server) clean.Options {
	opts.ECR = func(ctx context.Context, host registry.ECRHost) (clean.ECRAPI, error) {
		return ecr.New(ctx, ecr.Options{Region: host.Region, RegistryID: host.AccountID, Endpoint: srv.URL(),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), MaxBackoff: time.Millisecond})
	}
	return opts
}

func policyText(rules string) clean.PolicyInput {
	return clean.PolicyInput{Text: []byte(`{"rules":[` + rules + `]}`), Source: "inline"}
}

const (
	expireV1 = `{"rulePriority":1,"description":"v1 older than 1 day","selection":{"tagStatus":"tagged","tagPatternList":["v1"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}`
	untagged = `{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}`
)

// multiArch pushes the repository of issue 6: an old index tagged v1 with
// two platform manifests, attestation manifests, a cosign signature and an
// OCI 1.1 referrer, plus a recent image tagged v2.
func multiArch(t *testing.T, repo string) (old, recent *cleanfixture.Built) {
	old = push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"},
		Attestations: true, Signature: true, Referrer: true, Seed: 1})
	recent = push(t, repo, cleanfixture.Image{Tags: []string{"v2"}, Created: now.AddDate(0, 0, -1), Annotate: true, Seed: 2})
	return old, recent
}

func TestUntaggedRuleDeletesNothingOfAMultiArchImage(t *testing.T) {
	reg, host := startRegistry(t)
	repo := host + "/app"
	multiArch(t, repo)
	opts := baseOptions(t, repo)
	opts.Policy = policyText(untagged)
	opts.Mode = clean.ModeEnforce
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Planned != 0 || reg.count(http.MethodDelete) != 0 {
		t.Fatalf("an untagged rule deleted parts of a multi-arch image: planned %d, DELETEs %d", res.Totals.Planned, reg.count(http.MethodDelete))
	}
}

func TestExpiringTheIndexTakesEverythingAlong(t *testing.T) {
	reg, host := startRegistry(t)
	repo := host + "/app"
	old, recent := multiArch(t, repo)
	opts := baseOptions(t, repo)
	opts.Policy = policyText(expireV1)

	// Preview: the plan, and not one DELETE.
	opts.Mode = clean.ModePreview
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if reg.count(http.MethodDelete) != 0 {
		t.Fatalf("preview sent %d DELETE requests", reg.count(http.MethodDelete))
	}
	plan := res.Repositories[0].Plan
	if !slices.Equal(sorted(plan.Delete), sorted(old.Digests())) || plan.Delete[0] != old.Digest {
		t.Fatalf("plan deletes %v, want the index first and all of %v", plan.Delete, old.Digests())
	}
	outs := outputs(res)
	if outs["deleted-count"] != "8" || outs["deleted"] != "" || outs["plan"] != filepath.Join(opts.OutputDir, clean.PlanFileName) {
		t.Errorf("preview outputs = %v", outs)
	}
	var file struct {
		Version      int             `json:"version"`
		Mode         string          `json:"mode"`
		Policy       json.RawMessage `json:"policy"`
		Repositories []struct {
			Plan lifecycle.Plan `json:"plan"`
		} `json:"repositories"`
	}
	data, err := os.ReadFile(outs["plan"])
	if err != nil || json.Unmarshal(data, &file) != nil {
		t.Fatalf("plan file: %v\n%s", err, data)
	}
	if file.Version != 2 || file.Mode != "preview" || len(file.Repositories[0].Plan.Expired[0].Cascade) != 7 {
		t.Errorf("plan file = %+v", file)
	}

	// Enforce deletes exactly the plan; the recent image stays whole.
	opts.Mode = clean.ModeEnforce
	res, err = clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	outs = outputs(res)
	if outs["deleted-count"] != "8" || len(strings.Split(outs["deleted"], "\n")) != 8 || !strings.HasPrefix(outs["deleted"], repo+"@"+old.Digest) {
		t.Errorf("enforce outputs = %v", outs)
	}
	if outs["kept-count"] != "1" || outs["failed"] != "" {
		t.Errorf("kept %s, failed %q", outs["kept-count"], outs["failed"])
	}
	// Re-running converges: nothing left to delete.
	res, err = clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Planned != 0 || res.Totals.Kept != 1 || res.Repositories[0].Plan.Counts.Artifacts != len(recent.Manifests) {
		t.Errorf("second run: %+v", res.Totals)
	}
}

func TestMaxDeletionsFailsClosed(t *testing.T) {
	reg, host := startRegistry(t)
	repo := host + "/app"
	multiArch(t, repo)
	opts := baseOptions(t, repo)
	opts.Policy = policyText(expireV1)
	opts.Mode = clean.ModeEnforce
	opts.MaxDeletions = 5
	res, err := clean.Run(context.Background(), opts)
	var gate *failure.GateError
	if !errors.As(err, &gate) {
		t.Fatalf("err = %v, want a gate error", err)
	}
	for _, want := range []string{"deletes 8 manifests", "max-deletions 5", "nothing was deleted", "at least 8"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if reg.count(http.MethodDelete) != 0 || res.Totals.Deleted != 0 || res.Blocked == "" {
		t.Fatalf("DELETEs %d, result %+v", reg.count(http.MethodDelete), res.Totals)
	}
	if _, err := os.Stat(filepath.Join(opts.OutputDir, clean.PlanFileName)); err != nil {
		t.Errorf("no plan file to review: %v", err)
	}

	// Preview with the same limit only warns.
	opts.Mode = clean.ModePreview
	res, err = clean.Run(context.Background(), opts)
	if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "more than max-deletions 5") {
		t.Fatalf("preview: %v %v", err, res.Warnings)
	}
}

func TestProtectedDigestIsNeverDeleted(t *testing.T) {
	reg, host := startRegistry(t)
	repo := host + "/app"
	old, _ := multiArch(t, repo)
	opts := baseOptions(t, repo+"@"+old.Digest) // as a chain hands it on
	opts.Policy = policyText(expireV1)
	opts.Mode = clean.ModeEnforce
	opts.Protected = []string{old.Digest}
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if reg.count(http.MethodDelete) != 0 || res.Totals.Planned != 0 {
		t.Fatalf("the protected image was deleted: %+v", res.Totals)
	}
	notes := res.Repositories[0].Plan.Protected
	if len(notes) != 1 || notes[0].Digest != old.Digest || notes[0].RulePriority != 1 {
		t.Errorf("protected notes = %+v", notes)
	}
	var md report.Markdown
	res.Summary(&md)
	if !strings.Contains(md.String(), "protected; rule 1 would expire it") {
		t.Errorf("summary does not say why the image was kept:\n%s", md.String())
	}
}

func TestShorthandCompilesToAPolicyTheSummaryPrints(t *testing.T) {
	_, host := startRegistry(t)
	repo := host + "/app"
	push(t, repo, cleanfixture.Image{Tags: []string{"latest"}, Created: longAgo, Seed: 1})
	push(t, repo, cleanfixture.Image{Tags: []string{"pr-1"}, Created: longAgo.Add(time.Hour), Seed: 2})
	push(t, repo, cleanfixture.Image{Tags: []string{"pr-2"}, Created: longAgo.Add(2 * time.Hour), Seed: 3})
	opts := baseOptions(t, repo)
	opts.Policy = clean.PolicyInput{Shorthand: &lifecycle.Shorthand{KeepTagged: 1, ProtectTags: []string{"latest"}}}
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	expired := res.Repositories[0].Plan.Expired
	if len(expired) != 1 || expired[0].Tags[0] != "pr-1" {
		t.Fatalf("expired %+v, want pr-1 only (latest protected, pr-2 newest)", expired)
	}
	var md report.Markdown
	res.Summary(&md)
	s := md.String()
	for _, want := range []string{"paste it into ECR", `"countNumber": 1000000`, "Keep the 1 most recent tagged images", "**Preview** — nothing was deleted", "Ages from the image config's created time (3)", "record no push time"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	var text bytes.Buffer
	res.Text(&text)
	if !strings.Contains(text.String(), "pr-1") || !strings.Contains(text.String(), "paste into ECR") {
		t.Errorf("text:\n%s", text.String())
	}
}

func TestBadInputs(t *testing.T) {
	_, host := startRegistry(t)
	repo := host + "/app"
	push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Seed: 1})
	cases := []struct {
		name   string
		mutate func(*clean.Options)
		want   string
	}{
		{"invalid JSON", func(o *clean.Options) {
			o.Policy = clean.PolicyInput{Text: []byte("{\"rules\": [\n  {\"rulePriority\": 1,}\n]}"), Source: "file policy.json"}
		}, "clean: policy (file policy.json): invalid JSON at line 2, column 22: unexpected '}'"},
		{"invalid rule", func(o *clean.Options) {
			o.Policy = policyText(`{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`)
		}, `rule 2: tagPatternList "a*b*c*d*e*f" has more than 4 wildcards`},
		{"archive rule on a plain registry", func(o *clean.Options) {
			o.Policy = policyText(`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}`)
		}, "the policy cannot be used on " + repo + ": invalid lifecycle policy: rule 1: action type \"transition\" is not supported on plain OCI registries"},
		{"apply on a plain registry", func(o *clean.Options) { o.Mode = clean.ModeApply },
			"mode apply puts a lifecycle policy on ECR repositories, but " + repo + " is on a plain OCI registry, which stores no policies: use mode: enforce on a schedule"},
		{"unknown mode", func(o *clean.Options) { o.Mode = "delete" }, `mode "delete" is not one of list, preview, apply or enforce`},
		{"tagged image", func(o *clean.Options) { o.Images = []string{repo + ":v1"} }, "has a tag: give the repository alone"},
		{"unknown repository", func(o *clean.Options) { o.Images = []string{host + "/nope"} }, "repository not found: check the repository name in images"},
		{"shorthand conflict", func(o *clean.Options) {
			o.Policy = clean.PolicyInput{Shorthand: &lifecycle.Shorthand{KeepTagged: 3, TaggedOlderThan: 48 * time.Hour}}
		}, "keep-tagged and tagged-older-than cannot both be set"},
		{"negative max-deletions", func(o *clean.Options) { o.MaxDeletions = -1 }, "max-deletions must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := baseOptions(t, repo)
			opts.Policy = policyText(expireV1)
			tc.mutate(&opts)
			res, err := clean.Run(context.Background(), opts)
			var invalid *failure.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %v, want a bad-input error", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error\n %s\nwant one line containing\n %s", err, tc.want)
			}
			if res != nil {
				t.Errorf("a result came with a bad input: %+v", res)
			}
		})
	}
}

func outputs(res *clean.Result) map[string]string {
	out := map[string]string{}
	for _, o := range res.Outputs() {
		out[o.Name] = o.Value
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

var _ inventory.Store = (*inventory.OCI)(nil)

// The policy users copy from examples/ must stay valid on every registry
// kind, and the scheduled GHCR example's shorthand must compile.
func TestExamplesStayValid(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "policies", "ecr-lifecycle.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := lifecycle.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []lifecycle.RegistryKind{lifecycle.RegistryECR, lifecycle.RegistryGHCR, lifecycle.RegistryOCI} {
		caps, _ := lifecycle.CapabilitiesFor(kind)
		if err := p.Validate(caps); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
	workflow, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "workflows", "clean-ghcr-scheduled.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"keep-tagged: 20", "tag-patterns: pr-*", "untagged-older-than: 7d", "protect-tags: latest,v*"} {
		if !strings.Contains(string(workflow), want) {
			t.Fatalf("the scheduled example no longer says %q: update this test", want)
		}
	}
	if _, err := lifecycle.Compile(lifecycle.Shorthand{KeepTagged: 20, TagPatterns: []string{"pr-*"}, UntaggedOlderThan: 7 * 24 * time.Hour, ProtectTags: []string{"latest", "v*"}}); err != nil {
		t.Fatal(err)
	}
	// A scheduled clean never overlaps another: every example that cleans
	// on a schedule sets a concurrency group.
	examples, _ := filepath.Glob(filepath.Join("..", "..", "..", "examples", "workflows", "*.yml"))
	for _, path := range examples {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(src)
		if strings.Contains(text, "stage: clean") && strings.Contains(text, "schedule:") && !strings.Contains(text, "\nconcurrency:\n  group: ") {
			t.Errorf("%s cleans on a schedule without a concurrency group", filepath.Base(path))
		}
	}
}
