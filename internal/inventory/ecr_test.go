package inventory_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/test/fakeecr"
)

func TestECRInventoryMapsIndexesSubjectsAndSignatures(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "team/app"})
	b, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true, Signature: true, Referrer: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	seedECR(t, srv, "team/app", longAgo, b)
	store := &inventory.ECR{API: newECRClient(t, srv), Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Name: "team/app"}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if inv.Repository != "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app" || inv.Kind != lifecycle.RegistryECR {
		t.Errorf("inventory of %s (%s)", inv.Repository, inv.Kind)
	}
	arts := byDigest(inv.Artifacts)
	if len(arts) != len(b.Manifests) {
		t.Fatalf("%d artifacts, want %d", len(arts), len(b.Manifests))
	}
	index := arts[b.Digest]
	if len(index.Children) != 4 || !index.PushedAt.Equal(longAgo) || index.Size == 0 {
		t.Errorf("index = %+v", index)
	}
	if ref := arts[roleDigests(b, cleanfixture.RoleReferrer)[0]]; ref.Subject != b.Digest {
		t.Errorf("referrer subject = %q", ref.Subject)
	}
	if inv.Clocks[inventory.ClockECRPush] != 1 {
		t.Errorf("clocks = %v, want the index dated by its push", inv.Clocks)
	}

	// The engine on this inventory: an untagged rule expires nothing.
	p, _ := lifecycle.Parse([]byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`))
	plan, err := lifecycle.Evaluate(p, inv.Artifacts, lifecycle.EvalOptions{Now: now})
	if err != nil || len(plan.Delete) != 0 {
		t.Fatalf("untagged rule deletes %v (%v)", plan.Delete, err)
	}
}

func TestECRListingAndDeletingCostBatches(t *testing.T) {
	const n = 1100
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	var images []fakeecr.Image
	for i := range n {
		images = append(images, fakeecr.Image{Tags: []string{fmt.Sprintf("b%d", i)}, PushedAt: longAgo,
			Manifest: fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064x","size":2},"layers":[]}`, i)})
	}
	stored := srv.AddImages("app", images...)
	store := &inventory.ECR{API: newECRClient(t, srv), Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Name: "app"}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Artifacts) != n {
		t.Fatalf("%d artifacts, want %d", len(inv.Artifacts), n)
	}
	if got := srv.Calls(fakeecr.OpDescribeImages); got != 2 {
		t.Errorf("DescribeImages calls = %d, want ⌈1100/1000⌉ = 2", got)
	}
	if got := srv.Calls(fakeecr.OpBatchGetImage); got != 11 {
		t.Errorf("BatchGetImage calls = %d, want ⌈1100/100⌉ = 11", got)
	}
	var order []string
	for _, img := range stored[:150] {
		order = append(order, img.Digest)
	}
	del := store.Delete(context.Background(), inv, order, nil)
	if del.Err != nil || len(del.Deleted) != 150 {
		t.Fatalf("deleted %d, err %v", len(del.Deleted), del.Err)
	}
	if got := srv.Calls(fakeecr.OpBatchDeleteImage); got != 2 {
		t.Errorf("BatchDeleteImage calls = %d, want ⌈150/100⌉ = 2", got)
	}
	if left := len(srv.Images("app")); left != n-150 {
		t.Errorf("%d images left, want %d", left, n-150)
	}
}

