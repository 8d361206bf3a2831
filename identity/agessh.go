package identity

// This file implements age's ssh-ed25519 and ssh-rsa recipient stanzas (the
// ones agenix uses) on top of the age.Recipient and age.Identity interfaces,
// following the age v1 specification and matching the stanzas of
// filippo.io/age/agessh and the age command.

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/ssh"
)

const (
	sshEd25519Label = "age-encryption.org/v1/ssh-ed25519"
	sshRSALabel     = "age-encryption.org/v1/ssh-rsa"
	// minRSABits is the smallest RSA key age accepts as a recipient.
	minRSABits = 2048
)

// stanzaB64 is the base64 flavour of age headers: standard alphabet,
// no padding.
var stanzaB64 = base64.RawStdEncoding.Strict()

// sshKeyTag is the recipient tag of the ssh-* stanzas: the first four bytes
// of the SHA-256 of the SSH wire encoding of the public key.
func sshKeyTag(pk ssh.PublicKey) string {
	h := sha256.Sum256(pk.Marshal())
	return stanzaB64.EncodeToString(h[:4])
}

// sshEd25519Recipient wraps file keys for an ssh-ed25519 public key.
type sshEd25519Recipient struct {
	wire  []byte // SSH wire encoding of the public key
	tag   string
	their *ecdh.PublicKey // the key's Montgomery form
}

func newSSHEd25519Recipient(pk ssh.PublicKey) (*sshEd25519Recipient, error) {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return nil, errors.New("not an ed25519 key")
	}
	epk, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an ed25519 key")
	}
	u, err := ed25519PublicToX25519(epk)
	if err != nil {
		return nil, err
	}
	their, err := ecdh.X25519().NewPublicKey(u)
	if err != nil {
		return nil, err
	}
	return &sshEd25519Recipient{wire: pk.Marshal(), tag: sshKeyTag(pk), their: their}, nil
}

// Wrap implements age.Recipient.
func (r *sshEd25519Recipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	shared, err := eph.ECDH(r.their)
	if err != nil {
		return nil, err
	}
	ours := eph.PublicKey().Bytes()
	key, err := sshEd25519WrapKey(r.wire, shared, ours, r.their.Bytes())
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	body := aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), fileKey, nil)
	return []*age.Stanza{{
		Type: "ssh-ed25519",
		Args: []string{r.tag, stanzaB64.EncodeToString(ours)},
		Body: body,
	}}, nil
}

// sshEd25519WrapKey derives the stanza's wrapping key from the X25519
// shared secret: the secret is first multiplied by a tweak bound to the SSH
// public key, then fed to HKDF-SHA-256 salted with both X25519 shares.
func sshEd25519WrapKey(wire, shared, ephemeral, recipient []byte) ([]byte, error) {
	tweak, err := hkdf.Key(sha256.New, nil, wire, sshEd25519Label, 32)
	if err != nil {
		return nil, err
	}
	t, err := ecdh.X25519().NewPrivateKey(tweak)
	if err != nil {
		return nil, err
	}
	sp, err := ecdh.X25519().NewPublicKey(shared)
	if err != nil {
		return nil, err
	}
	tweaked, err := t.ECDH(sp)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 0, len(ephemeral)+len(recipient))
	salt = append(salt, ephemeral...)
	salt = append(salt, recipient...)
	return hkdf.Key(sha256.New, tweaked, salt, sshEd25519Label, chacha20poly1305.KeySize)
}

// sshEd25519Identity unwraps ssh-ed25519 stanzas with an ed25519 SSH
// private key.
type sshEd25519Identity struct {
	wire   []byte
	tag    string
	secret *ecdh.PrivateKey
}

func newSSHEd25519Identity(k ed25519.PrivateKey) (*sshEd25519Identity, error) {
	pk, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	h := sha512.Sum512(k.Seed())
	secret, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		return nil, err
	}
	return &sshEd25519Identity{wire: pk.Marshal(), tag: sshKeyTag(pk), secret: secret}, nil
}

// Unwrap implements age.Identity.
func (i *sshEd25519Identity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != "ssh-ed25519" {
			continue
		}
		if len(s.Args) != 2 {
			return nil, errors.New("invalid ssh-ed25519 recipient stanza")
		}
		eph, err := stanzaB64.DecodeString(s.Args[1])
		if err != nil || len(eph) != 32 {
			return nil, errors.New("invalid ssh-ed25519 recipient stanza")
		}
		if s.Args[0] != i.tag {
			continue
		}
		ephPub, err := ecdh.X25519().NewPublicKey(eph)
		if err != nil {
			return nil, errors.New("invalid ssh-ed25519 recipient stanza")
		}
		shared, err := i.secret.ECDH(ephPub)
		if err != nil {
			return nil, errors.New("invalid ssh-ed25519 recipient stanza: low-order share")
		}
		key, err := sshEd25519WrapKey(i.wire, shared, eph, i.secret.PublicKey().Bytes())
		if err != nil {
			return nil, err
		}
		aead, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, err
		}
		fileKey, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), s.Body, nil)
		if err != nil {
			// The tag is a short hint that can collide: try the others.
			continue
		}
		return fileKey, nil
	}
	return nil, age.ErrIncorrectIdentity
}

