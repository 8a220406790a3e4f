package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TestWrittenKeyPairLoadsWithCosignsLoaders writes a key pair and reads it
// back with the loaders the cosign CLI uses for --key: the private key
// decrypts with the password only, and what it signs the public key verifies.
func TestWrittenKeyPairLoadsWithCosignsLoaders(t *testing.T) {
	dir := t.TempDir()
	password := []byte("generate me a key")
	kf, err := WriteKeyPair(filepath.Join(dir, "release"), "keys/release", password)
	if err != nil {
		t.Fatal(err)
	}
	if kf.PrivateKey != "keys/release.key" || kf.PublicKey != "keys/release.pub" || !strings.HasPrefix(kf.Fingerprint, "sha256:") {
		t.Fatalf("result %+v", kf)
	}
	want := []string{"gh secret set COSIGN_PRIVATE_KEY < keys/release.key", "gh secret set COSIGN_PASSWORD", "gh variable set COSIGN_PUBLIC_KEY < keys/release.pub"}
	if strings.Join(kf.SecretCommands, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands %q", kf.SecretCommands)
	}
	priv, pub := filepath.Join(dir, "release.key"), filepath.Join(dir, "release.pub")
	for path, mode := range map[string]os.FileMode{priv: 0o600, pub: 0o644} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v, want %v", path, err, st.Mode().Perm(), mode)
		}
	}
	privPEM, _ := os.ReadFile(priv)
	pubPEM, _ := os.ReadFile(pub)
	if b, _ := pem.Decode(privPEM); b == nil || b.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
		t.Fatalf("private key PEM block %v", b)
	}
	if b, _ := pem.Decode(pubPEM); b == nil || b.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM block %v", b)
	}

	if _, err := cosign.LoadPrivateKey(privPEM, []byte("another password"), nil); err == nil {
		t.Fatal("the private key decrypted with a wrong password")
	}
	sv, err := cosign.LoadPrivateKey(privPEM, password, nil)
	if err != nil {
		t.Fatalf("cosign.LoadPrivateKey: %v", err)
	}
	msg := []byte("payload to sign")
	sig, err := sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	v, err := signature.LoadVerifier(pk, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		t.Fatalf("the public key does not verify what the private key signed: %v", err)
	}
}

// TestAGeneratedKeyPairSignsAndVerifies signs an index with the written
// key files and verifies it with the public one, through the stages.
func TestAGeneratedKeyPairSignsAndVerifies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	kf, err := WriteKeyPair(filepath.Join(e.dir, "cosign"), "cosign", []byte(e.password))
	if err != nil {
		t.Fatal(err)
	}
	o := e.signOptions()
	o.Signer.Key = filepath.Join(e.dir, "cosign.key")
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.KeyFingerprint != kf.Fingerprint {
		t.Fatalf("signed with %s, generated %s", res.Identity.KeyFingerprint, kf.Fingerprint)
	}
	vo := e.verifyOptions()
	vo.Verify.PublicKey = filepath.Join(e.dir, "cosign.pub")
	if _, err := Verify(ctx, vo); err != nil {
		t.Fatal(err)
	}
}

func TestWriteKeyPairNeverOverwrites(t *testing.T) {
	for _, existing := range []string{"cosign.key", "cosign.pub"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			mine := filepath.Join(dir, existing)
			os.WriteFile(mine, []byte("the user's own file"), 0o600)
			_, err := WriteKeyPair(filepath.Join(dir, "cosign"), "cosign", []byte("pw"))
			if !isInvalid(err) || !strings.Contains(err.Error(), existing+" already exists and is never overwritten") {
				t.Fatalf("err %v", err)
			}
			if got, _ := os.ReadFile(mine); string(got) != "the user's own file" {
				t.Fatalf("%s was changed to %q", existing, got)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("files written beside the existing one: %v", entries)
			}
		})
	}
	// A dangling symbolic link is an existing name too: nothing is written
	// through it.
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	os.Symlink(target, filepath.Join(dir, "cosign.key"))
	if _, err := WriteKeyPair(filepath.Join(dir, "cosign"), "cosign", []byte("pw")); !isInvalid(err) {
		t.Fatalf("through a symbolic link: %v", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatal("the link's target was created")
	}
}

func TestWriteKeyPairBadInputs(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		prefix   string
		password string
		want     string
	}{
		"empty password":    {filepath.Join(dir, "cosign"), "", "set COSIGN_PASSWORD"},
		"missing directory": {filepath.Join(dir, "nope", "cosign"), "pw", "directory nope does not exist"},
	} {
		t.Run(name, func(t *testing.T) {
			display := strings.TrimPrefix(c.prefix, dir+"/")
			if _, err := WriteKeyPair(c.prefix, display, []byte(c.password)); !isInvalid(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("written: %v", entries)
			}
		})
	}
}

// TestAKeyLoadedAheadSignsAsTheKeyWould hands Run a key loaded in the
// background: it signs with it, a wrong password fails as it would without
// it, and a load of another key is not used.
func TestAKeyLoadedAheadSignsAsTheKeyWould(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	o := e.signOptions()
	o.KeyLoad = StartKeyLoad(ctx, o.Signer.Key, o.Signer.KeyPassword)
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	want := res.Identity.KeyFingerprint

	o.KeyLoad = StartKeyLoad(ctx, o.Signer.Key, "not the password")
	o.Signer.KeyPassword = "not the password"
	if _, err := Run(ctx, o); !isInvalid(err) || !strings.Contains(err.Error(), "check key-password") {
		t.Fatalf("wrong password loaded ahead: %v", err)
	}

	// Loaded for another key (or password): Run loads its own.
	other := filepath.Join(e.dir, "other")
	if _, err := WriteKeyPair(other, "other", []byte("other password")); err != nil {
		t.Fatal(err)
	}
	o = e.signOptions()
	o.KeyLoad = StartKeyLoad(ctx, other+".key", "other password")
	if res, err = Run(ctx, o); err != nil || res.Identity.KeyFingerprint != want {
		t.Fatalf("signed with %v (%v), want the key of the options %s", res, err, want)
	}
	if StartKeyLoad(ctx, "", "") != nil || StartKeyLoad(ctx, "awskms:///alias/x", "") != nil {
		t.Fatal("keyless or KMS signing started a key load")
	}
}
