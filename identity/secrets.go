package identity

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"
)

// Encrypt encrypts plaintext with age to recipients, each either an SSH
// public key in authorized_keys form ("ssh-ed25519 AAAA... comment", or
// "ssh-rsa ..." of at least 2048 bits) or an age X25519 recipient
// ("age1..."). Recipients that name the same key are used once. At least
// one recipient is needed. The output is binary age, as agenix writes by
// default; Decrypt and the age command also read the armored form.
func Encrypt(plaintext []byte, recipients []string) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("age: no recipients")
	}
	seen := make(map[string]bool, len(recipients))
	var rs []age.Recipient
	for _, s := range recipients {
		r, key, err := parseRecipient(s)
		if err != nil {
			return nil, err
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		rs = append(rs, r)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return buf.Bytes(), nil
}

// parseRecipient reads one recipient and returns it with a key that is the
// same for two spellings of one public key.
func parseRecipient(s string) (age.Recipient, string, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, "", fmt.Errorf("age recipient %q: not an X25519 recipient (post-quantum and plugin recipients are not supported): %v", s, err)
		}
		return r, "age:" + r.String(), nil
	case strings.HasPrefix(s, "ssh-"):
		pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return nil, "", fmt.Errorf("age recipient %q: %v", s, err)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, "", fmt.Errorf("age recipient %q: more than one key", s)
		}
		var r age.Recipient
		switch pk.Type() {
		case ssh.KeyAlgoED25519:
			r, err = newSSHEd25519Recipient(pk)
		case ssh.KeyAlgoRSA:
			r, err = newSSHRSARecipient(pk)
		default:
			return nil, "", fmt.Errorf("age recipient %q: SSH key type %s is not supported (ssh-ed25519 or ssh-rsa)", s, pk.Type())
		}
		if err != nil {
			return nil, "", fmt.Errorf("age recipient %q: %v", s, err)
		}
		return r, "ssh:" + string(pk.Marshal()), nil
	case strings.HasPrefix(s, "AGE-") || strings.Contains(s, "PRIVATE KEY"):
		// Never quote what looks like a private key.
		return nil, "", errors.New("age recipient: a private key was given where a public key (recipient) belongs")
	default:
		return nil, "", fmt.Errorf("age recipient %q: not an SSH public key (ssh-ed25519, ssh-rsa) or an age X25519 recipient (age1...)", s)
	}
}

// Decrypt decrypts an age file, binary or armored, with identity: an
// unencrypted OpenSSH (or PEM) ed25519 or RSA private key, or an age
// identity file holding one or more "AGE-SECRET-KEY-1..." lines (comment
// lines allowed, as age-keygen writes them). When no identity matches, the
// error wraps an *age.NoIdentityMatchError.
func Decrypt(ciphertext []byte, identity []byte) ([]byte, error) {
	ids, err := parseIdentity(identity)
	if err != nil {
		return nil, err
	}
	var src io.Reader = bytes.NewReader(ciphertext)
	if bytes.HasPrefix(bytes.TrimLeft(ciphertext, " \t\r\n"), []byte(armor.Header)) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return out, nil
}

// parseIdentity reads an SSH private key or an age identity file. Its
// errors never quote the input.
func parseIdentity(identity []byte) ([]age.Identity, error) {
	if bytes.HasPrefix(bytes.TrimSpace(identity), []byte("-----BEGIN ")) {
		raw, err := ssh.ParseRawPrivateKey(identity)
		if err != nil {
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, errors.New("age identity: the SSH key is passphrase-protected")
			}
			return nil, fmt.Errorf("age identity: %w", err)
		}
		var id age.Identity
		switch k := raw.(type) {
		case *ed25519.PrivateKey:
			id, err = newSSHEd25519Identity(*k)
		case ed25519.PrivateKey:
			id, err = newSSHEd25519Identity(k)
		case *rsa.PrivateKey:
			id, err = newSSHRSAIdentity(k)
		default:
			return nil, fmt.Errorf("age identity: a %s SSH key; age supports ed25519 and RSA", keyKind(raw))
		}
		if err != nil {
			return nil, errors.New("age identity: malformed SSH key")
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(identity))
	if err != nil {
		// age's messages can quote characters of a malformed key: say
		// where, not what.
		return nil, fmt.Errorf("age identity: not an SSH private key or an age identity file (%s)", identityErrorLine(identity))
	}
	return ids, nil
}

// identityErrorLine locates the first line of an age identity file that is
// not a comment, a blank line or a well-formed-looking key, without
// showing its content.
func identityErrorLine(identity []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(identity))
	sc.Buffer(nil, 1<<20)
	n, keys := 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "AGE-SECRET-KEY-") {
			return fmt.Sprintf("line %d is not an AGE-SECRET-KEY-1 line", n)
		}
		if _, err := age.ParseX25519Identity(line); err != nil {
			if _, err2 := age.ParseHybridIdentity(line); err2 != nil {
				return fmt.Sprintf("line %d is a malformed key", n)
			}
		}
		keys++
	}
	if keys == 0 {
		return "no keys found"
	}
	return "unreadable"
}

// RecipientStanza describes one recipient stanza of an age file's header.
type RecipientStanza struct {
	// Type is the stanza type: "ssh-ed25519", "ssh-rsa", "X25519",
	// "mlkem768x25519", "scrypt" or a plugin's.
	Type string
	// Tag, for ssh-ed25519 and ssh-rsa stanzas, identifies the SSH public
	// key the stanza is for (see SSHKeyTag); empty for other types, whose
	// stanzas do not reveal their recipient.
	Tag string
}

// Recipients lists the recipient stanzas of an age file, binary or armored,
// without decrypting it, so that a check can compare the SSH keys a file is
// encrypted to with the expected ones (via SSHKeyTag). It reads only the
// header.
func Recipients(ciphertext []byte) ([]RecipientStanza, error) {
	var src io.Reader = bytes.NewReader(ciphertext)
	if bytes.HasPrefix(bytes.TrimLeft(ciphertext, " \t\r\n"), []byte(armor.Header)) {
		src = armor.NewReader(src)
	}
	hdr, err := age.ExtractHeader(src)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	var out []RecipientStanza
	for line := range strings.SplitSeq(string(hdr), "\n") {
		rest, ok := strings.CutPrefix(line, "-> ")
		if !ok {
			continue
		}
		f := strings.Split(rest, " ")
		st := RecipientStanza{Type: f[0]}
		if (st.Type == "ssh-ed25519" || st.Type == "ssh-rsa") && len(f) > 1 {
			st.Tag = f[1]
		}
		out = append(out, st)
	}
	return out, nil
}

// SSHKeyTag returns the tag that ssh-ed25519 and ssh-rsa stanzas carry for
// an SSH public key in authorized_keys form: the unpadded base64 of the
// first four bytes of the SHA-256 of the key's wire encoding.
func SSHKeyTag(authorizedKey string) (string, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "", fmt.Errorf("ssh public key %q: %v", authorizedKey, err)
	}
	return sshKeyTag(pk), nil
}
