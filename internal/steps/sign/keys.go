package sign

import (
	"fmt"

	"github.com/sigstore/cosign/v2/pkg/cosign"
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
