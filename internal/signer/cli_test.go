package signer

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/registry-actions/registry/test/fakesigstore"
)

// cosignCLIEnv names the cosign binary the opt-in comparison runs, built
// from the module version this package uses:
//
//	go build -o cosign github.com/sigstore/cosign/v2/cmd/cosign   # v2.6.5
//	COSIGN_CLI=$PWD/cosign go test -run TestCosignCLI ./internal/signer/
const cosignCLIEnv = "COSIGN_CLI"

type cosignCLI struct {
	bin         string
	env         []string
	trustedRoot string // trusted_root.json naming the local CA
	chain       string // the local CA's intermediate and root, PEM
}

func newCosignCLI(t *testing.T, fs *fakesigstore.Sigstore) *cosignCLI {
	bin := os.Getenv(cosignCLIEnv)
	if bin == "" {
		t.Skipf("set %s to a cosign v2.6.5 binary to check signatures against the cosign CLI", cosignCLIEnv)
	}
	home := t.TempDir()
	root, err := fs.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	rootPath := filepath.Join(home, "trusted_root.json")
	if err := os.WriteFile(rootPath, root, 0o644); err != nil {
		t.Fatal(err)
	}
	chainPath := filepath.Join(home, "chain.pem")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fs.IntermediateCert().Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fs.RootCert().Raw})...)
	if err := os.WriteFile(chainPath, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	// Legacy keyless verification takes the log's key on its own.
	rekorKey, err := fs.RekorPublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	rekorKeyPath := filepath.Join(home, "rekor.pub")
	if err := os.WriteFile(rekorKeyPath, rekorKey, 0o644); err != nil {
		t.Fatal(err)
	}
	// Keep the CLI away from the user's config and from TUF.
	env := []string{"HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"), "PATH=" + os.Getenv("PATH"),
		"DOCKER_CONFIG=" + filepath.Join(home, "docker"), "SIGSTORE_REKOR_PUBLIC_KEY=" + rekorKeyPath}
	return &cosignCLI{bin: bin, env: env, trustedRoot: rootPath, chain: chainPath}
}

