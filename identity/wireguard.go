package identity

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// WireGuardKeys is a WireGuard key pair: Curve25519 keys in standard base64,
// the form of wg genkey and wg pubkey.
type WireGuardKeys struct {
	// Private is the private key, clamped as wg genkey clamps it.
	Private string
	// Public is the public key derived from Private.
	Public string
}

// String returns the public key only.
func (k WireGuardKeys) String() string { return "wireguard public key " + k.Public }

// GoString returns the public key only, so that %#v prints no private key.
func (k WireGuardKeys) GoString() string {
	return fmt.Sprintf("identity.WireGuardKeys{Public: %q}", k.Public)
}

// NewWireGuardKeys makes a WireGuard key pair.
func NewWireGuardKeys() (WireGuardKeys, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return WireGuardKeys{}, fmt.Errorf("wireguard key: %w", err)
	}
	k[0] &= 248
	k[31] = k[31]&127 | 64
	pub, err := wireGuardPublic(k[:])
	if err != nil {
		return WireGuardKeys{}, err
	}
	return WireGuardKeys{Private: base64.StdEncoding.EncodeToString(k[:]), Public: pub}, nil
}

// WireGuardPublic returns the public key of a base64 WireGuard private key,
// what wg pubkey prints for it.
func WireGuardPublic(private string) (string, error) {
	k, err := base64.StdEncoding.Strict().DecodeString(private)
	if err != nil || len(k) != 32 {
		return "", errors.New("wireguard key: the private key is not 32 bytes of standard base64")
	}
	return wireGuardPublic(k)
}

func wireGuardPublic(k []byte) (string, error) {
	priv, err := ecdh.X25519().NewPrivateKey(k)
	if err != nil {
		return "", errors.New("wireguard key: invalid private key")
	}
	return base64.StdEncoding.EncodeToString(priv.PublicKey().Bytes()), nil
}
