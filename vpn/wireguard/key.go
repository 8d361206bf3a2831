package wireguard

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeyLen is the length of a WireGuard key in bytes.
const KeyLen = 32

// Key is a Curve25519 key: a private, public or preshared WireGuard key.
// Its String method returns the key itself, so a private key must not be
// passed to loggers or formatted into errors.
type Key [KeyLen]byte

// errNotBase64 is the parse error for text that is not standard base64.
var errNotBase64 = errors.New("parse key: not base64")

// ParseKey parses a key in standard base64 (44 characters, as wg(8)
// prints it). Leading and trailing whitespace is ignored. Errors never
// contain s, which may be a private key.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, errors.New("parse key: empty")
	}
	// The decoder skips embedded newlines; a key never has any.
	if strings.ContainsAny(s, " \t\r\n\v\f") {
		return Key{}, errors.New("parse key: not base64 (contains whitespace)")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return Key{}, errNotBase64
	}
	if len(b) != KeyLen {
		return Key{}, fmt.Errorf("parse key: decodes to %d bytes, want %d", len(b), KeyLen)
	}
	var k Key
	copy(k[:], b)
	return k, nil
}

// String returns the key in standard base64.
func (k Key) String() string {
	return base64.StdEncoding.EncodeToString(k[:])
}

// IsZero reports whether all bytes of the key are zero, which WireGuard
// treats as "no key".
func (k Key) IsZero() bool {
	return k == Key{}
}

// GeneratePrivateKey returns a new random private key, clamped as
// Curve25519 requires (as wg genkey does).
func GeneratePrivateKey() (Key, error) {
	k, err := randomKey()
	if err != nil {
		return Key{}, err
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// GeneratePresharedKey returns a new random preshared key.
func GeneratePresharedKey() (Key, error) {
	return randomKey()
}

func randomKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// PublicKey returns the public key of the private key k.
func (k Key) PublicKey() Key {
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// NewPrivateKey only fails on a length other than 32.
		panic("wireguard: " + err.Error())
	}
	var pub Key
	copy(pub[:], priv.PublicKey().Bytes())
	return pub
}
