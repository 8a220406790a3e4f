package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/demo/synth"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/fakegithub"
	"github.com/registry-actions/registry/test/harness"
)

var (
	cleanNow     = time.Now().UTC()
	cleanLongAgo = cleanNow.AddDate(0, 0, -90)
)

const (
	// expireV1 expires images tagged v1 older than a day.
	expireV1Policy = `{
  "rules": [
    {
      "rulePriority": 1,
      "description": "v1 older than 1 day",
      "selection": {"tagStatus": "tagged", "tagPatternList": ["v1"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
      "action": {"type": "expire"}
    }
  ]
}
`
	untaggedPolicy = `{"rules": [{"rulePriority": 1, "description": "untagged older than 1 day",
  "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
  "action": {"type": "expire"}}]}`
)

// issueRepository is the repository of the issue: an old index tagged v1
// with two platform manifests, their attestation manifests, a cosign
// signature and an OCI 1.1 referrer; and a recent image tagged v2.
func issueRepository(t *testing.T, repo name.Repository, opts ...remote.Option) (old, recent *cleanfixture.Built) {
	t.Helper()
	var err error
	old, err = cleanfixture.Push(context.Background(), repo, cleanfixture.Image{Tags: []string{"v1"}, Created: cleanLongAgo,
		Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true, Signature: true, Referrer: true, Seed: 1}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	recent, err = cleanfixture.Push(context.Background(), repo, cleanfixture.Image{Tags: []string{"v2"}, Created: cleanNow.AddDate(0, 0, -1), Annotate: true, Seed: 2}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return old, recent
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func manifestExists(t *testing.T, repo name.Repository, digest string, opts ...remote.Option) bool {
	t.Helper()
	_, err := remote.Head(repo.Digest(digest), opts...)
	return err == nil
}

func TestCleanOCIRegistryPreviewThenEnforce(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})
	repo, _ := name.NewRepository(reg.Host+"/team/app", name.Insecure)
	old, recent := issueRepository(t, repo)
	ws := t.TempDir()
	writeFile(t, filepath.Join(ws, ".github", "lifecycle.json"), expireV1Policy)
	writeFile(t, filepath.Join(ws, "untagged.json"), untaggedPolicy)
	inputs := map[string]string{"stage": "clean", "images": repo.Name(), "policy": ".github/lifecycle.json"}

	// An untagged rule deletes no part of the multi-arch image, even in
	// enforce: platform, attestation and signature manifests are not judged alone.
	reg.Counter.Reset()
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{"stage": "clean", "images": repo.Name(), "policy": "untagged.json", "mode": "enforce"}})
	if res.Code != 0 || res.Outputs["deleted-count"] != "0" || reg.Counter.Requests("DELETE manifests") != 0 {
		t.Fatalf("untagged rule: exit %d, outputs %v, DELETEs %d\n%s", res.Code, res.Outputs, reg.Counter.Requests("DELETE manifests"), res.Log())
	}

	// Preview: the plan, and not one DELETE.
	reg.Counter.Reset()
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("preview: exit %d\n%s", res.Code, res.Log())
	}
	if n := reg.Counter.Requests("DELETE manifests"); n != 0 {
		t.Fatalf("preview sent %d DELETE requests", n)
	}
	all := len(old.Manifests) + len(recent.Manifests)
	tags := 0
	for _, b := range []*cleanfixture.Built{old, recent} {
		for _, m := range b.Manifests {
			tags += len(m.Tags)
		}
	}
	// API economy: one HEAD per tag, each manifest read once.
	if h, g := reg.Counter.Requests("HEAD manifests"), reg.Counter.Requests("GET manifests"); h != tags || g != all {
		t.Errorf("preview read %d HEAD and %d GET manifests; want one HEAD per tag (%d) and one GET per manifest (%d)", h, g, tags, all)
	}
	if res.Outputs["deleted-count"] != fmt.Sprint(len(old.Manifests)) || res.Outputs["deleted"] != "" {
		t.Errorf("preview outputs: %v", res.Outputs)
	}
	// Relative to the workspace, so later steps find it after a container action.
	if res.Outputs["plan"] != "registry-reports/clean-plan.json" {
		t.Errorf("plan output %q", res.Outputs["plan"])
	}
	planPath := filepath.Join(ws, res.Outputs["plan"])
	var plan struct {
		Mode         string `json:"mode"`
		Repositories []struct {
			Clocks map[string]int `json:"clocks"`
			Plan   struct {
				Expired []struct {
					Digest       string   `json:"digest"`
					Tags         []string `json:"tags"`
					AgeDays      int      `json:"ageDays"`
					RulePriority int      `json:"rulePriority"`
					Cascade      []struct {
						Digest string `json:"digest"`
						Kind   string `json:"kind"`
					} `json:"cascade"`
				} `json:"expired"`
				Delete []string `json:"delete"`
			} `json:"plan"`
		} `json:"repositories"`
	}
	data, err := os.ReadFile(planPath)
	if err != nil || json.Unmarshal(data, &plan) != nil {
		t.Fatalf("plan file: %v\n%s", err, data)
	}
	exp := plan.Repositories[0].Plan.Expired
	if len(exp) != 1 || exp[0].Digest != old.Digest || exp[0].AgeDays != 90 || exp[0].RulePriority != 1 || len(exp[0].Cascade) != len(old.Manifests)-1 {
		t.Fatalf("plan file expired = %+v", exp)
	}
	for _, want := range []string{"## Clean", "**Preview** — nothing was deleted", "| Digest | Tags | Pushed | Age | Rule | Goes with it |",
		"`v1`", "1: v1 older than 1 day", "4 children", "the image config's created time (1)", "org.opencontainers.image.created annotation (1)", "record no push time", "untagged manifests are found through the tagged ones"} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}

	// Enforce: the index and all that goes with it; v2 untouched.
	inputs["mode"] = "enforce"
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("enforce: exit %d\n%s", res.Code, res.Log())
	}
	deleted := strings.Split(res.Outputs["deleted"], "\n")
	if len(deleted) != len(old.Manifests) || deleted[0] != repo.Name()+"@"+old.Digest {
		t.Fatalf("deleted output %q, want the index first and %d manifests", res.Outputs["deleted"], len(old.Manifests))
	}
	for _, d := range old.Digests() {
		if manifestExists(t, repo, d) {
			t.Errorf("%s still in the registry", d)
		}
	}
	for _, d := range recent.Digests() {
		if !manifestExists(t, repo, d) {
			t.Errorf("kept image %s was deleted", d)
		}
	}
	left, err := remote.List(repo)
	if err != nil || !slices.Equal(left, []string{"v2"}) {
		t.Errorf("tags left %v (%v), want v2", left, err)
	}
	if res.Outputs["kept-count"] != fmt.Sprint(len(recent.Manifests)) || res.Outputs["failed"] != "" {
		t.Errorf("enforce outputs: %v", res.Outputs)
	}

	// Re-running converges.
	res = harness.Run(t, harness.Step{Dir: ws, Inputs: inputs})
	if res.Code != 0 || res.Outputs["deleted-count"] != "0" {
		t.Fatalf("re-run: exit %d, outputs %v\n%s", res.Code, res.Outputs, res.Log())
	}
}

