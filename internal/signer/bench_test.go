package signer

import (
	"context"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// BenchmarkSignVerifyIndex signs a two-platform index with a key (tlog
// off, legacy format) and verifies the index and both platforms.
func BenchmarkSignVerifyIndex(b *testing.B) {
	ctx := context.Background()
	host := memRegistry(b, nil)
	kp := newKeyPair(b, "bench")
	s, err := New(ctx, Options{Key: string(kp.private), KeyPassword: kp.password, Recursive: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := pushIndex(b, host, "bench", uint64(1000+i))
		b.StartTimer()
		if _, err := s.Sign(ctx, []name.Digest{f.index}); err != nil {
			b.Fatal(err)
		}
		if _, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: kp.publicPath, Recursive: true, IgnoreTlog: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignVerifyIndexCLI does the same with the cosign CLI ("sign
// --recursive", then "verify" of the index); it needs COSIGN_CLI like
// TestCosignCLI.
func BenchmarkSignVerifyIndexCLI(b *testing.B) {
	bin := os.Getenv(cosignCLIEnv)
	if bin == "" {
		b.Skipf("set %s to a cosign binary", cosignCLIEnv)
	}
	host := memRegistry(b, nil)
	kp := newKeyPair(b, "bench")
	cli := &cosignCLI{bin: bin, env: []string{"HOME=" + b.TempDir(), "PATH=" + os.Getenv("PATH"), "COSIGN_PASSWORD=" + kp.password}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := pushIndex(b, host, "bench", uint64(2000+i))
		b.StartTimer()
		cli.mustRun(b, "cosign sign --yes --key="+kp.privatePath+" --tlog-upload=false --recursive --allow-http-registry "+f.index.String())
		cli.mustRun(b, "cosign verify --key="+kp.publicPath+" --insecure-ignore-tlog=true --allow-http-registry "+f.index.String())
	}
}
