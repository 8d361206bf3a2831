package identity

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"
)

// fleetKeys are the keys of an encryption test: two host keys, an admin's
// age identity and an unrelated host key.
type fleetKeys struct {
	hostA, hostB, stranger SSHHostKey
	admin                  *age.X25519Identity
}

func newFleetKeys(t testing.TB) fleetKeys {
	t.Helper()
	var k fleetKeys
	var err error
	for _, p := range []*SSHHostKey{&k.hostA, &k.hostB, &k.stranger} {
		if *p, err = NewSSHHostKey("root@host"); err != nil {
			t.Fatal(err)
		}
	}
	if k.admin, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k fleetKeys) recipients() []string {
	return []string{k.hostA.Public, k.hostB.Public, k.admin.Recipient().String()}
}

func TestEncryptDecrypt(t *testing.T) {
	k := newFleetKeys(t)
	secret := []byte("wireguard private key\x00\xff and more\n")
	ct, err := Encrypt(secret, k.recipients())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n")) {
		t.Errorf("output is not binary age: %q", firstLine(ct))
	}
	for name, id := range map[string][]byte{
		"host A": k.hostA.PrivatePEM,
		"host B": k.hostB.PrivatePEM,
		"admin":  []byte("# created: today\n# public key: " + k.admin.Recipient().String() + "\n" + k.admin.String() + "\n"),
	} {
		got, err := Decrypt(ct, id)
		if err != nil || !bytes.Equal(got, secret) {
			t.Errorf("Decrypt with %s = %q, %v", name, got, err)
		}
	}
	_, err = Decrypt(ct, k.stranger.PrivatePEM)
	var noMatch *age.NoIdentityMatchError
	if !errors.As(err, &noMatch) {
		t.Errorf("Decrypt with an unrelated key: %v, want a NoIdentityMatchError", err)
	}

	// Armored input decrypts too.
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	aw.Write(ct)
	aw.Close()
	if got, err := Decrypt(buf.Bytes(), k.hostB.PrivatePEM); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Decrypt(armored) = %q, %v", got, err)
	}

	// Empty plaintext round-trips.
	ct0, err := Encrypt(nil, []string{k.hostA.Public})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decrypt(ct0, k.hostA.PrivatePEM); err != nil || len(got) != 0 {
		t.Errorf("empty plaintext: %q, %v", got, err)
	}
}

func TestRecipients(t *testing.T) {
	k := newFleetKeys(t)
	// The same host key twice (another comment, extra spaces) is used once.
	dup := strings.Join(strings.Fields(k.hostA.Public)[:2], " ") + " other-comment  "
	ct, err := Encrypt([]byte("x"), append(k.recipients(), dup))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Recipients(ct)
	if err != nil {
		t.Fatal(err)
	}
	tagA, _ := SSHKeyTag(k.hostA.Public)
	tagB, _ := SSHKeyTag(k.hostB.Public)
	want := []RecipientStanza{{"ssh-ed25519", tagA}, {"ssh-ed25519", tagB}, {"X25519", ""}}
	if !slices.Equal(got, want) {
		t.Errorf("Recipients = %v, want %v", got, want)
	}
	tagS, _ := SSHKeyTag(k.stranger.Public)
	if tagS == tagA || len(tagA) != 6 {
		t.Errorf("tags %q %q", tagA, tagS)
	}
	if _, err := Recipients([]byte("not age")); err == nil {
		t.Error("Recipients(junk) succeeded")
	}
	if _, err := SSHKeyTag("ssh-ed25519 !!!"); err == nil {
		t.Error("SSHKeyTag(junk) succeeded")
	}
}

func TestEncryptErrors(t *testing.T) {
	k := newFleetKeys(t)
	ecdsaKey := "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="
	for name, rs := range map[string][]string{
		"none":        nil,
		"empty":       {""},
		"garbage":     {"hello"},
		"bad ssh":     {"ssh-ed25519 AAAA"},
		"ecdsa":       {ecdsaKey},
		"bad age":     {"age1xyz"},
		"two in one":  {k.hostA.Public + "\n" + k.hostB.Public},
		"private key": {k.admin.String()},
		"ssh private": {string(k.hostA.PrivatePEM)},
	} {
		if _, err := Encrypt([]byte("x"), rs); err == nil {
			t.Errorf("%s: Encrypt accepted %q", name, rs)
		} else if strings.Contains(err.Error(), k.admin.String()[16:]) {
			t.Errorf("%s: error quotes a private key: %v", name, err)
		} else {
			assertNoKeyMaterial(t, err.Error(), k.hostA.PrivatePEM)
		}
	}
}