// sshRSARecipient wraps file keys for an ssh-rsa public key with RSA-OAEP.
type sshRSARecipient struct {
	tag string
	pub *rsa.PublicKey
}

func newSSHRSARecipient(pk ssh.PublicKey) (*sshRSARecipient, error) {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	pub, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits, age needs at least %d", pub.N.BitLen(), minRSABits)
	}
	return &sshRSARecipient{tag: sshKeyTag(pk), pub: pub}, nil
}

// Wrap implements age.Recipient.
func (r *sshRSARecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	body, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, r.pub, fileKey, []byte(sshRSALabel))
	if err != nil {
		return nil, err
	}
	return []*age.Stanza{{Type: "ssh-rsa", Args: []string{r.tag}, Body: body}}, nil
}

// sshRSAIdentity unwraps ssh-rsa stanzas with an RSA SSH private key.
type sshRSAIdentity struct {
	tag string
	key *rsa.PrivateKey
}

func newSSHRSAIdentity(k *rsa.PrivateKey) (*sshRSAIdentity, error) {
	pk, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &sshRSAIdentity{tag: sshKeyTag(pk), key: k}, nil
}

// Unwrap implements age.Identity.
func (i *sshRSAIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != "ssh-rsa" {
			continue
		}
		if len(s.Args) != 1 {
			return nil, errors.New("invalid ssh-rsa recipient stanza")
		}
		if s.Args[0] != i.tag {
			continue
		}
		fileKey, err := rsa.DecryptOAEP(sha256.New(), nil, i.key, s.Body, []byte(sshRSALabel))
		if err != nil {
			continue
		}
		return fileKey, nil
	}
	return nil, age.ErrIncorrectIdentity
}

// Curve25519 field constants for the Edwards-to-Montgomery map.
var (
	fieldP   = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edwardsD = func() *big.Int {
		// d = -121665 / 121666 mod p
		inv := new(big.Int).ModInverse(big.NewInt(121666), fieldP)
		d := new(big.Int).Mul(big.NewInt(-121665), inv)
		return d.Mod(d, fieldP)
	}()
)

// ed25519PublicToX25519 maps an ed25519 public key (a point in Edwards form)
// to the u-coordinate of the birationally equivalent Montgomery point,
// u = (1 + y) / (1 - y). It rejects encodings that are not on the curve and
// the identity point. The inputs are public, so the arithmetic need not be
// constant-time.
func ed25519PublicToX25519(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("invalid ed25519 public key length")
	}
	be := make([]byte, 32)
	for i := range 32 {
		be[i] = pub[31-i]
	}
	be[0] &= 0x7f // drop the sign bit of x
	y := new(big.Int).SetBytes(be)
	y.Mod(y, fieldP)

	// The point is on the curve when x^2 = (y^2 - 1) / (d y^2 + 1) is a square.
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, fieldP)
	num := new(big.Int).Sub(y2, big.NewInt(1))
	num.Mod(num, fieldP)
	den := new(big.Int).Mul(edwardsD, y2)
	den.Add(den, big.NewInt(1))
	den.Mod(den, fieldP)
	denInv := new(big.Int).ModInverse(den, fieldP)
	if denInv == nil {
		return nil, errors.New("invalid ed25519 public key")
	}
	x2 := num.Mul(num, denInv)
	x2.Mod(x2, fieldP)
	if x2.Sign() != 0 && big.Jacobi(x2, fieldP) != 1 {
		return nil, errors.New("invalid ed25519 public key: not a point on the curve")
	}

	oneMinusY := new(big.Int).Sub(big.NewInt(1), y)
	oneMinusY.Mod(oneMinusY, fieldP)
	inv := oneMinusY.ModInverse(oneMinusY, fieldP)
	if inv == nil {
		return nil, errors.New("invalid ed25519 public key: identity point")
	}
	u := new(big.Int).Add(big.NewInt(1), y)
	u.Mul(u, inv)
	u.Mod(u, fieldP)

	out := make([]byte, 32)
	u.FillBytes(out)
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