// run executes a cosign command line (as VerifyCommands prints it, or as a
// user would type it) through the shell, with extra flags appended.
func (c *cosignCLI) run(cmdline string, extraEnv ...string) (string, error) {
	cmdline = strings.Replace(cmdline, "cosign ", ShellQuote(c.bin)+" ", 1)
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Env = append(append([]string{}, c.env...), extraEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cosignCLI) mustRun(t testing.TB, cmdline string, extraEnv ...string) string {
	t.Helper()
	out, err := c.run(cmdline, extraEnv...)
	if err != nil {
		t.Fatalf("%s\n%v\n%s", cmdline, err, out)
	}
	return out
}

// offline adds what a local run needs on top of the printed commands: plain
// HTTP to the test registry and the local CA as the trust root. The CLI
// takes a trusted_root.json for bundles (and, with a key, it keeps the CLI
// from fetching TUF), but only a certificate chain for legacy keyless
// attestations.
func (c *cosignCLI) offline(format Format, keyless bool) string {
	flags := " --allow-http-registry"
	if keyless && format == FormatLegacy {
		flags += " --certificate-chain=" + ShellQuote(c.chain)
	} else {
		flags += " --trusted-root=" + ShellQuote(c.trustedRoot)
	}
	if keyless {
		flags += " --insecure-ignore-sct"
	}
	return flags
}

// TestCosignCLI checks our signatures with the cosign CLI, through the very
// commands VerifyCommands prints, and checks CLI-made signatures with our
// verifier.
func TestCosignCLI(t *testing.T) {
	ctx := context.Background()
	fs := fakesigstore.Start(t)
	cli := newCosignCLI(t, fs)
	host := memRegistry(t, nil)
	kp := newKeyPair(t, "cli-pass")

	seed := uint64(80)
	for _, tlog := range []bool{false, true} {
		for _, format := range []Format{FormatLegacy, FormatBundle} {
			for _, mode := range []string{"key", "keyless"} {
				seed++
				t.Run(fmt.Sprintf("ours-to-cli/%s/%s/tlog=%v", format, mode, tlog), func(t *testing.T) {
					f := pushIndex(t, host, fmt.Sprintf("tocli%s%s%v", format, mode, tlog), seed)
					opts := keyOptions(kp)
					if mode == "keyless" {
						opts = keylessOptions(fs)
					}
					opts.Format, opts.TlogUpload, opts.RekorURL = format, tlog, fs.RekorURL
					opts.Annotations = testAnnotations
					s := mustNew(t, opts)
					res, err := s.Sign(ctx, []name.Digest{f.index})
					if err != nil {
						t.Fatal(err)
					}
					// Attested like a scanned index: each platform and the
					// index, so each verify-attestation command names all three.
					ares, err := s.AttestAll(ctx, f.subjects([]Attestation{
						{PredicateType: "vuln", Predicate: []byte(vulnPredicate)},
						{PredicateType: "cyclonedx", Predicate: []byte(cyclonedxSBOM)},
					}))
					if err != nil {
						t.Fatal(err)
					}
					res.Merge(ares)
					if cmd := res.VerifyCommands(kp.publicPath)[1]; !strings.HasSuffix(cmd, strings.Join(f.all(), " ")) {
						t.Fatalf("%s does not name every platform and the index", cmd)
					}
					extra := cli.offline(format, mode == "keyless")
					for _, cmd := range res.VerifyCommands(kp.publicPath) {
						out := cli.mustRun(t, cmd+extra)
						t.Logf("%s\n%s", cmd, firstLines(out, 3))
					}
					// The CLI does check the predicate type.
					wrongType := strings.Replace(res.VerifyCommands(kp.publicPath)[1], "--type=vuln", "--type=slsaprovenance1", 1)
					if out, err := cli.run(wrongType + extra); err == nil {
						t.Fatalf("the CLI found a provenance attestation that was never made:\n%s", out)
					}
					// Every platform manifest verifies too.
					base := res.VerifyCommands(kp.publicPath)[0]
					for _, child := range f.children {
						cli.mustRun(t, strings.Replace(base, f.index.String(), child.String(), 1)+extra)
					}
					if format == FormatLegacy {
						// Annotations are signed: the CLI can require them.
						cli.mustRun(t, base+extra+" -a commit="+testAnnotations["commit"])
						if _, err := cli.run(base + extra + " -a commit=deadbeef"); err == nil {
							t.Fatal("the CLI accepted a wrong annotation")
						}
					}
					if mode == "keyless" {
						wrong := strings.Replace(base, "ci.yml", "release.yml", 1)
						if out, err := cli.run(wrong + extra); err == nil {
							t.Fatalf("the CLI accepted a wrong identity:\n%s", out)
						}
					}
				})
			}
		}
	}

	for _, tlog := range []bool{false, true} {
		for _, format := range []Format{FormatLegacy, FormatBundle} {
			seed++
			t.Run(fmt.Sprintf("cli-to-ours/%s/tlog=%v", format, tlog), func(t *testing.T) {
				cliToOurs(t, cli, fs, kp, pushIndex(t, host, fmt.Sprintf("fromcli%s%v", format, tlog), seed), format, tlog)
			})
		}
	}
}

// cliToOurs signs and attests with the cosign CLI and verifies with Verify.
func cliToOurs(t *testing.T, cli *cosignCLI, fs *fakesigstore.Sigstore, kp keyPair, f fixture, format Format, tlog bool) {
	ctx := context.Background()
	pass := "COSIGN_PASSWORD=" + kp.password
	flags := " --yes --key=" + ShellQuote(kp.privatePath) + " --allow-http-registry"
	if format == FormatBundle {
		flags += " --new-bundle-format"
	}
	if tlog {
		flags += " --tlog-upload=true --rekor-url=" + fs.RekorURL
	} else {
		flags += " --tlog-upload=false"
	}
	vopts := VerifyOptions{PublicKey: kp.publicPath, Recursive: true, IgnoreTlog: !tlog, RequireAttestations: []string{"vuln"}}
	if tlog {
		vopts.TrustedMaterial = fs.TrustedRoot()
	}
	cli.mustRun(t, "cosign sign"+flags+" --recursive -a commit="+testAnnotations["commit"]+" "+f.index.String(), pass)
	pred := filepath.Join(t.TempDir(), "vuln.json")
	if err := os.WriteFile(pred, []byte(vulnPredicate), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each platform and the index, as verify requires with Recursive.
	for _, d := range f.all() {
		cli.mustRun(t, "cosign attest"+flags+" --type=vuln --predicate="+ShellQuote(pred)+" "+d, pass)
	}

	vres, err := Verify(ctx, []name.Digest{f.index}, vopts)
	if err != nil {
		t.Fatalf("our verifier rejected CLI signatures: %v", err)
	}
	if len(vres.Images) != 3 {
		t.Fatalf("verdicts %+v", vres.Images)
	}
	for _, iv := range vres.Images {
		if !iv.Verified {
			t.Fatalf("%s: %s", iv.Digest, iv.Reason)
		}
		if format == FormatLegacy && iv.Signatures[0].Annotations["commit"] != testAnnotations["commit"] {
			t.Fatalf("%s: annotations %v", iv.Digest, iv.Signatures[0].Annotations)
		}
		if tlog != (iv.Signatures[0].Tlog != nil) {
			t.Fatalf("%s: tlog entry %+v with tlog=%v", iv.Digest, iv.Signatures[0].Tlog, tlog)
		}
	}
	other := newKeyPair(t, "")
	if _, err := Verify(ctx, []name.Digest{f.index}, VerifyOptions{PublicKey: other.publicPath, IgnoreTlog: true}); err == nil {
		t.Fatal("CLI signature verified with another key")
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