func TestCleanRegistryWithoutDeletesSaysSo(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	repo, _ := name.NewRepository(reg.Host+"/app", name.Insecure)
	old, _ := issueRepository(t, repo)
	res := harness.Run(t, harness.Step{Inputs: map[string]string{"stage": "clean", "images": repo.Name(), "policy": expireV1Policy, "mode": "enforce"}})
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.Code, res.Log())
	}
	msg := oneLineError(t, res)
	for _, want := range []string{"deleted 0 of 8 manifests", "the registry does not allow deletes", "405 Method Not Allowed", "REGISTRY_STORAGE_DELETE_ENABLED=true", "7 not attempted"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if !manifestExists(t, repo, old.Digest) || reg.Counter.Requests("DELETE manifests") != 1 {
		t.Errorf("DELETE sent %d times", reg.Counter.Requests("DELETE manifests"))
	}
}

func TestCleanChainNeverDeletesTheDigestItPushed(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})
	repo, _ := name.NewRepository(reg.Host+"/app", name.Insecure)
	earlier, err := cleanfixture.Push(context.Background(), repo, cleanfixture.Image{Tags: []string{"build-1"}, Created: cleanLongAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The image pushed now was built long ago (a reproducible build): by
	// its creation time the policy expires it, but this run pushed it.
	idx, err := synth.NewIndex(synth.Index{Images: []synth.Image{
		{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Created: cleanLongAgo, Layers: []synth.Layer{{RandomBytes: 1024, Seed: 11}}},
		{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Created: cleanLongAgo, Layers: []synth.Layer{{RandomBytes: 1024, Seed: 12}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pushed, _ := idx.Digest()
	ws := t.TempDir()
	writeLayout(t, filepath.Join(ws, "image"), idx)
	res := harness.Run(t, harness.Step{Dir: ws, Inputs: map[string]string{
		"stage": "push,clean", "source": "image", "images": repo.Name(), "tags": "build-2",
		"tagged-older-than": "30d", "tag-patterns": "build-*", "mode": "enforce",
	}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	if !manifestExists(t, repo, pushed.String()) {
		t.Fatal("the chain deleted the digest it pushed")
	}
	for _, d := range earlier.Digests() {
		if manifestExists(t, repo, d) {
			t.Errorf("the older build %s was kept", d)
		}
	}
	if res.Outputs["deleted-count"] != "3" || res.Outputs["digest"] != pushed.String() {
		t.Errorf("outputs %v", res.Outputs)
	}
	if !strings.Contains(res.Summary, "protected; rule") || !strings.Contains(res.Summary, "paste it into ECR") {
		t.Errorf("summary does not say why the pushed image was kept, or lacks the compiled policy:\n%s", res.Summary)
	}
}

// ecrEnv points the binary's AWS SDK at the fake ECR API.
func ecrEnv(fake *fakeecr.Server) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_ECR":  fake.URL(),
		"AWS_REGION":            "us-east-1",
		"AWS_ACCESS_KEY_ID":     "AKIAEXAMPLEEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret-access-key-example",
	}
}

func seedFakeECR(t *testing.T, fake *fakeecr.Server, repo string, pushed time.Time, built ...*cleanfixture.Built) {
	t.Helper()
	for _, b := range built {
		for _, m := range b.Manifests {
			fake.AddImages(repo, fakeecr.Image{Digest: m.Digest, Tags: m.Tags, PushedAt: pushed, SizeBytes: m.Size,
				Manifest: m.Body, MediaType: m.MediaType, SubjectDigest: m.Subject, Blobs: m.Blobs})
		}
	}
}

func TestCleanECRPreviewComparesWithAWSAndEnforceReportsPartialFailures(t *testing.T) {
	fake := fakeecr.Start(t)
	fake.AddRepository(fakeecr.Repository{Name: "team/app"})
	old, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	latest, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{"latest"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var builds []*cleanfixture.Built
	for i := range 1200 {
		b, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{fmt.Sprintf("b%d", i)}, Seed: uint64(100 + i)})
		if err != nil {
			t.Fatal(err)
		}
		builds = append(builds, b)
	}
	seedFakeECR(t, fake, "team/app", cleanLongAgo, old, latest)
	for i, b := range builds {
		// b0 is the newest: keep-tagged 1000 keeps b0 … b999.
		seedFakeECR(t, fake, "team/app", cleanNow.Add(-time.Duration(i)*time.Minute), b)
	}
	// The shorthand compiles to: 1 protect latest, 2 untagged older than 7
	// days, 3 keep 1000 tagged. AWS's own preview judges manifests alone:
	// its untagged rule also expires the platform manifests of latest,
	// which latest still needs (and of v1, which goes with its index).
	aws := []fakeecr.PreviewResult{{Digest: old.Digest, Tags: []string{"v1"}, PushedAt: cleanLongAgo, RulePriority: 3},
		{Digest: old.Manifests[3].Digest, Tags: old.Manifests[3].Tags, PushedAt: cleanLongAgo, RulePriority: 3}}
	for _, m := range append(old.Manifests[1:3], latest.Manifests[1:3]...) {
		aws = append(aws, fakeecr.PreviewResult{Digest: m.Digest, PushedAt: cleanLongAgo, RulePriority: 2})
	}
	for _, b := range builds[1000:] {
		aws = append(aws, fakeecr.PreviewResult{Digest: b.Digest, Tags: b.Manifests[0].Tags, RulePriority: 3})
	}
	fake.ScriptPreview("team/app", fakeecr.Preview{Statuses: []string{"IN_PROGRESS", "EXPIRED", "COMPLETE"}, Results: aws})
	ws := t.TempDir()
	inputs := map[string]string{"stage": "clean", "images": ecrHost + "/team/app", "keep-tagged": "1000", "untagged-older-than": "7d", "max-deletions": "500"}
	res := harness.Run(t, harness.Step{Dir: ws, Env: ecrEnv(fake), Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("preview: exit %d\n%s", res.Code, res.Log())
	}
	planned := 200 + len(old.Manifests)
	if res.Outputs["deleted-count"] != fmt.Sprint(planned) || fake.Calls(fakeecr.OpBatchDeleteImage) != 0 {
		t.Fatalf("preview outputs %v, BatchDeleteImage %d", res.Outputs, fake.Calls(fakeecr.OpBatchDeleteImage))
	}
	// Economy: 1,207 images cost 2 DescribeImages pages and 13 BatchGetImage
	// calls (distinct requests: the SDK may retry one on a loaded machine).
	if d, g := distinct(fake.Requests(fakeecr.OpDescribeImages)), distinct(fake.Requests(fakeecr.OpBatchGetImage)); d != 2 || g != 13 {
		t.Errorf("DescribeImages %d, BatchGetImage %d; want 2 and 13", d, g)
	}
	if starts := fake.PreviewStarts("team/app"); len(starts) != 2 || strings.TrimSpace(starts[0]) != strings.TrimSpace(res.Outputs["policy"]) {
		t.Errorf("AWS preview started %d times (want 2: once more after EXPIRED) with %q", len(starts), starts)
	}
	for _, want := range []string{"AWS's own preview of this policy agrees on 204 images and differs on 2", "listed by an index that stays", latest.Digest[:19],
		"ECR push time", "paste it into ECR", `"countNumber": 1000`} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}

	// Enforce, with ECR refusing one image: what was and was not deleted.
	fake.MarkReferenced("team/app", builds[1100].Digest)
	inputs["mode"] = "enforce"
	res = harness.Run(t, harness.Step{Dir: ws, Env: ecrEnv(fake), Inputs: inputs})
	if res.Code != 1 {
		t.Fatalf("enforce: exit %d\n%s", res.Code, res.Log())
	}
	msg := oneLineError(t, res)
	want := fmt.Sprintf("clean: %s/team/app: deleted %d of %d manifests, 1 refused (first: %s: ImageReferencedByManifestList: Requested image referenced by manifest list: [marked]); re-run to retry what was not deleted",
		ecrHost, planned-1, planned, builds[1100].Digest)
	if msg != want {
		t.Errorf("error\n got %s\nwant %s", msg, want)
	}
	if res.Outputs["failed"] != ecrHost+"/team/app@"+builds[1100].Digest {
		t.Errorf("failed output %q", res.Outputs["failed"])
	}
	// ⌈204/100⌉ calls, plus the client's retry of the refused image.
	if n := distinct(fake.Requests(fakeecr.OpBatchDeleteImage)); n != 4 {
		t.Errorf("BatchDeleteImage calls = %d, want 3 and one retry", n)
	}
	if left := len(fake.Images("team/app")); left != 1000+1+len(latest.Manifests) {
		t.Errorf("%d images left, want 1000 kept builds, the refused one and latest", left)
	}
}

// distinct counts different request bodies: retries of one request count once.
func distinct(bodies [][]byte) int {
	seen := map[string]bool{}
	for _, b := range bodies {
		seen[string(b)] = true
	}
	return len(seen)
}

func TestCleanECRApplyPutsThePolicyFromTheRepository(t *testing.T) {
	fake := fakeecr.Start(t)
	fake.AddRepository(fakeecr.Repository{Name: "team/app"})
	fake.SetLifecyclePolicy("team/app", untaggedPolicy)
	ws := t.TempDir()
	policy := `{"rules": [
  {"rulePriority": 1, "description": "untagged older than 7 days", "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "keep 30 releases", "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 30}, "action": {"type": "expire"}}
]}`
	writeFile(t, filepath.Join(ws, ".github", "ecr-lifecycle.json"), policy)
	inputs := map[string]string{"stage": "clean", "images": ecrHost + "/team/app", "policy": ".github/ecr-lifecycle.json", "mode": "apply"}
	res := harness.Run(t, harness.Step{Dir: ws, Env: ecrEnv(fake), Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("apply: exit %d\n%s", res.Code, res.Log())
	}
	// ECR holds the policy as written in the repository's file, which is
	// the text AWS measures.
	text, _ := fake.LifecyclePolicy("team/app")
	if text != policy {
		t.Errorf("ECR holds\n%s\nwant the file's text\n%s", text, policy)
	}
	for _, want := range []string{"**Apply**", "put on 1 of 1 ECR repositories", "```diff", "-   selection.countNumber: 1", "+   selection.countNumber: 7", "+ rule 2:"} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	if n := fake.Count(fakeecr.OpDescribeImages) + fake.Count(fakeecr.OpBatchDeleteImage); n != 0 {
		t.Errorf("apply listed or deleted images (%d calls)", n)
	}
	res = harness.Run(t, harness.Step{Dir: ws, Env: ecrEnv(fake), Inputs: inputs})
	if res.Code != 0 || fake.Count(fakeecr.OpPutLifecyclePolicy) != 1 || !strings.Contains(res.Summary, "already in place") {
		t.Errorf("re-apply: exit %d, %d puts\n%s", res.Code, fake.Count(fakeecr.OpPutLifecyclePolicy), res.Summary)
	}

	// A missing permission is named.
	fake.FailNext(fakeecr.OpPutLifecyclePolicy, -1, fakeecr.AccessDenied(fakeecr.OpPutLifecyclePolicy))
	writeFile(t, filepath.Join(ws, ".github", "ecr-lifecycle.json"), strings.Replace(policy, `"countNumber": 30`, `"countNumber": 40`, 1))
	res = harness.Run(t, harness.Step{Dir: ws, Env: ecrEnv(fake), Inputs: inputs})
	if res.Code != 1 || !strings.Contains(oneLineError(t, res), "grant ecr:PutLifecyclePolicy to arn:aws:sts::123456789012:assumed-role/ci/run") {
		t.Errorf("denied: exit %d\n%s", res.Code, res.Log())
	}
	if leaks(res, "secret-access-key-example") {
		t.Error("the AWS secret reached the log")
	}
}

func TestCleanECRErrors(t *testing.T) {
	fake := fakeecr.Start(t)
	fake.AddRepository(fakeecr.Repository{Name: "team/app"})
	fake.ScriptPreview("team/app", fakeecr.Preview{Statuses: []string{"FAILED"}})
	ws := t.TempDir()
	run := func(inputs map[string]string) harness.Result {
		return harness.Run(t, harness.Step{Dir: ws, Env: ecrEnv(fake), Inputs: inputs})
	}
	res := run(map[string]string{"stage": "clean", "images": ecrHost + "/nope", "untagged-older-than": "7d"})
	if res.Code != 2 || oneLineError(t, res) != `clean: ECR repository "nope" does not exist in registry 123456789012 (us-east-1): check the repository name and the region` {
		t.Errorf("unknown repository: exit %d\n%s", res.Code, res.Log())
	}
	// AWS's preview failing is a warning: our plan still stands.
	res = run(map[string]string{"stage": "clean", "images": ecrHost + "/team/app", "untagged-older-than": "7d"})
	if res.Code != 0 || !strings.Contains(res.Summary, "AWS's preview: AWS's lifecycle policy preview is unavailable") || !strings.Contains(res.Stdout, "::warning::") {
		t.Errorf("failed AWS preview: exit %d\n%s", res.Code, res.Log())
	}
	fake.FailNext(fakeecr.OpDescribeImages, -1, fakeecr.AccessDenied(fakeecr.OpDescribeImages))
	res = run(map[string]string{"stage": "clean", "images": ecrHost + "/team/app", "untagged-older-than": "7d"})
	if res.Code != 1 || !strings.Contains(oneLineError(t, res), "ECR denied ecr:DescribeImages for repository \"team/app\": grant ecr:DescribeImages") {
		t.Errorf("denied: exit %d\n%s", res.Code, res.Log())
	}
}

// ghcrSetup serves ghcr.io's registry side from a test registry (through the
// proxy, with the workflow token) and the Packages API from the fake.
type ghcrSetup struct {
	reg   *harness.Registry
	gh    *fakegithub.Server
	repo  name.Repository // where the test writes, as reg.Host/acme/app
	env   map[string]string
	write []remote.Option
}

const ghcrToken = "ghs_workflowtoken123"

func startGHCR(t *testing.T) *ghcrSetup {
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Hostnames: []string{ghcrHost}, Users: map[string]string{"octocat": ghcrToken}})
	proxy := harness.StartProxy(t)
	proxy.Route(ghcrHost, reg.Host)
	gh := fakegithub.Start(t)
	gh.SetToken(ghcrToken)
	gh.AddOwner("acme", fakegithub.Organization)
	gh.AddPackage("acme", "app", false)
	repo, _ := name.NewRepository(reg.Host + "/acme/app")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = reg.Pool()
	return &ghcrSetup{reg: reg, gh: gh, repo: repo,
		env:   map[string]string{"SSL_CERT_FILE": reg.CAFile, "HTTPS_PROXY": proxy.URL, "GITHUB_API_URL": gh.URL()},
		write: []remote.Option{remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: "octocat", Password: ghcrToken})}}
}

func (g *ghcrSetup) seed(t *testing.T, created time.Time, spec cleanfixture.Image) *cleanfixture.Built {
	t.Helper()
	b, err := cleanfixture.Push(context.Background(), g.repo, spec, g.write...)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Manifests {
		g.gh.AddVersions("acme", "app", fakegithub.Version{Digest: m.Digest, Tags: m.Tags, CreatedAt: created})
	}
	return b
}

func TestCleanGHCRThroughThePackagesAPI(t *testing.T) {
	g := startGHCR(t)
	old := g.seed(t, cleanLongAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: cleanLongAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true, Signature: true, Referrer: true, Seed: 1})
	var prs []*cleanfixture.Built
	versions := len(old.Manifests)
	for i := range 30 {
		b := g.seed(t, cleanNow.AddDate(0, 0, -30+i), cleanfixture.Image{Tags: []string{fmt.Sprintf("pr-%d", i)}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: uint64(100 + i)})
		prs = append(prs, b)
		versions += len(b.Manifests)
	}
	latest := g.seed(t, cleanNow, cleanfixture.Image{Tags: []string{"latest"}, Seed: 99})
	versions += len(latest.Manifests)
	ws := t.TempDir()
	inputs := map[string]string{"stage": "clean", "images": "ghcr.io/Acme/app", "github-token": ghcrToken,
		"keep-tagged": "10", "tag-patterns": "pr-*", "untagged-older-than": "1d", "mode": "enforce"}

	// Preview first: the plan, and not one deletion.
	inputs["mode"] = "preview"
	res := harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: inputs})
	if res.Code != 0 || res.Outputs["deleted-count"] != "80" || g.gh.Count(fakegithub.DeleteOrgVersion) != 0 || len(g.gh.Versions("acme", "app")) != versions {
		t.Fatalf("preview: exit %d, outputs %v, %d delete calls\n%s", res.Code, res.Outputs, g.gh.Count(fakegithub.DeleteOrgVersion), res.Log())
	}

	inputs["mode"] = "enforce"
	listsBefore := g.gh.Count(fakegithub.ListOrgVersions)
	g.reg.Counter.Reset()
	// A secondary rate limit on the first deletion is waited out.
	g.gh.FailNext(fakegithub.DeleteOrgVersion, 1, fakegithub.TooManyRequests(1))
	res = harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	// 20 old PR images × 4 manifests; v1 is untouched by the pr-* rule and
	// its untagged parts are not judged alone; latest is protected.
	if res.Outputs["deleted-count"] != "80" {
		t.Fatalf("deleted %s, want 80\n%s", res.Outputs["deleted-count"], res.Summary)
	}
	for _, b := range prs[:20] {
		for _, d := range b.Digests() {
			if slices.ContainsFunc(g.gh.Versions("acme", "app"), func(v fakegithub.Version) bool { return v.Digest == d }) {
				t.Fatalf("%s of an expired PR image is still a version", d)
			}
		}
	}
	if left := len(g.gh.Versions("acme", "app")); left != versions-80 {
		t.Errorf("%d versions left, want %d", left, versions-80)
	}
	// Economy: ⌈versions/100⌉ list calls for the plan and as many for the
	// re-check just before deleting; each manifest read once.
	if n := g.gh.Count(fakegithub.ListOrgVersions) - listsBefore; n != 2*((versions+99)/100) {
		t.Errorf("list calls = %d for %d versions, want twice %d", n, versions, (versions+99)/100)
	}
	if n := g.reg.Counter.Requests("GET manifests"); n != versions {
		t.Errorf("manifest reads = %d, want one per version (%d)", n, versions)
	}
	if n := g.reg.Counter.Requests("DELETE manifests"); n != 0 {
		t.Errorf("%d registry DELETEs: ghcr.io refuses them, deletion goes through the API", n)
	}
	if n := g.gh.Count(fakegithub.DeleteOrgVersion); n != 81 {
		t.Errorf("delete calls = %d, want 80 and one after the 429", n)
	}
	if !strings.Contains(res.Summary, "GitHub package version created_at") || leaks(res, ghcrToken) {
		t.Errorf("summary lacks the clock, or the token leaked:\n%s", res.Summary)
	}
}

