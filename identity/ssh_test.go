package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestSSHHostKeyRoundTrip(t *testing.T) {
	k, err := NewSSHHostKey("root@router")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(k.PrivatePEM, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Errorf("PrivatePEM starts %q", k.PrivatePEM[:min(40, len(k.PrivatePEM))])
	}
	f := strings.Fields(k.Public)
	if len(f) != 3 || f[0] != "ssh-ed25519" || !strings.HasPrefix(f[1], "AAAA") || f[2] != "root@router" {
		t.Errorf("Public = %q", k.Public)
	}

	back, err := ParseSSHHostKey(k.PrivatePEM)
	if err != nil {
		t.Fatal(err)
	}
	if back.Public != k.Public || !bytes.Equal(back.PrivatePEM, k.PrivatePEM) {
		t.Errorf("ParseSSHHostKey = %q, want %q and the same PEM", back.Public, k.Public)
	}

	signer, err := ssh.ParsePrivateKey(k.PrivatePEM)
	if err != nil {
		t.Fatalf("x/crypto/ssh.ParsePrivateKey: %v", err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); got != f[0]+" "+f[1] {
		t.Errorf("x/crypto public key %q, want %q", got, f[0]+" "+f[1])
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Public))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(rand.Reader, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Verify([]byte("hello"), sig); err != nil {
		t.Errorf("signature by the private key does not verify with Public: %v", err)
	}
}

func TestSSHHostKeyComment(t *testing.T) {
	k, err := NewSSHHostKey("")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(k.Public); len(f) != 2 {
		t.Errorf("Public without comment = %q", k.Public)
	}
	if back, err := ParseSSHHostKey(k.PrivatePEM); err != nil || back.Public != k.Public {
		t.Errorf("ParseSSHHostKey = %q, %v; want %q", back.Public, err, k.Public)
	}
	k, err = NewSSHHostKey("host key of nas")
	if err != nil || !strings.HasSuffix(k.Public, " host key of nas") {
		t.Errorf("comment with spaces: %q, %v", k.Public, err)
	}
	if _, err := NewSSHHostKey("a\nssh-ed25519 AAAA"); err == nil {
		t.Error("a comment with a newline was accepted")
	}
}

func TestParseSSHHostKeyOtherForms(t *testing.T) {
	// PKCS #8 ed25519 is read and re-encoded in OpenSSH format.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseSSHHostKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(k.PrivatePEM, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("PKCS #8 input not re-encoded: %q", k.PrivatePEM[:30])
	}
	sp, _ := ssh.NewPublicKey(priv.Public())
	if want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))); k.Public != want {
		t.Errorf("Public = %q, want %q", k.Public, want)
	}

	// An RSA key is refused without showing it.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(rk, "")
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(block)
	_, err = ParseSSHHostKey(rsaPEM)
	if err == nil || !strings.Contains(err.Error(), "not ed25519") {
		t.Errorf("RSA key: err = %v", err)
	}
	assertNoKeyMaterial(t, err.Error(), rsaPEM)

	// A passphrase-protected key is refused.
	block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSSHHostKey(pem.EncodeToMemory(block)); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("encrypted key: err = %v", err)
	}
	if _, err := ParseSSHHostKey([]byte("not a key")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestSSHHostKeyPrintsNoPrivateKey(t *testing.T) {
	k, err := NewSSHHostKey("c")
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoKeyMaterial(t, fmt.Sprintf(format, k), k.PrivatePEM)
		assertNoKeyMaterial(t, fmt.Sprintf(format, []SSHHostKey{k}), k.PrivatePEM)
	}
}

func assertNoKeyMaterial(t *testing.T, s string, keyPEM []byte) {
	t.Helper()
	for _, l := range pemBody(keyPEM) {
		if strings.Contains(s, l[:16]) {
			t.Errorf("%q contains private key material", s)
			return
		}
	}
}

func TestSSHKeygenInterop(t *testing.T) {
	keygen := needTool(t, "ssh-keygen")
	dir := t.TempDir()

	// ssh-keygen reads our key and derives the same public key.
	k, err := NewSSHHostKey("root@nas")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "ssh_host_ed25519_key", k.PrivatePEM)
	out := mustRun(t, nil, keygen, "-y", "-f", path)
	got := strings.Fields(out)
	want := strings.Fields(k.Public)
	if len(got) < 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ssh-keygen -y printed %q, want %q", out, k.Public)
	}

	// We read a key ssh-keygen made, with its comment.
	theirs := filepath.Join(dir, "theirs")
	mustRun(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "root@theirs", "-f", theirs)
	priv, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(theirs + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseSSHHostKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Public != strings.TrimSpace(string(pub)) {
		t.Errorf("ParseSSHHostKey(ssh-keygen key).Public = %q, want %q", k2.Public, strings.TrimSpace(string(pub)))
	}
}
