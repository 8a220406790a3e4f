package scanner

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/internal/demo/vulndb"
)

// TestALocalCopyIsReadAsTheReferenceItCopies resolves the sample index at
// hand under a registry reference: its platforms come from the copy and
// are reported under the reference; a copy of another digest is refused.
func TestALocalCopyIsReadAsTheReferenceItCopies(t *testing.T) {
	idx, err := vulndb.Index()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	ref, _ := name.NewDigest("registry.example/team/app@" + d.String())
	img, err := resolve(context.Background(), LocalTarget(ref, idx), normalized{})
	if err != nil {
		t.Fatal(err)
	}
	if img.reference != ref.String() || img.repository != "registry.example/team/app" || img.digest != d.String() || len(img.platforms) != 2 {
		t.Fatalf("resolved %+v", img)
	}
	alpine, _ := vulndb.AlpineImage()
	if _, err := resolve(context.Background(), LocalTarget(ref, alpine), normalized{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("a copy of another digest: %v", err)
	}
}