func TestCleanGHCRErrors(t *testing.T) {
	g := startGHCR(t)
	g.seed(t, cleanLongAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: cleanLongAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	g.seed(t, cleanNow, cleanfixture.Image{Tags: []string{"v2"}, Seed: 2})
	ws := t.TempDir()
	base := map[string]string{"stage": "clean", "images": "ghcr.io/acme/app", "github-token": ghcrToken, "policy": expireV1Policy, "mode": "enforce"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}

	res := harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: with("images", "ghcr.io/acme/nope")})
	if res.Code != 2 || !strings.Contains(oneLineError(t, res), `GitHub container package "acme/nope" not found`) {
		t.Errorf("unknown package: exit %d\n%s", res.Code, res.Log())
	}

	res = harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: with("mode", "apply")})
	if res.Code != 2 || oneLineError(t, res) != "clean: mode apply puts a lifecycle policy on ECR repositories, but ghcr.io/acme/app is on ghcr.io, which stores no policies: use mode: enforce on a schedule to apply the policy there" {
		t.Errorf("apply on GHCR: exit %d\n%s", res.Code, res.Log())
	}

	// Without the Admin role GitHub answers 404 "Package not found.":
	// the first one stops the run.
	g.gh.WithoutAdmin("acme", "app")
	res = harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: base})
	msg := oneLineError(t, res)
	if res.Code != 1 || !strings.Contains(msg, "deleted 0 of 3 manifests, 1 refused") || !strings.Contains(msg, `grant the workflow Admin on the package`) || !strings.Contains(msg, "2 not attempted") {
		t.Errorf("404 on delete: exit %d, %s", res.Code, msg)
	}
	if n := g.gh.Count(fakegithub.DeleteOrgVersion); n != 1 {
		t.Errorf("%d DELETEs sent without the Admin role, want 1", n)
	}
	if len(g.gh.Versions("acme", "app")) != 4 || leaks(res, ghcrToken) {
		t.Error("something was deleted, or the token leaked")
	}
}

