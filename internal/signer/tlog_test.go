package signer

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/registry-actions/registry/test/fakesigstore"
)

// TestTransparencyLog signs with the tlog on against the local Rekor and
// verifies the entries offline (signed entry timestamps, and inclusion
// proofs for bundles) against its key, keyless and with a key.
func TestTransparencyLog(t *testing.T) {
	ctx := context.Background()
	host := memRegistry(t, nil)
	fs := fakesigstore.Start(t)
	kp := newKeyPair(t, "")
	// The same CA without the log: entries can no longer be checked.
	noLog, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{&root.FulcioCertificateAuthority{
		Root: fs.RootCert(), Intermediates: []*x509.Certificate{fs.IntermediateCert()}, ValidityPeriodStart: fs.RootCert().NotBefore,
	}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, format := range []Format{FormatLegacy, FormatBundle} {
		for _, mode := range []string{"key", "keyless"} {
			t.Run(string(format)+"/"+mode, func(t *testing.T) {
				f := pushIndex(t, host, "tlog"+string(format)+mode, uint64(100+i))
				opts := keyOptions(kp)
				vopts := VerifyOptions{PublicKey: kp.publicPath, Recursive: true}
				if mode == "keyless" {
					opts, vopts = keylessOptions(fs), keylessVerifyOptions(fs)
				}
				opts.Format, opts.TlogUpload, opts.RekorURL = format, true, fs.RekorURL
				vopts.IgnoreTlog, vopts.TrustedMaterial = false, fs.TrustedRoot()
				before := fs.LogEntries()
				s := mustNew(t, opts)
				res, err := s.Sign(ctx, []name.Digest{f.index})
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				ares, err := s.AttestAll(ctx, f.subjects([]Attestation{{PredicateType: "vuln", Predicate: []byte(vulnPredicate)}}))
				if err != nil {
					t.Fatalf("Attest: %v", err)
				}
				res.Merge(ares)
				if got := fs.LogEntries() - before; got != 6 {
					t.Fatalf("%d log entries for 3 signatures and 3 attestations", got)
				}
				if !res.TlogUpload {
					t.Fatal("result does not say the tlog was used")
				}
				for _, a := range append(res.Signatures, res.Attestations...) {
					if a.Tlog == nil || a.Tlog.IntegratedTime.IsZero() {
						t.Fatalf("%s %s: no tlog entry", a.Kind, a.Subject)
					}
					if want := fmt.Sprintf("%s/api/v1/log/entries?logIndex=%d", fs.RekorURL, a.Tlog.Index); a.Tlog.URL != want {
						t.Fatalf("tlog URL %q, want %q", a.Tlog.URL, want)
					}
				}
				for _, cmd := range res.VerifyCommands("") {
					if strings.Contains(cmd, "insecure-ignore-tlog") {
						t.Fatalf("command skips the tlog although entries exist: %s", cmd)
					}
				}

				vopts.RekorURL = fs.RekorURL
				vopts.RequireAttestations = []string{"vuln"}
				vres, err := Verify(ctx, []name.Digest{f.index}, vopts)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				for i, iv := range vres.Images {
					sc := iv.Signatures[0]
					if sc.Tlog == nil || sc.TimeSource != "tlog" || sc.SigningTime == nil {
						t.Fatalf("%s: tlog %+v, time %v from %q", iv.Digest, sc.Tlog, sc.SigningTime, sc.TimeSource)
					}
					if sc.Tlog.Index != res.Signatures[(i+2)%3].Tlog.Index {
						t.Errorf("%s: verified entry %d, signed entry %d", iv.Digest, sc.Tlog.Index, res.Signatures[(i+2)%3].Tlog.Index)
					}
				}
				for i, iv := range vres.Images {
					if a := iv.Attestations[0]; a.Tlog == nil || a.Tlog.Index != res.Attestations[(i+2)%3].Tlog.Index {
						t.Errorf("%s: attestation tlog %+v, signed %+v", iv.Digest, a.Tlog, res.Attestations[(i+2)%3].Tlog)
					}
				}

				vopts.TrustedMaterial = noLog
				vres, err = Verify(ctx, []name.Digest{f.index}, vopts)
				if err == nil || vres.Verified {
					t.Fatal("entries verified without the log's key")
				}
				assertOneLine(t, err)
				if r := vres.Images[0].Reason; !strings.HasPrefix(r, "transparency-log entry not verifiable") {
					t.Fatalf("reason without the log's key: %q", r)
				}
				// Signatures made with the tlog off have no entry to show.
				g := pushIndex(t, host, "notlog"+string(format)+mode, uint64(110+i))
				opts.TlogUpload = false
				if _, err := mustNew(t, opts).Sign(ctx, []name.Digest{g.index}); err != nil {
					t.Fatal(err)
				}
				// Offline: the local log has no search API for an online lookup.
				vopts.TrustedMaterial, vopts.RequireAttestations, vopts.RekorURL = fs.TrustedRoot(), nil, ""
				vres, _ = Verify(ctx, []name.Digest{g.index}, vopts)
				if r := vres.Images[0].Reason; !strings.HasPrefix(r, "no transparency-log entry") {
					t.Fatalf("reason without an entry: %q", r)
				}
			})
		}
	}
}
