package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/steps/sign"
)

// passwordVariable holds the key password, as for the cosign CLI.
const passwordVariable = "COSIGN_PASSWORD"

// keyPairCommand is "registry generate-key-pair", the counterpart of
// "cosign generate-key-pair" for signing where there is no OIDC identity.
func keyPairCommand(pio IO, opts *cliOptions, exit *int) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "generate-key-pair [flags]",
		Short: "Write a cosign key pair (cosign.key, encrypted, and cosign.pub) for signing without OIDC",
		Long: `generate-key-pair writes a key pair in cosign's formats: <prefix>.key, the
private key encrypted with a password, and <prefix>.pub. The password comes
from COSIGN_PASSWORD or, on a terminal, is asked for twice; it is never an
argument. Existing files are never overwritten.

It then prints the gh commands that store the pair as GitHub Actions secrets
for the sign stage (key: ${{ secrets.COSIGN_PRIVATE_KEY }}, key-password:
${{ secrets.COSIGN_PASSWORD }}).`,
		Example: "  COSIGN_PASSWORD=… registry generate-key-pair --output-key-prefix release",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			*exit = generateKeyPair(pio, prefix, opts.json)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "output-key-prefix", sign.DefaultKeyPrefix, "name (and path) of the .key and .pub files")
	return cmd
}

func generateKeyPair(pio IO, prefix string, asJSON bool) int {
	fail := func(err error) int {
		fmt.Fprintf(pio.Stderr, "registry: %s\n", report.OneLine(err.Error()))
		return failure.Code(err)
	}
	if prefix == "" {
		return fail(failure.Invalidf("generate-key-pair: --output-key-prefix is empty: name the files, e.g. cosign"))
	}
	password, err := keyPassword(pio)
	if err != nil {
		return fail(err)
	}
	run := &Run{IO: pio}
	kf, err := sign.WriteKeyPair(run.Path(prefix), prefix, password)
	if err != nil {
		return fail(err)
	}
	if asJSON {
		enc := json.NewEncoder(pio.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(kf); err != nil {
			return fail(err)
		}
		return failure.ExitOK
	}
	fmt.Fprintf(pio.Stdout, "Private key written to %s (encrypted with the password; keep both secret)\n", kf.PrivateKey)
	fmt.Fprintf(pio.Stdout, "Public key written to %s (key %s)\n\n", kf.PublicKey, kf.Fingerprint)
	fmt.Fprintln(pio.Stdout, "Store them for GitHub Actions (gh asks for the password, which keeps it out of your shell history):")
	for _, c := range kf.SecretCommands {
		fmt.Fprintf(pio.Stdout, "  %s\n", c)
	}
	fmt.Fprintln(pio.Stdout, "then sign with  key: ${{ secrets.COSIGN_PRIVATE_KEY }}  and  key-password: ${{ secrets.COSIGN_PASSWORD }},")
	fmt.Fprintln(pio.Stdout, "and verify with  public-key: ${{ vars.COSIGN_PUBLIC_KEY }}.")
	return failure.ExitOK
}

// keyPassword reads the password from COSIGN_PASSWORD or, on a terminal,
// asks for it twice.
func keyPassword(pio IO) ([]byte, error) {
	if pw := pio.Getenv(passwordVariable); pw != "" {
		return []byte(pw), nil
	}
	if pio.ReadPassword == nil {
		return nil, failure.Invalidf("generate-key-pair: no password: set %s (standard input is not a terminal to ask on)", passwordVariable)
	}
	first, err := pio.ReadPassword("Enter password for private key: ")
	if err != nil {
		return nil, fmt.Errorf("generate-key-pair: read the password: %w", err)
	}
	again, err := pio.ReadPassword("Enter password for private key again: ")
	if err != nil {
		return nil, fmt.Errorf("generate-key-pair: read the password: %w", err)
	}
	if string(first) != string(again) {
		return nil, failure.Invalid(errors.New("generate-key-pair: the passwords do not match: run it again"))
	}
	return first, nil
}

// terminalPassword reads a password typed on the process's terminal
// without echoing it; nil when standard input is not a terminal.
func terminalPassword() func(prompt string) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return func(prompt string) ([]byte, error) {
		fmt.Fprint(os.Stderr, prompt)
		defer fmt.Fprintln(os.Stderr)
		return term.ReadPassword(fd)
	}
}