func TestCleanBadInputsFailWithOneLine(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})
	repo, _ := name.NewRepository(reg.Host+"/app", name.Insecure)
	issueRepository(t, repo)
	ws := t.TempDir()
	writeFile(t, filepath.Join(ws, "broken.json"), "{\"rules\": [\n  {\"rulePriority\": 1,}\n]}")
	writeFile(t, filepath.Join(ws, "bad-rule.json"), `{"rules":[{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	writeFile(t, filepath.Join(ws, "pulled.json"), `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}`)
	img := repo.Name()
	cases := []struct {
		name   string
		inputs map[string]string
		code   int
		want   string
	}{
		{"invalid JSON", map[string]string{"policy": "broken.json"}, 2,
			`clean: policy (file broken.json): invalid JSON at line 2, column 22: unexpected '}', expected a field name in double quotes`},
		{"invalid policy", map[string]string{"policy": "bad-rule.json"}, 2,
			`clean: policy (file bad-rule.json): invalid lifecycle policy: rule 2: tagPatternList "a*b*c*d*e*f" has more than 4 wildcards`},
		{"rule the registry cannot honour", map[string]string{"policy": "pulled.json"}, 2,
			"clean: the policy cannot be used on " + img + `: invalid lifecycle policy: rule 1: action type "transition" is not supported on plain OCI registries, which have no archive storage; use "expire", or apply this rule to an ECR repository; rule 1: countType "sinceImagePulled" is not supported on plain OCI registries, which record no pull times; use "sinceImagePushed"`},
		{"policy and shorthand", map[string]string{"policy": "bad-rule.json", "keep-tagged": "5", "protect-tags": "latest,stable"}, 2,
			"clean: policy and keep-tagged, protect-tags are both set: use policy alone (write those rules into it), or remove policy to use the shorthand inputs"},
		{"neither", map[string]string{"protect-tags": "latest"}, 2,
			"clean: no policy: set policy (an ECR lifecycle policy file or inline JSON), or at least one of keep-tagged, untagged-older-than and tagged-older-than"},
		{"missing policy file", map[string]string{"policy": "nope.json"}, 2,
			`clean: policy file "nope.json" cannot be read (no such file): give a path relative to the working directory, or the policy JSON itself`},
		{"bad age", map[string]string{"untagged-older-than": "a week"}, 2,
			`input "untagged-older-than": age "a week" is not a number of days: write it like 7d`},
		{"unknown mode", map[string]string{"untagged-older-than": "7d", "mode": "prune"}, 2,
			`clean: mode "prune" is not one of list, preview, apply or enforce`},
		{"apply on a plain registry", map[string]string{"untagged-older-than": "7d", "mode": "apply"}, 2,
			"clean: mode apply puts a lifecycle policy on ECR repositories, but " + img + " is on a plain OCI registry, which stores no policies: use mode: enforce on a schedule to apply the policy there"},
		{"unknown repository", map[string]string{"untagged-older-than": "7d", "images": reg.Host + "/nope"}, 2,
			"clean: list tags of " + reg.Host + "/nope: repository not found: check the repository name in images"},
		{"a tag instead of a repository", map[string]string{"untagged-older-than": "7d", "images": img + ":v1"}, 2,
			`clean: images entry "` + img + `:v1" has a tag: give the repository alone (clean judges every image in it)`},
		{"no images", map[string]string{"untagged-older-than": "7d", "images": ""}, 2,
			`clean: input "images" is required: name the images to clean, or run push earlier in the same chain`},
		{"more than max-deletions", map[string]string{"policy": expireV1Policy, "mode": "enforce", "max-deletions": "3"}, 3,
			"clean: the plan deletes 8 manifests, more than max-deletions 3, so nothing was deleted: review the plan (registry-reports/clean-plan.json) and raise max-deletions to at least 8 to proceed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := map[string]string{"stage": "clean", "images": img}
			for k, v := range tc.inputs {
				in[k] = v
			}
			reg.Counter.Reset()
			res := harness.Run(t, harness.Step{Dir: ws, Inputs: in})
			if res.Code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", res.Code, tc.code, res.Log())
			}
			if msg := oneLineError(t, res); msg != tc.want {
				t.Errorf("error\n got %s\nwant %s", msg, tc.want)
			}
			if reg.Counter.Requests("DELETE manifests") != 0 {
				t.Error("something was deleted")
			}
			if strings.Contains(res.Log(), "goroutine ") || strings.Contains(res.Log(), "panic") {
				t.Fatalf("stack trace in the log:\n%s", res.Log())
			}
		})
	}
}

func TestCleanFromTheCommandLine(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})
	repo, _ := name.NewRepository(reg.Host+"/cli/app", name.Insecure)
	old, _ := issueRepository(t, repo)
	res := harness.Run(t, harness.Step{Args: []string{"clean", "--images", repo.Name(), "--policy", expireV1Policy}})
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	for _, want := range []string{"Preview — nothing was deleted", "DIGEST", old.Digest[:19], "v1", "child " + old.Manifests[1].Digest[:19]} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("CLI text lacks %q:\n%s", want, res.Stdout)
		}
	}
	res = harness.Run(t, harness.Step{Args: []string{"clean", "--images", repo.Name(), "--policy", expireV1Policy, "--json"}})
	var doc struct {
		OK     bool `json:"ok"`
		Stages []struct {
			Result struct {
				Totals struct {
					Planned int `json:"planned"`
				} `json:"totals"`
			} `json:"result"`
		} `json:"stages"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil || !doc.OK || doc.Stages[0].Result.Totals.Planned != len(old.Manifests) {
		t.Fatalf("JSON %v: %s", err, res.Stdout)
	}
}

