package signer

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/registry-actions/registry/test/fakesigstore"
)

func TestKeyErrors(t *testing.T) {
	kp := newKeyPair(t, "right")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, key, password string
		want                string
		is                  error
	}{
		{name: "wrong password", key: string(kp.private), password: "wrong", is: ErrWrongKeyPassword, want: "key-password"},
		{name: "wrong password from file", key: kp.privatePath, password: "", is: ErrWrongKeyPassword},
		{name: "missing file", key: filepath.Join(dir, "nope.key"), want: "cannot read key file " + filepath.Join(dir, "nope.key") + ": no such file or directory"},
		{name: "directory", key: dir, want: "cannot read key file"},
		{name: "unset env", key: "env://SIGNER_TEST_UNSET_KEY", want: "SIGNER_TEST_UNSET_KEY"},
		{name: "public key given", key: string(kp.public), want: "cosign private key"},
		{name: "unknown scheme", key: "k8s://ns/secret", want: `unsupported scheme "k8s://"`},
		{name: "garbage content", key: "-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n", want: "key (PEM content)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), Options{Key: tc.key, KeyPassword: tc.password})
			if err == nil {
				t.Fatal("no error")
			}
			assertOneLine(t, err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || (tc.password != "" && strings.Contains(err.Error(), tc.password)) {
				t.Fatalf("secret in error: %q", err)
			}
		})
	}
}

// TestAWSKMS signs with an awskms:// key through sigstore's AWS provider
// and the AWS SDK, talking to the local KMS endpoint.
func TestAWSKMS(t *testing.T) {
	ctx := context.Background()
	kms := fakesigstore.StartKMS(t)
	for k, v := range kms.Env() {
		t.Setenv(k, v)
	}
	pub, err := kms.CreateKey("release-signing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kms.CreateDeniedKey("someone-elses"); err != nil {
		t.Fatal(err)
	}
	host := memRegistry(t, nil)
	f := pushIndex(t, host, "kms", 70)
	ref := "awskms:///alias/release-signing"
	s := mustNew(t, Options{Key: ref, Recursive: true, Annotations: testAnnotations})
	if s.Identity().KeyRef != ref || s.Identity().KeyFingerprint != fingerprint(pub) {
		t.Fatalf("identity %+v", s.Identity())
	}
	res, err := s.Sign(ctx, []name.Digest{f.index})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if kms.Signs() != 3 {
		t.Fatalf("KMS signed %d times for 3 manifests", kms.Signs())
	}
	// Verifiers can name the KMS key or hold its public key.
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ref, string(pubPEM)} {
		if _, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: key, Recursive: true, IgnoreTlog: true}); err != nil {
			t.Fatalf("verify with %.20s: %v", key, err)
		}
	}
	if cmds := res.VerifyCommands(""); !strings.Contains(cmds[0], "--key=awskms:///alias/release-signing") {
		t.Fatalf("commands %q", cmds)
	}

	for alias, want := range map[string]string{
		"missing":       "KMS key awskms:///alias/missing not found",
		"someone-elses": "not permitted to use KMS key awskms:///alias/someone-elses: grant kms:GetPublicKey, kms:DescribeKey and kms:Sign",
	} {
		_, err := New(ctx, Options{Key: "awskms:///alias/" + alias})
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("%s: err %v, want prefix %q", alias, err, want)
		}
		assertOneLine(t, err)
	}
	if kms.Signs() != 3 {
		t.Fatal("a failing key signed something")
	}
}
