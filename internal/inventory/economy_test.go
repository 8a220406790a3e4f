package inventory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/fakegithub"
)

// economy checks a request count against its formula and logs a row that
// test/bench/clean.sh turns into the benchmark table.
func economy(t *testing.T, registry, what, formula string, measured, want int) {
	t.Helper()
	t.Logf("ECONOMY | %s | %s | %s | %d | %d |", registry, what, formula, want, measured)
	if measured != want {
		t.Errorf("%s %s: %d requests, want %s = %d", registry, what, measured, formula, want)
	}
}

func ceilDiv(n, d int) int { return (n + d - 1) / d }

var expireAll = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`

// TestAPIEconomy measures, per registry kind, the requests a listing and a
// deletion cost: ECR pages of 1,000 images, BatchGetImage and
// BatchDeleteImage batches of 100; GitHub pages of 100 versions and one
// registry read per manifest; on plain registries one HEAD per tag and one
// GET per manifest.
func TestAPIEconomy(t *testing.T) {
	p, err := lifecycle.Parse([]byte(expireAll))
	if err != nil {
		t.Fatal(err)
	}
	plan := func(inv *inventory.Inventory) *lifecycle.Plan {
		t.Helper()
		pl, err := lifecycle.Evaluate(p, inv.Artifacts, lifecycle.EvalOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}

	t.Run("ECR", func(t *testing.T) {
		srv := fakeecr.Start(t)
		srv.AddRepository(fakeecr.Repository{Name: "app"})
		const indexes, singles = 100, 1200
		var built []*cleanfixture.Built
		for i := range indexes {
			b, err := cleanfixture.Build(cleanfixture.Image{Tags: []string{fmt.Sprintf("multi-%d", i)}, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: uint64(i)})
			if err != nil {
				t.Fatal(err)
			}
			built = append(built, b)
		}
		seedECR(t, srv, "app", longAgo, built...)
		var images []fakeecr.Image
		for i := range singles {
			images = append(images, fakeecr.Image{Tags: []string{fmt.Sprintf("s%d", i)}, PushedAt: now,
				Manifest: fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064x","size":2},"layers":[]}`, i)})
		}
		srv.AddImages("app", images...)
		n := indexes*4 + singles
		store := &inventory.ECR{API: newECRClient(t, srv), Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Name: "app"}
		inv, err := store.Inventory(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		economy(t, "ECR", fmt.Sprintf("list %d images", n), "⌈N/1000⌉ DescribeImages", srv.Calls(fakeecr.OpDescribeImages), ceilDiv(n, 1000))
		economy(t, "ECR", fmt.Sprintf("read %d manifests", n), "⌈N/100⌉ BatchGetImage", srv.Calls(fakeecr.OpBatchGetImage), ceilDiv(n, 100))
		pl := plan(inv)
		d := len(pl.Delete)
		del := store.Delete(context.Background(), inv, pl.Delete, nil)
		if del.Err != nil || len(del.Deleted) != d {
			t.Fatalf("deleted %d of %d: %v", len(del.Deleted), d, del.Err)
		}
		economy(t, "ECR", fmt.Sprintf("delete %d manifests (%d indexes, their platforms and signatures)", d, indexes), "⌈D/100⌉ BatchDeleteImage", srv.Calls(fakeecr.OpBatchDeleteImage), ceilDiv(d, 100))
	})

	t.Run("GHCR", func(t *testing.T) {
		reg, host := startRegistry(t)
		repo := repoAt(t, host, "acme/app")
		gh := fakegithub.Start(t)
		gh.AddOwner("acme", fakegithub.Organization)
		gh.AddPackage("acme", "app", false)
		var built []*cleanfixture.Built
		for i := range 80 {
			b := push(t, repo, cleanfixture.Image{Tags: []string{fmt.Sprintf("v%d", i)}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: uint64(i)})
			built = append(built, b)
		}
		latest := push(t, repo, cleanfixture.Image{Tags: []string{"latest"}, Created: now, Seed: 999})
		seedGitHub(gh, "acme", "app", longAgo, built...)
		seedGitHub(gh, "acme", "app", now, latest)
		reg.reset()
		n := len(built)*4 + 1
		store := &inventory.GHCR{API: newGitHub(t, gh), Owner: "acme", Package: "app", Repo: repo, Remote: noRetry()}
		inv, err := store.Inventory(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		economy(t, "GHCR", fmt.Sprintf("list %d versions", n), "⌈N/100⌉ version pages", gh.Count(fakegithub.ListOrgVersions), ceilDiv(n, 100))
		economy(t, "GHCR", fmt.Sprintf("read %d manifests", n), "N registry GETs", reg.count("GET manifests"), n)
		pl := plan(inv)
		d := len(pl.Delete)
		del := store.Delete(context.Background(), inv, pl.Delete, nil)
		if del.Err != nil || len(del.Deleted) != d {
			t.Fatalf("deleted %d of %d: %v", len(del.Deleted), d, del.Err)
		}
		economy(t, "GHCR", fmt.Sprintf("delete %d versions", d), "D version DELETEs", gh.Count(fakegithub.DeleteOrgVersion), d)
	})

	t.Run("OCI", func(t *testing.T) {
		reg, host := startRegistry(t)
		repo := repoAt(t, host, "app")
		manifests, tags := 0, 0
		for i := range 40 {
			b := push(t, repo, cleanfixture.Image{Tags: []string{fmt.Sprintf("v%d", i), fmt.Sprintf("build-%d", i)}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Signature: true, Seed: uint64(i)})
			manifests += len(b.Manifests)
			tags += 3 // two tags and the signature's
		}
		reg.reset()
		store := &inventory.OCI{Repo: repo, Remote: noRetry()}
		inv, err := store.Inventory(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		economy(t, "OCI", fmt.Sprintf("resolve %d tags", tags), "T HEADs", reg.count("HEAD manifests"), tags)
		economy(t, "OCI", fmt.Sprintf("read %d manifests", manifests), "M GETs", reg.count("GET manifests"), manifests)
		economy(t, "OCI", "date 40 indexes by their images' configs, prove 40 signatures by their payloads", "one GET per platform config and per signature payload", reg.count("GET blobs"), 120)
		pl := plan(inv)
		del := store.Delete(context.Background(), inv, pl.Delete, nil)
		if del.Err != nil || len(del.Deleted) != manifests {
			t.Fatalf("deleted %d of %d: %v", len(del.Deleted), manifests, del.Err)
		}
		economy(t, "OCI", fmt.Sprintf("delete %d manifests", manifests), "D DELETEs", reg.count("DELETE manifests"), manifests)
	})
}