// inventoryDoc is the inventory file's shape, as far as the tests read it.
type inventoryDoc struct {
	Version      int `json:"version"`
	Repositories []struct {
		Repository string `json:"repository"`
		Kind       string `json:"kind"`
		Manifests  int    `json:"manifests"`
		Images     []struct {
			Digest    string   `json:"digest"`
			Tags      []string `json:"tags"`
			Kind      string   `json:"kind"`
			PushedAt  string   `json:"pushedAt"`
			TimeFrom  string   `json:"timeFrom"`
			Size      int64    `json:"size"`
			Platforms []string `json:"platforms"`
			Attached  []struct {
				Kind string `json:"kind"`
			} `json:"attached"`
			Decision string `json:"decision"`
			Rule     int    `json:"rule"`
		} `json:"images"`
	} `json:"repositories"`
}

func readInventory(t *testing.T, ws string, res harness.Result) inventoryDoc {
	t.Helper()
	path := res.Outputs["inventory"]
	if path == "" {
		t.Fatalf("no inventory output: %v\n%s", res.Outputs, res.Log())
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(ws, path)
	}
	var doc inventoryDoc
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &doc) != nil || doc.Version != 1 || len(doc.Repositories) != 1 {
		t.Fatalf("inventory file %s: %v\n%s", path, err, data)
	}
	return doc
}