func TestECRDeletionReportsRefusalsAndHoldsBackTheirReferrers(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	// 120 plain images first, so that the signature of the refused image
	// falls in the second batch.
	var filler []*cleanfixture.Built
	for i := range 120 {
		b, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{fmt.Sprintf("f%d", i)}, Seed: uint64(100 + i)})
		if err != nil {
			t.Fatal(err)
		}
		filler = append(filler, b)
	}
	refused, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{"refused"}, Signature: true, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	seedECR(t, srv, "app", longAgo, append(filler, refused)...)
	srv.MarkReferenced("app", refused.Digest) // ECR answers ImageReferencedByManifestList
	store := &inventory.ECR{API: newECRClient(t, srv), Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Name: "app"}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	order := []string{refused.Digest}
	for _, b := range filler {
		order = append(order, b.Digest)
	}
	sig := roleDigests(refused, cleanfixture.RoleSignature)[0]
	order = append(order, sig) // position 121: second batch
	del := store.Delete(context.Background(), inv, order, nil)
	if del.Err != nil {
		t.Fatal(del.Err)
	}
	if len(del.Deleted) != 120 {
		t.Errorf("deleted %d, want the 120 others", len(del.Deleted))
	}
	if len(del.Failed) != 1 || del.Failed[0].Digest != refused.Digest || !strings.Contains(del.Failed[0].Reason, "ImageReferencedByManifestList") {
		t.Errorf("failed = %+v", del.Failed)
	}
	if len(del.NotAttempted) != 1 || del.NotAttempted[0].Digest != sig {
		t.Errorf("not attempted = %+v, want the refused image's signature", del.NotAttempted)
	}
	if !slices.ContainsFunc(srv.Images("app"), func(img fakeecr.Image) bool { return img.Digest == sig }) {
		t.Error("the signature of an image that stays was deleted")
	}
}

func TestECRDeletionStoppedMidwaySaysWhatWasNotAttempted(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	var built []*cleanfixture.Built
	for i := range 150 {
		b, _ := cleanfixture.Build(cleanfixture.Image{Tags: []string{fmt.Sprintf("t%d", i)}, Seed: uint64(i)})
		built = append(built, b)
	}
	seedECR(t, srv, "app", longAgo, built...)
	store := &inventory.ECR{API: newECRClient(t, srv), Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Name: "app"}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, b := range built {
		order = append(order, b.Digest)
	}
	// The first batch goes through; then the role loses ecr:BatchDeleteImage.
	del := store.Delete(context.Background(), inv, order[:100], nil)
	if len(del.Deleted) != 100 {
		t.Fatalf("first batch: %+v", del)
	}
	srv.FailNext(fakeecr.OpBatchDeleteImage, -1, fakeecr.AccessDenied(fakeecr.OpBatchDeleteImage))
	del = store.Delete(context.Background(), inv, order[100:], nil)
	if del.Err == nil || !strings.Contains(del.Err.Error(), "ecr:BatchDeleteImage") {
		t.Fatalf("err = %v, want the missing permission named", del.Err)
	}
	if len(del.NotAttempted) != 50 || len(del.Deleted) != 0 {
		t.Errorf("deleted %d, not attempted %d; want 0 and 50", len(del.Deleted), len(del.NotAttempted))
	}
}

func TestECRDeletingIndexesWithSignaturesCostsOneCallPer100(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	var built []*cleanfixture.Built
	for i := range 40 {
		b, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{fmt.Sprintf("v%d", i)}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		built = append(built, b)
	}
	seedECR(t, srv, "app", longAgo, built...)
	store := &inventory.ECR{API: newECRClient(t, srv), Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Name: "app"}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := lifecycle.Parse([]byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`))
	plan, err := lifecycle.Evaluate(p, inv.Artifacts, lifecycle.EvalOptions{Now: now})
	if err != nil || len(plan.Delete) != 160 {
		t.Fatalf("plan deletes %d (%v), want 160", len(plan.Delete), err)
	}
	del := store.Delete(context.Background(), inv, plan.Delete, nil)
	if del.Err != nil || len(del.Deleted) != 160 || len(srv.Images("app")) != 0 {
		t.Fatalf("deleted %d, err %v, left %d", len(del.Deleted), del.Err, len(srv.Images("app")))
	}
	if got := srv.Calls(fakeecr.OpBatchDeleteImage); got != 2 {
		t.Errorf("BatchDeleteImage calls = %d, want ⌈160/100⌉ = 2", got)
	}
	// No signature went in the same call as its image.
	sent := map[string]int{}
	for call, body := range srv.Requests(fakeecr.OpBatchDeleteImage) {
		for _, b := range built {
			for _, m := range b.Manifests {
				if strings.Contains(string(body), m.Digest) {
					sent[m.Digest] = call
				}
			}
		}
	}
	for _, b := range built {
		sig := roleDigests(b, cleanfixture.RoleSignature)[0]
		if sent[sig] <= sent[b.Digest] {
			t.Fatalf("signature %s sent in call %d, its image in call %d", sig, sent[sig], sent[b.Digest])
		}
	}
}
