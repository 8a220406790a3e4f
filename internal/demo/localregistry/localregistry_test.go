package localregistry_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/registry-actions/registry/internal/demo/localregistry"
	"github.com/registry-actions/registry/internal/demo/synth"
)

func TestTLSAndBasicAuthAndDeletes(t *testing.T) {
	ctx := context.Background()
	reg, err := localregistry.Start(ctx, localregistry.Options{TLS: true, Users: map[string]string{"alice": "s3cret-pass"}, Deletes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	idx, err := synth.MultiArch([]string{"linux/amd64", "linux/arm64"}, 2, 4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = reg.TLSConfig.Clone()
	tr.TLSClientConfig.Certificates = nil
	tr.TLSClientConfig.RootCAs = reg.CertPool
	ref, _ := name.ParseReference(reg.Host + "/team/app:v1")

	// Anonymous: refused.
	err = remote.WriteIndex(ref, idx, remote.WithTransport(tr), remote.WithContext(ctx))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous push: want 401, got %v", err)
	}

	auth := remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret-pass"})
	if err := remote.WriteIndex(ref, idx, remote.WithTransport(tr), auth, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := remote.Index(ref, remote.WithTransport(tr), auth)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	if err := remote.Delete(ref.Context().Digest(want.String()), remote.WithTransport(tr), auth); err != nil {
		t.Fatalf("delete with deletes enabled: %v", err)
	}
}