func TestCleanInventoryOnEveryRegistryKind(t *testing.T) {
	t.Run("OCI from the command line", func(t *testing.T) {
		reg := harness.StartRegistry(t, harness.RegistryOptions{Deletes: true})
		repo, _ := name.NewRepository(reg.Host+"/team/app", name.Insecure)
		old, recent := issueRepository(t, repo)
		ws := t.TempDir()
		res := harness.Run(t, harness.Step{Dir: ws, Args: []string{"clean", "--mode", "list", "--images", repo.Name()}})
		if res.Code != 0 || reg.Counter.Requests("DELETE manifests") != 0 {
			t.Fatalf("exit %d\n%s", res.Code, res.Log())
		}
		for _, want := range []string{"List — nothing was deleted", "PUSHED", "ATTACHED", old.Digest[:19], recent.Digest[:19], "linux/amd64, linux/arm64", "(created)"} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("CLI text lacks %q:\n%s", want, res.Stdout)
			}
		}
		data, err := os.ReadFile(filepath.Join(ws, "registry-reports", "clean-inventory.json"))
		var doc inventoryDoc
		if err != nil || json.Unmarshal(data, &doc) != nil {
			t.Fatalf("inventory file: %v", err)
		}
		imgs := doc.Repositories[0].Images
		if len(imgs) != 2 || imgs[0].Digest != recent.Digest || imgs[1].Digest != old.Digest || imgs[1].TimeFrom != "the image config's created time" || len(imgs[1].Attached) != 3 {
			t.Errorf("images = %+v", imgs)
		}
	})

	t.Run("GHCR in a preview", func(t *testing.T) {
		g := startGHCR(t)
		old := g.seed(t, cleanLongAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: cleanLongAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
		recent := g.seed(t, cleanNow, cleanfixture.Image{Tags: []string{"v2"}, Seed: 2})
		ws := t.TempDir()
		res := harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: map[string]string{"stage": "clean", "images": "ghcr.io/acme/app", "github-token": ghcrToken, "policy": expireV1Policy}})
		if res.Code != 0 {
			t.Fatalf("exit %d\n%s", res.Code, res.Log())
		}
		doc := readInventory(t, ws, res)
		imgs := doc.Repositories[0].Images
		if doc.Repositories[0].Kind != "ghcr" || len(imgs) != 2 || imgs[0].Digest != recent.Digest || imgs[1].Digest != old.Digest ||
			imgs[1].Decision != "expire" || imgs[1].Rule != 1 || imgs[0].Decision != "keep" || imgs[1].TimeFrom != "GitHub package version created_at" {
			t.Errorf("images = %+v", imgs)
		}
		for _, want := range []string{"<summary>Inventory: 2 images", "**expire** rule 1: v1 older than 1 day", "1 signature"} {
			if !strings.Contains(res.Summary, want) {
				t.Errorf("summary lacks %q:\n%s", want, res.Summary)
			}
		}
	})

	t.Run("ECR in enforce", func(t *testing.T) {
		fake := fakeecr.Start(t)
		fake.AddRepository(fakeecr.Repository{Name: "team/app"})
		old, _ := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
		seedFakeECR(t, fake, "team/app", cleanLongAgo, old)
		ws := t.TempDir()
		res := harness.Run(t, harness.Step{Dir: ws, Env: ecrEnv(fake), Inputs: map[string]string{"stage": "clean", "images": ecrHost + "/team/app", "mode": "enforce", "policy": expireV1Policy}})
		if res.Code != 0 || len(fake.Images("team/app")) != 0 {
			t.Fatalf("exit %d, %d images left\n%s", res.Code, len(fake.Images("team/app")), res.Log())
		}
		imgs := readInventory(t, ws, res).Repositories[0].Images
		if len(imgs) != 1 || imgs[0].Decision != "expire" || imgs[0].TimeFrom != "ECR push time (imagePushedAt)" || len(imgs[0].Platforms) != 2 {
			t.Errorf("images = %+v", imgs)
		}
	})
}

