package inventory_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/registry-actions/registry/internal/demo/cleanfixture"
	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/test/fakeecr"
	"github.com/registry-actions/registry/test/fakegithub"
)

// An index whose manifest cannot be read must not leave its children
// looking like untagged top-level images: the listing is refused.
func TestGHCRIndexThatCannotBeReadMakesTheListingInconsistent(t *testing.T) {
	reg, host := startRegistry(t)
	repo := repoAt(t, host, "acme/app")
	gh := fakegithub.Start(t)
	gh.AddOwner("acme", fakegithub.Organization)
	gh.AddPackage("acme", "app", false)
	b := push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	seedGitHub(gh, "acme", "app", longAgo, b)
	reg.refuse = func(r *http.Request) int {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+b.Digest) {
			return http.StatusNotFound
		}
		return 0
	}
	store := &inventory.GHCR{API: newGitHub(t, gh), Owner: "acme", Package: "app", Repo: repo, Remote: noRetry()}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = inv.Consistent()
	if !errors.Is(err, inventory.ErrInconsistent) || !strings.Contains(err.Error(), inventory.Short(b.Digest)+" (v1)") || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("Consistent = %v", err)
	}
	// Read again once the registry answers: the same store reads the index
	// now, and only it.
	reg.refuse = nil
	reg.reset()
	inv, err = store.Inventory(context.Background())
	if err != nil || inv.Consistent() != nil {
		t.Fatalf("second listing: %v %v", err, inv.Consistent())
	}
	if n := reg.count("GET manifests"); n != 1 {
		t.Errorf("the second listing read %d manifests, want only the one it could not read", n)
	}
	if arts := byDigest(inv.Artifacts); len(arts[b.Digest].Children) != 2 {
		t.Errorf("index children = %v", arts[b.Digest].Children)
	}
}

func TestECRListedImageBatchGetImageCannotReturnIsInconsistent(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	b, _ := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	seedECR(t, srv, "app", longAgo, b)
	// The index is deleted by someone else between DescribeImages and
	// BatchGetImage.
	srv.Before(fakeecr.OpBatchGetImage, 1, func() { srv.RemoveImages("app", b.Digest) })
	store := &inventory.ECR{API: newECRClient(t, srv), Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Name: "app"}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := inv.Consistent(); !errors.Is(err, inventory.ErrInconsistent) || !strings.Contains(err.Error(), "ImageNotFound") {
		t.Fatalf("Consistent = %v", err)
	}
}

func TestCosignTagsAttachOnlyWhenThePayloadSaysSo(t *testing.T) {
	_, host := startRegistry(t)
	repo := repoAt(t, host, "app")
	signed := push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Signature: true, Seed: 1})
	other := push(t, repo, cleanfixture.Image{Tags: []string{"v2"}, Created: longAgo, Seed: 2})
	// An image merely named like v2's signature: its content is an
	// ordinary image.
	impostorTag := strings.Replace(other.Digest, ":", "-", 1) + ".sig"
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer([]byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:`+strings.Repeat("0", 64)+`"}}}`), cleanfixture.SimpleSigningMediaType)})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{inventory.AnnotationCreated: longAgo.Format("2006-01-02T15:04:05Z")}).(v1.Image)
	if err := remote.Write(repo.Tag(impostorTag), img); err != nil {
		t.Fatal(err)
	}
	impostor, _ := img.Digest()

	store := &inventory.OCI{Repo: repo, Remote: noRetry()}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	arts := byDigest(inv.Artifacts)
	sig := arts[roleDigests(signed, cleanfixture.RoleSignature)[0]]
	if sig.AttachedTo != signed.Digest || inv.Details[sig.Digest].Kind != inventory.KindSignature {
		t.Errorf("the real signature is not attached: %+v", sig)
	}
	if a := arts[impostor.String()]; a.AttachedTo != "" || len(a.OwnTags()) != 1 {
		t.Errorf("the impostor is attached: %+v", a)
	}
	if parents := inventory.Parents(inv.Artifacts); len(parents[impostor.String()]) != 0 {
		t.Errorf("the impostor has parents %v", parents[impostor.String()])
	}
}

