package sign

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/signer"
)

// KeyPair is a cosign key pair: the private key encrypted with a password,
// as "cosign generate-key-pair" writes cosign.key and cosign.pub.
type KeyPair struct {
	PrivatePEM []byte
	PublicPEM  []byte
}

// NewKeyPair makes an ephemeral key pair, for the demo and for users who
// try the sign and verify stages without a key of their own.
func NewKeyPair(password string) (KeyPair, error) {
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate a key pair: %w", err)
	}
	return KeyPair{PrivatePEM: kb.PrivateBytes, PublicPEM: kb.PublicBytes}, nil
}

// KeyLoad is a private key being loaded in the background: a chain starts
// it with its first stage so that decrypting the key (scrypt, a fifth of a
// second of CPU) overlaps pushing and scanning instead of following them.
type KeyLoad struct {
	key, password string
	done          chan struct{}
	loaded        *signer.Key
	err           error
}

// StartKeyLoad starts loading key (as Options.Signer.Key) with password.
// Keyless signing and KMS keys have nothing slow to load: nil.
func StartKeyLoad(ctx context.Context, key, password string) *KeyLoad {
	if key == "" || strings.HasPrefix(key, "awskms://") {
		return nil
	}
	l := &KeyLoad{key: key, password: password, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.loaded, l.err = signer.LoadKey(ctx, key, password)
	}()
	return l
}

// use hands the loaded key to so when it is the key and password so names;
// a key that failed to load fails as signer.New would.
func (l *KeyLoad) use(ctx context.Context, so *signer.Options) error {
	if l == nil || l.key != so.Key || l.password != so.KeyPassword {
		return nil
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if l.err != nil {
		return l.err
	}
	so.LoadedKey = l.loaded
	return nil
}

// DefaultKeyPrefix names the files "cosign generate-key-pair" writes.
const DefaultKeyPrefix = "cosign"

// KeyFiles is a key pair written to disk, and how to store it as GitHub
// Actions secrets.
type KeyFiles struct {
	PrivateKey  string `json:"privateKey"` // <prefix>.key, encrypted
	PublicKey   string `json:"publicKey"`  // <prefix>.pub
	Fingerprint string `json:"fingerprint"`
	// SecretCommands store the pair with the gh CLI, in the names the
	// cosign CLI's github:// key provider uses.
	SecretCommands []string `json:"secretCommands"`
}

// WriteKeyPair generates a key pair in cosign's formats and writes
// <prefix>.key (the private key encrypted with password, mode 0600) and
// <prefix>.pub. Unlike "cosign generate-key-pair", which asks before it
// overwrites, it never replaces a file: if either exists, nothing is
// written. display names the files in messages and commands (the prefix as
// the user gave it).
func WriteKeyPair(prefix, display string, password []byte) (*KeyFiles, error) {
	if len(password) == 0 {
		return nil, failure.Invalidf("generate-key-pair: the password is empty: set COSIGN_PASSWORD, or run on a terminal to be asked for one (an empty password leaves the key unprotected)")
	}
	priv, pub := prefix+".key", prefix+".pub"
	for _, ext := range []string{".key", ".pub"} {
		if _, err := os.Lstat(prefix + ext); err == nil {
			return nil, exists(display + ext)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("generate-key-pair: %w", err)
		}
	}
	if st, err := os.Stat(filepath.Dir(prefix)); err != nil || !st.IsDir() {
		return nil, failure.Invalidf("generate-key-pair: directory %s does not exist: create it first, or choose another --output-key-prefix", filepath.Dir(display))
	}
	kp, err := NewKeyPair(string(password))
	if err != nil {
		return nil, err
	}
	fp, err := signer.Fingerprint(kp.PublicPEM)
	if err != nil {
		return nil, err
	}
	if err := createFile(priv, kp.PrivatePEM, 0o600); err != nil {
		return nil, keyFileError(err, display+".key")
	}
	if err := createFile(pub, kp.PublicPEM, 0o644); err != nil {
		// Only the private key this run just created is removed.
		os.Remove(priv)
		return nil, keyFileError(err, display+".pub")
	}
	kf := &KeyFiles{PrivateKey: display + ".key", PublicKey: display + ".pub", Fingerprint: fp}
	kf.SecretCommands = []string{
		"gh secret set COSIGN_PRIVATE_KEY < " + signer.ShellQuote(kf.PrivateKey),
		"gh secret set COSIGN_PASSWORD",
		"gh variable set COSIGN_PUBLIC_KEY < " + signer.ShellQuote(kf.PublicKey),
	}
	return kf, nil
}

// createFile writes a new file and fails if the path exists, even as a
// dangling symbolic link, so a file appearing meanwhile is not replaced.
func createFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func exists(shown string) error {
	return failure.Invalidf("generate-key-pair: %s already exists and is never overwritten: move it away or choose another --output-key-prefix", shown)
}

func keyFileError(err error, shown string) error {
	if errors.Is(err, fs.ErrExist) {
		return exists(shown)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("generate-key-pair: write %s: %w: choose a writable --output-key-prefix", shown, err)
}