func TestCleanGHCRPushDuringTheRunAndAStoppedRunFinishedNext(t *testing.T) {
	g := startGHCR(t)
	old := g.seed(t, cleanLongAgo, cleanfixture.Image{Tags: []string{"v1"}, Created: cleanLongAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
	g.seed(t, cleanNow, cleanfixture.Image{Tags: []string{"v2"}, Seed: 2})
	older := g.seed(t, cleanLongAgo.AddDate(0, 0, -1), cleanfixture.Image{Tags: []string{"v0"}, Created: cleanLongAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 3})
	ws := t.TempDir()
	inputs := map[string]string{"stage": "clean", "images": "ghcr.io/acme/app", "github-token": ghcrToken, "mode": "enforce",
		"policy": `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["v0"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["v1"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`}
	// Between the plan and the deletions, an index is pushed that lists
	// v1's amd64 image (the same digest: the same package version).
	amd64 := ""
	for _, m := range old.Manifests {
		if m.Role == cleanfixture.RolePlatform {
			amd64 = m.Digest
			break
		}
	}
	var reused string
	g.gh.Before(fakegithub.GetOrgPackage, 3, func() {
		img, err := remote.Image(g.repo.Digest(amd64), g.write...)
		if err != nil {
			t.Error(err)
			return
		}
		idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
		if err := remote.WriteIndex(g.repo.Tag("v3"), idx, g.write...); err != nil {
			t.Error(err)
			return
		}
		d, _ := idx.Digest()
		reused = d.String()
		g.gh.AddVersions("acme", "app", fakegithub.Version{Digest: reused, Tags: []string{"v3"}, CreatedAt: time.Now()})
	})
	// And the run stops after the first image: GitHub's secondary limit
	// asks to wait ten minutes, longer than the step waits.
	g.gh.Before(fakegithub.DeleteOrgVersion, 2, func() { g.gh.FailNext(fakegithub.DeleteOrgVersion, 1, fakegithub.TooManyRequests(600)) })
	res := harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: inputs})
	if res.Code != 1 || !strings.Contains(oneLineError(t, res), "rate limit") {
		t.Fatalf("exit %d\n%s", res.Code, res.Log())
	}
	versions := func() map[string]bool {
		out := map[string]bool{}
		for _, v := range g.gh.Versions("acme", "app") {
			out[v.Digest] = true
		}
		return out
	}
	left := versions()
	if left[older.Digest] || !left[amd64] || !left[reused] {
		t.Fatalf("after the first run: the oldest index must be gone, v3 and its platform there: %v", left)
	}
	if !strings.Contains(res.Summary, "the new index "+reused[:19]+" (v3) references it now") {
		t.Errorf("the summary does not say why the shared platform stayed:\n%s", res.Summary)
	}
	// The next run finishes what the stopped one left of v0, and deletes v1
	// except the platform image v3 lists.
	res = harness.Run(t, harness.Step{Dir: ws, Env: g.env, Inputs: inputs})
	if res.Code != 0 {
		t.Fatalf("second run: exit %d\n%s", res.Code, res.Log())
	}
	left = versions()
	for _, m := range older.Manifests {
		if left[m.Digest] {
			t.Errorf("%s (%s) of the stopped run survived the next one", m.Digest, m.Role)
		}
	}
	if !left[amd64] || !left[reused] || left[old.Digest] {
		t.Errorf("after the second run: %v", left)
	}
	if !strings.Contains(res.Summary, "an interrupted run deleted what referenced it and left it behind") {
		t.Errorf("the summary does not list what it finished:\n%s", res.Summary)
	}
	if _, err := remote.Image(g.repo.Digest(amd64), g.write...); err != nil {
		t.Errorf("v3's platform image: %v", err)
	}
}
