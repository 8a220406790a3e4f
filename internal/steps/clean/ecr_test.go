package clean_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/clean"
	"github.com/registry-actions/registry/test/fakeecr"
)

// seedECR puts built images into a fake ECR repository.
func seedECR(t *testing.T, srv *fakeecr.Server, repo string, built ...*cleanfixture.Built) {
	t.Helper()
	for _, b := range built {
		for _, m := range b.Manifests {
			srv.AddImages(repo, fakeecr.Image{Digest: m.Digest, Tags: m.Tags, PushedAt: longAgo, SizeBytes: m.Size,
				Manifest: m.Body, MediaType: m.MediaType, SubjectDigest: m.Subject, Blobs: m.Blobs})
		}
	}
}

func ecrRepository(t *testing.T) (*fakeecr.Server, *cleanfixture.Built, *cleanfixture.Built) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "team/app"})
	index, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	single, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v0"}, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	seedECR(t, srv, "team/app", index, single)
	return srv, index, single
}

func TestECRPreviewComparesWithAWS(t *testing.T) {
	srv, index, single := ecrRepository(t)
	// AWS judges every manifest alone: its untagged rule expires the two
	// platform manifests the index still needs, and both expire v0.
	platforms := []string{index.Manifests[1].Digest, index.Manifests[2].Digest}
	srv.ScriptPreview("team/app", fakeecr.Preview{
		Statuses: []string{"IN_PROGRESS", "EXPIRED", "IN_PROGRESS", "COMPLETE"},
		Results: []fakeecr.PreviewResult{
			{Digest: single.Digest, Tags: []string{"v0"}, PushedAt: longAgo, RulePriority: 2},
			{Digest: platforms[0], PushedAt: longAgo, RulePriority: 1},
			{Digest: platforms[1], PushedAt: longAgo, RulePriority: 1},
		},
	})
	opts := withECR(baseOptions(t, ecrHost+"/team/app"), srv)
	opts.Policy = policyText(untagged + `,{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["v0"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}`)
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(fakeecr.OpBatchDeleteImage); n != 0 {
		t.Fatalf("preview called BatchDeleteImage %d times", n)
	}
	// AWS is sent the policy text as written, which it measures and stores.
	if starts := srv.PreviewStarts("team/app"); len(starts) != 2 || starts[0] != string(opts.Policy.Text) {
		t.Errorf("preview starts = %d, want 2 (restart after EXPIRED) with our policy text", len(starts))
	}
	aws := res.Repositories[0].AWS
	if aws == nil || aws.Error != "" {
		t.Fatalf("comparison = %+v", aws)
	}
	if aws.Agree != 1 || aws.AWSExpire != 3 || len(aws.Differences) != 2 {
		t.Fatalf("comparison = %+v, want agreement on v0 and two differences", aws)
	}
	for _, d := range aws.Differences {
		if d.Ours != "keep" || !strings.HasPrefix(d.Why, clean.WhyListedBy) || !strings.Contains(d.Why, index.Digest[:19]) {
			t.Errorf("difference %+v, want ours keep because the index needs it", d)
		}
	}
	var md report.Markdown
	res.Summary(&md)
	if !strings.Contains(md.String(), "AWS's own preview of this policy agrees on 1 images and differs on 2") {
		t.Errorf("summary:\n%s", md.String())
	}
}

func TestECRPreviewSurvivesAFailedAWSPreview(t *testing.T) {
	srv, _, _ := ecrRepository(t)
	srv.ScriptPreview("team/app", fakeecr.Preview{Statuses: []string{"FAILED"}})
	opts := withECR(baseOptions(t, ecrHost+"/team/app"), srv)
	opts.Policy = policyText(expireV1)
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	aws := res.Repositories[0].AWS
	if aws == nil || !strings.Contains(aws.Error, "FAILED") {
		t.Fatalf("comparison = %+v, want the failure said", aws)
	}
	if res.Totals.Planned != 4 {
		t.Errorf("our plan = %d manifests, want the index, its 2 platforms and its signature", res.Totals.Planned)
	}
}

func TestECRApplyShowsTheDiffAndIsIdempotent(t *testing.T) {
	srv, _, _ := ecrRepository(t)
	srv.SetLifecyclePolicy("team/app", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`)
	opts := withECR(baseOptions(t, ecrHost+"/team/app"), srv)
	opts.Mode = clean.ModeApply
	opts.Policy = clean.PolicyInput{Shorthand: &lifecycle.Shorthand{UntaggedOlderThan: 7 * 24 * 3600e9, KeepTagged: 10, ProtectTags: []string{"latest"}}}
	res, err := clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	text, ok := srv.LifecyclePolicy("team/app")
	if !ok || text != string(res.Policy) {
		t.Fatalf("ECR holds %q, want the compiled policy", text)
	}
	change := res.Repositories[0].PolicyChange
	if change == nil || !change.Applied || !strings.Contains(change.Diff, "+ rule 3:") || !strings.Contains(change.Diff, "-   selection.tagStatus: \"untagged\"") {
		t.Fatalf("change = %+v", change)
	}
	if n := srv.Calls(fakeecr.OpDescribeImages) + srv.Calls(fakeecr.OpBatchDeleteImage); n != 0 {
		t.Errorf("apply listed or deleted images (%d calls)", n)
	}
	puts := srv.Calls(fakeecr.OpPutLifecyclePolicy)
	res, err = clean.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if change := res.Repositories[0].PolicyChange; !change.Unchanged || change.Applied || srv.Calls(fakeecr.OpPutLifecyclePolicy) != puts {
		t.Errorf("re-apply changed something: %+v", change)
	}
}

func TestECREnforceReportsWhatWasAndWasNotDeleted(t *testing.T) {
	srv, index, single := ecrRepository(t)
	srv.MarkReferenced("team/app", index.Digest) // ECR refuses the index
	opts := withECR(baseOptions(t, ecrHost+"/team/app"), srv)
	opts.Mode = clean.ModeEnforce
	opts.Policy = policyText(`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}`)
	res, err := clean.Run(context.Background(), opts)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a partial failure", err)
	}
	// The index is refused; ECR refuses its platform manifests too while it
	// stays, and its signature is never sent.
	for _, want := range []string{"deleted 1 of 5 manifests", "3 refused", "ImageReferencedByManifestList", "1 not attempted (kept because " + index.Digest[:19], "re-run"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	outs := outputs(res)
	if outs["deleted"] != ecrHost+"/team/app@"+single.Digest || len(strings.Split(outs["failed"], "\n")) != 4 {
		t.Errorf("outputs = %v", outs)
	}
	if left := len(srv.Images("team/app")); left != 4 {
		t.Errorf("%d images left, want the index and everything that goes with it", left)
	}
}