func TestDecryptIdentityErrors(t *testing.T) {
	k := newFleetKeys(t)
	ct, err := Encrypt([]byte("x"), k.recipients())
	if err != nil {
		t.Fatal(err)
	}
	secret := k.admin.String()
	broken := secret[:20] + "q" + secret[21:]
	for name, id := range map[string]string{
		"broken age key": broken,
		"truncated":      secret[:30],
		"empty":          "",
		"comments only":  "# nothing\n",
		"truncated pem":  string(k.hostA.PrivatePEM[:120]),
		"ssh public key": k.hostA.Public,
		"garbage line":   "# ok\n" + secret + "\nnope\n",
	} {
		_, err := Decrypt(ct, []byte(id))
		if err == nil {
			t.Errorf("%s: Decrypt succeeded", name)
			continue
		}
		for _, l := range append(pemBody(k.hostA.PrivatePEM), secret[16:], broken[16:], secret[16:30]) {
			if strings.Contains(err.Error(), l[:min(len(l), 14)]) {
				t.Errorf("%s: error %q shows key material", name, err)
			}
		}
	}
	// A passphrase-protected SSH key is refused with a clear message.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pw"))
	if _, err := Decrypt(ct, pem.EncodeToMemory(block)); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("encrypted SSH key: %v", err)
	}
}

func TestEd25519PublicToX25519(t *testing.T) {
	for range 50 {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		u, err := ed25519PublicToX25519(pub)
		if err != nil {
			t.Fatal(err)
		}
		h := sha512.Sum512(priv.Seed())
		x, _ := ecdh.X25519().NewPrivateKey(h[:32])
		if !bytes.Equal(u, x.PublicKey().Bytes()) {
			t.Fatalf("map of %x = %x, want %x", pub, u, x.PublicKey().Bytes())
		}
	}
	identity := make([]byte, 32)
	identity[0] = 1 // y = 1
	if _, err := ed25519PublicToX25519(identity); err == nil {
		t.Error("identity point accepted")
	}
	// y = 2 is not on the curve.
	notOnCurve := make([]byte, 32)
	notOnCurve[0] = 2
	if _, err := ed25519PublicToX25519(notOnCurve); err == nil {
		t.Error("y = 2 accepted")
	}
}

func TestRSARecipient(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(&rk.PublicKey)
	block, _ := ssh.MarshalPrivateKey(rk, "")
	privPEM := pem.EncodeToMemory(block)
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " admin@old"
	ct, err := Encrypt([]byte("rsa secret"), []string{pub})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decrypt(ct, privPEM); err != nil || string(got) != "rsa secret" {
		t.Errorf("Decrypt = %q, %v", got, err)
	}
	st, _ := Recipients(ct)
	tag, _ := SSHKeyTag(pub)
	if len(st) != 1 || st[0] != (RecipientStanza{"ssh-rsa", tag}) {
		t.Errorf("Recipients = %v", st)
	}
	// The age command decrypts it too, when installed (TestAgeInterop
	// carries the skip rule for it).
	if age, err := exec.LookPath("age"); err == nil {
		dir := t.TempDir()
		out := mustRun(t, ct, age, "-d", "-i", writeFile(t, dir, "id_rsa", privPEM))
		if out != "rsa secret" {
			t.Errorf("age -d with the RSA key: %q", out)
		}
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ssmall, _ := ssh.NewPublicKey(&small.PublicKey)
	if _, err := Encrypt([]byte("x"), []string{string(ssh.MarshalAuthorizedKey(ssmall))}); err == nil {
		t.Error("a 1024-bit RSA key was accepted")
	}
}

func TestAgeInterop(t *testing.T) {
	ageCmd := needTool(t, "age")
	dir := t.TempDir()
	k := newFleetKeys(t)
	secret := []byte("the nas's WireGuard key: not really\n")
	ct, err := Encrypt(secret, k.recipients())
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "wg.age", ct)
	for name, key := range map[string][]byte{"host A": k.hostA.PrivatePEM, "host B": k.hostB.PrivatePEM} {
		keyFile := writeFile(t, dir, "ssh_host_ed25519_key", key)
		out, errOut, err := run(nil, ageCmd, "-d", "-i", keyFile, file)
		if err != nil || out != string(secret) {
			t.Errorf("age -d -i <%s key>: %v %q\n%s", name, err, out, errOut)
		}
	}
	strangerFile := writeFile(t, dir, "stranger_key", k.stranger.PrivatePEM)
	out, errOut, err := run(nil, ageCmd, "-d", "-i", strangerFile, file)
	if err == nil || out != "" || !strings.Contains(errOut, "no identity matched") {
		t.Errorf("age -d with an unrelated key: %v %q %q", err, out, errOut)
	}
	// The admin's age identity, in Go and with the age command.
	idFile := writeFile(t, dir, "admin.txt", []byte(k.admin.String()+"\n"))
	if got, err := Decrypt(ct, []byte(k.admin.String())); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Decrypt with the age identity: %q, %v", got, err)
	}
	if out := mustRun(t, nil, ageCmd, "-d", "-i", idFile, file); out != string(secret) {
		t.Errorf("age -d -i admin.txt: %q", out)
	}

	// Files the age command makes decrypt here: to an SSH recipients file,
	// to an age recipient, armored.
	pubFile := writeFile(t, dir, "host.pub", []byte(k.hostA.Public+"\n"))
	theirs := filepath.Join(dir, "theirs.age")
	mustRun(t, []byte("made by age 1.1"), ageCmd, "-R", pubFile, "-o", theirs)
	theirCT, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decrypt(theirCT, k.hostA.PrivatePEM); err != nil || string(got) != "made by age 1.1" {
		t.Errorf("Decrypt(age -R file) = %q, %v", got, err)
	}
	if st, err := Recipients(theirCT); err != nil || len(st) != 1 || st[0].Type != "ssh-ed25519" {
		t.Errorf("Recipients(age -R file) = %v, %v", st, err)
	}
	armored := mustRun(t, []byte("armored"), ageCmd, "-a", "-r", k.admin.Recipient().String(), "-r", k.hostB.Public)
	if got, err := Decrypt([]byte(armored), k.hostB.PrivatePEM); err != nil || string(got) != "armored" {
		t.Errorf("Decrypt(age -a) = %q, %v", got, err)
	}
	if got, err := Decrypt([]byte(armored), []byte(k.admin.String())); err != nil || string(got) != "armored" {
		t.Errorf("Decrypt(age -a) with the age identity = %q, %v", got, err)
	}
}