func TestECRRestoringImagesAndIndexSizes(t *testing.T) {
	srv := fakeecr.Start(t)
	srv.AddRepository(fakeecr.Repository{Name: "app"})
	b, _ := cleanfixture.Build(cleanfixture.Image{Tags: []string{"v1"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 1})
	seedECR(t, srv, "app", longAgo, b)
	srv.AddImages("app", fakeecr.Image{Tags: []string{"old"}, Status: "ACTIVATING", PushedAt: longAgo,
		Manifest: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2},"layers":[]}`)})
	store := &inventory.ECR{API: newECRClient(t, srv), Registry: "r", Name: "app", Archived: true}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range inv.Artifacts {
		switch {
		case slices.Contains(a.Tags, "old") && (!a.Restoring || a.StorageClass != lifecycle.StorageClassArchive):
			t.Errorf("the ACTIVATING image = %+v", a)
		case a.Digest == b.Digest && !a.SizeIncludesChildren:
			t.Errorf("the index size is not marked as ECR's figure")
		}
	}
}

func TestReportListsEveryImageNewestFirstWithWhatGoesWithIt(t *testing.T) {
	_, host := startRegistry(t)
	repo := repoAt(t, host, "app")
	old := push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true, Signature: true, Referrer: true, Seed: 1})
	recent := push(t, repo, cleanfixture.Image{Tags: []string{"v2"}, Created: now.AddDate(0, 0, -1), Annotate: true, Seed: 2})
	store := &inventory.OCI{Repo: repo, Remote: noRetry()}
	inv, err := store.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rep := inventory.BuildReport(inv, nil)
	if len(rep.Images) != 2 || rep.Manifests != len(old.Manifests)+len(recent.Manifests) {
		t.Fatalf("report = %+v", rep)
	}
	first, second := rep.Images[0], rep.Images[1]
	if first.Digest != recent.Digest || first.TimeFrom != inventory.ClockAnnotation || !slices.Equal(first.Platforms, []string{"linux/amd64"}) || first.Kind != inventory.KindImage {
		t.Errorf("newest = %+v", first)
	}
	kinds := map[string]int{}
	for _, a := range second.Attached {
		kinds[a.Kind]++
	}
	if second.Digest != old.Digest || second.Kind != inventory.KindIndex || second.Children != 4 || !slices.Equal(second.Platforms, []string{"linux/amd64", "linux/arm64"}) ||
		kinds[inventory.KindSignature] != 1 || kinds[inventory.KindSBOM] != 1 || kinds[inventory.KindReferrers] != 1 || second.TimeFrom != inventory.ClockConfig || second.Decision != "" {
		t.Errorf("older = %+v (attached %v)", second, kinds)
	}
	var total int64
	for _, m := range old.Manifests {
		total += m.Size
	}
	if second.Size != total {
		t.Errorf("size = %d, want the index with everything that goes with it, %d", second.Size, total)
	}

	p, _ := lifecycle.Parse([]byte(`{"rules":[{"rulePriority":1,"description":"one release","selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`))
	plan, err := lifecycle.Evaluate(p, inv.Artifacts, lifecycle.EvalOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rep = inventory.BuildReport(inv, plan)
	if d := rep.Images[0]; d.Decision != inventory.DecisionKeep || d.Rule != 1 || d.Why != "rule 1 selects it and keeps it" {
		t.Errorf("kept: %+v", d)
	}
	if d := rep.Images[1]; d.Decision != inventory.DecisionExpire || d.Rule != 1 || d.Why != "rule 1: one release" {
		t.Errorf("expired: %+v", d)
	}
	_ = fmt.Sprint()
}

func TestCosignAttestationAttachesByItsStatementSubject(t *testing.T) {
	_, host := startRegistry(t)
	repo := repoAt(t, host, "app")
	img := push(t, repo, cleanfixture.Image{Tags: []string{"v1"}, Created: longAgo, Seed: 1})
	hex := strings.TrimPrefix(img.Digest, "sha256:")
	statement := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"` + hex + `"}}],"predicateType":"https://cosign.sigstore.dev/attestation/vuln/v1","predicate":{}}`
	envelope := `{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(statement)) + `","signatures":[]}`
	att := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	att, err := mutate.Append(att, mutate.Addendum{Layer: static.NewLayer([]byte(envelope), "application/vnd.dsse.envelope.v1+json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag("sha256-"+hex+".att"), att); err != nil {
		t.Fatal(err)
	}
	d, _ := att.Digest()
	inv, err := (&inventory.OCI{Repo: repo, Remote: noRetry()}).Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a := byDigest(inv.Artifacts)[d.String()]; a.AttachedTo != img.Digest || inv.Details[a.Digest].Kind != inventory.KindInToto {
		t.Errorf("attestation = %+v (%s)", a, inv.Details[d.String()].Kind)
	}
}
