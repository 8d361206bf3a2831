package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// SSHHostKey is an ed25519 SSH host key.
type SSHHostKey struct {
	// PrivatePEM is the private key in OpenSSH format ("-----BEGIN OPENSSH
	// PRIVATE KEY-----") without a passphrase, what
	// /etc/ssh/ssh_host_ed25519_key holds.
	PrivatePEM []byte
	// Public is the public key in authorized_keys form:
	// "ssh-ed25519 AAAA..." followed by " <comment>" when there is a comment.
	Public string
}

// String returns the public key only.
func (k SSHHostKey) String() string { return k.Public }

// GoString returns the public key only, so that %#v prints no private key.
func (k SSHHostKey) GoString() string {
	return fmt.Sprintf("identity.SSHHostKey{Public: %q}", k.Public)
}

// NewSSHHostKey makes an ed25519 SSH host key with comment (for example
// "root@router"; it may be empty but may not contain a line break).
func NewSSHHostKey(comment string) (SSHHostKey, error) {
	if strings.ContainsAny(comment, "\r\n\x00") {
		return SSHHostKey{}, fmt.Errorf("ssh host key: comment %q contains a line break or NUL", comment)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SSHHostKey{}, fmt.Errorf("ssh host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return SSHHostKey{}, fmt.Errorf("ssh host key: encoding the private key: %w", err)
	}
	public, err := authorizedKey(pub, comment)
	if err != nil {
		return SSHHostKey{}, err
	}
	return SSHHostKey{PrivatePEM: pem.EncodeToMemory(block), Public: public}, nil
}

// ParseSSHHostKey reads an unencrypted ed25519 SSH private key and derives
// its public key, with the comment stored in the key when it is in OpenSSH
// format. PrivatePEM of the result is the input when that is in OpenSSH
// format, and the key re-encoded in OpenSSH format otherwise (PKCS #8).
func ParseSSHHostKey(privatePEM []byte) (SSHHostKey, error) {
	raw, err := ssh.ParseRawPrivateKey(privatePEM)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return SSHHostKey{}, errors.New("ssh host key: the key is passphrase-protected; host keys must not be")
		}
		return SSHHostKey{}, fmt.Errorf("ssh host key: %w", err)
	}
	var priv ed25519.PrivateKey
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		priv = *k
	case ed25519.PrivateKey:
		priv = k
	default:
		return SSHHostKey{}, fmt.Errorf("ssh host key: a %s key, not ed25519", keyKind(raw))
	}
	if len(priv) != ed25519.PrivateKeySize {
		return SSHHostKey{}, errors.New("ssh host key: malformed ed25519 key")
	}
	pub := priv.Public().(ed25519.PublicKey)

	block, _ := pem.Decode(privatePEM)
	var out []byte
	comment := ""
	if block != nil && block.Type == "OPENSSH PRIVATE KEY" {
		comment = opensshComment(block.Bytes)
		out = bytes.Clone(privatePEM)
	} else {
		b, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			return SSHHostKey{}, fmt.Errorf("ssh host key: encoding the private key: %w", err)
		}
		out = pem.EncodeToMemory(b)
	}
	if strings.ContainsAny(comment, "\r\n\x00") {
		comment = ""
	}
	public, err := authorizedKey(pub, comment)
	if err != nil {
		return SSHHostKey{}, err
	}
	return SSHHostKey{PrivatePEM: out, Public: public}, nil
}

// authorizedKey formats pub in authorized_keys form with an optional comment.
func authorizedKey(pub ed25519.PublicKey, comment string) (string, error) {
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("ssh host key: public key: %w", err)
	}
	s := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sp)), "\n")
	if comment != "" {
		s += " " + comment
	}
	return s, nil
}

// keyKind names the type of a parsed private key without printing it.
func keyKind(k any) string {
	s := fmt.Sprintf("%T", k)
	s = strings.TrimPrefix(s, "*")
	return strings.TrimSuffix(s, ".PrivateKey")
}

// opensshComment returns the comment of the first key in the body of an
// unencrypted "openssh-key-v1" private key, or "" when there is none or the
// body cannot be read.
func opensshComment(body []byte) string {
	const magic = "openssh-key-v1\x00"
	if !bytes.HasPrefix(body, []byte(magic)) {
		return ""
	}
	var outer struct {
		CipherName   string
		KdfName      string
		KdfOpts      string
		NumKeys      uint32
		PubKey       []byte
		PrivKeyBlock []byte
		Rest         []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(body[len(magic):], &outer); err != nil || outer.CipherName != "none" {
		return ""
	}
	var inner struct {
		Check1  uint32
		Check2  uint32
		Keytype string
		Rest    []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(outer.PrivKeyBlock, &inner); err != nil || inner.Keytype != ssh.KeyAlgoED25519 {
		return ""
	}
	var key struct {
		Pub     []byte
		Priv    []byte
		Comment string
		Pad     []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(inner.Rest, &key); err != nil {
		return ""
	}
	return key.Comment
}