// fuzzIdentity and fuzzSSHKey are fixed identities for FuzzDecrypt (test
// keys, used nowhere else).
const (
	fuzzIdentity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
	fuzzSSHKey   = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBm2HymM7sp2RkB+lAoOyNwtIKhG4pR0x6unj2jSAKU2QAAAIipPjRoqT40
aAAAAAtzc2gtZWQyNTUxOQAAACBm2HymM7sp2RkB+lAoOyNwtIKhG4pR0x6unj2jSAKU2Q
AAAEAQzF3+upPk4oXZRLI15gFtiW8AjO6kzCwOEGY+DvVLjGbYfKYzuynZGQH6UCg7I3C0
gqEbilHTHq6ePaNIApTZAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
`
)

// FuzzDecrypt feeds arbitrary bytes to Decrypt, with an age identity and
// with an SSH key (which runs this package's ssh-ed25519 stanza code), and
// to Recipients: none may panic.
func FuzzDecrypt(f *testing.F) {
	id, err := age.ParseX25519Identity(fuzzIdentity)
	if err != nil {
		f.Fatal(err)
	}
	host, err := ParseSSHHostKey([]byte(fuzzSSHKey))
	if err != nil {
		f.Fatal(err)
	}
	for _, rs := range [][]string{{id.Recipient().String()}, {host.Public, id.Recipient().String()}, {host.Public}} {
		for _, pt := range []string{"", "hello", strings.Repeat("x", 70000)} {
			ct, err := Encrypt([]byte(pt), rs)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(ct)
		}
	}
	f.Add([]byte("age-encryption.org/v1\n-> X25519 \n--- \n"))
	f.Add([]byte("age-encryption.org/v1\n-> ssh-ed25519 AAAA AAAA\n\n--- \n"))
	f.Add([]byte(armor.Header + "\n\n-----END AGE ENCRYPTED FILE-----\n"))
	f.Fuzz(func(t *testing.T, ct []byte) {
		for _, identity := range []string{fuzzIdentity, fuzzSSHKey} {
			pt, err := Decrypt(ct, []byte(identity))
			if err == nil && pt == nil {
				t.Error("nil plaintext without an error")
			}
		}
		if st, err := Recipients(ct); err == nil {
			for _, s := range st {
				if s.Type == "" {
					t.Errorf("Recipients: empty stanza type in %v", st)
				}
			}
		}
	})
}
