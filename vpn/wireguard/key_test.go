package wireguard

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homeedge/edge/internal/nettest"
)

// RFC 7748 section 6.1: Alice's private and public key.
const (
	rfcPrivateHex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfcPublicHex  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
)

func hexKey(t *testing.T, s string) Key {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeyLen {
		t.Fatalf("bad test key %q", s)
	}
	return Key(b)
}

func TestParseKey(t *testing.T) {
	good := hexKey(t, rfcPrivateHex)
	goodText := base64.StdEncoding.EncodeToString(good[:])
	tests := []struct {
		name    string
		in      string
		want    Key
		wantErr string // substring; "" means success
	}{
		{name: "good", in: goodText, want: good},
		{name: "surrounding whitespace", in: " \t" + goodText + "\n", want: good},
		{name: "inner newline", in: goodText[:20] + "\n" + goodText[20:], wantErr: "not base64"},
		{name: "inner space", in: goodText[:20] + " " + goodText[20:], wantErr: "not base64"},
		{name: "empty", in: "  ", wantErr: "empty"},
		{name: "bad base64", in: strings.Repeat("!", 44), wantErr: "not base64"},
		{name: "url alphabet", in: strings.Repeat("_", 43) + "=", wantErr: "not base64"},
		{name: "missing padding", in: goodText[:43], wantErr: "not base64"},
		{name: "31 bytes", in: base64.StdEncoding.EncodeToString(make([]byte, 31)), wantErr: "decodes to 31 bytes, want 32"},
		{name: "33 bytes", in: base64.StdEncoding.EncodeToString(make([]byte, 33)), wantErr: "decodes to 33 bytes, want 32"},
		{name: "nonzero padding bits", in: goodText[:42] + "B=", wantErr: "not base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.in)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("ParseKey(%q) = %v, %v; want %v, nil", tc.in, got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseKey(%q) error = %v; want one containing %q", tc.in, err, tc.wantErr)
			}
			if s := strings.TrimSpace(tc.in); len(s) > 8 && strings.Contains(err.Error(), s[:8]) {
				t.Errorf("ParseKey error %q repeats the input", err)
			}
		})
	}
}

func TestKeyString(t *testing.T) {
	k, err := GeneratePresharedKey()
	if err != nil {
		t.Fatal(err)
	}
	s := k.String()
	if len(s) != 44 {
		t.Errorf("len(String()) = %d; want 44", len(s))
	}
	back, err := ParseKey(s)
	if err != nil || back != k {
		t.Errorf("ParseKey(String()) = %v, %v; want %v, nil", back, err, k)
	}
	if k.IsZero() || !(Key{}).IsZero() {
		t.Errorf("IsZero wrong: random key %v, zero key %v", k.IsZero(), (Key{}).IsZero())
	}
}

func TestGeneratePrivateKey(t *testing.T) {
	a, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	for _, k := range []Key{a, b} {
		if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
			t.Errorf("key %x is not clamped", k)
		}
	}
}

func TestPublicKeyVector(t *testing.T) {
	got := hexKey(t, rfcPrivateHex).PublicKey()
	if want := hexKey(t, rfcPublicHex); got != want {
		t.Errorf("PublicKey() = %x; want %x", got, want)
	}
}

func TestPublicKeyMatchesWg(t *testing.T) {
	if _, err := exec.LookPath("wg"); err != nil {
		nettest.Unavailable(t, "needs the wg command")
	}
	for range 3 {
		k, err := GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("wg", "pubkey")
		cmd.Stdin = strings.NewReader(k.String() + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		if got, want := k.PublicKey().String(), strings.TrimSpace(string(out)); got != want {
			t.Errorf("PublicKey() = %s; wg pubkey says %s", got, want)
		}
	}
}

func TestReadPrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}

	p := write("good", "\n "+k.String()+" \n\n", 0o600)
	if got, err := ReadPrivateKeyFile(p); err != nil || got != k {
		t.Errorf("ReadPrivateKeyFile(0600 file) = %v, %v; want the key, nil", got, err)
	}
	p = write("owner-only", k.String(), 0o400)
	if got, err := ReadPrivateKeyFile(p); err != nil || got != k {
		t.Errorf("ReadPrivateKeyFile(0400 file) = %v, %v; want the key, nil", got, err)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		p := write("open", k.String(), mode)
		_, err := ReadPrivateKeyFile(p)
		if err == nil {
			t.Errorf("ReadPrivateKeyFile(%04o file) succeeded; want an error", mode)
			continue
		}
		for _, want := range []string{p, fmt.Sprintf("%04o", mode)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ReadPrivateKeyFile(%04o file) error %q does not contain %q", mode, err, want)
			}
		}
		if strings.Contains(err.Error(), k.String()) {
			t.Errorf("error %q contains the key", err)
		}
	}

	p = write("bad", "not a key at all\n", 0o600)
	if _, err := ReadPrivateKeyFile(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadPrivateKeyFile(bad content) error = %v; want one naming %s", err, p)
	} else if strings.Contains(err.Error(), "not a key at all") {
		t.Errorf("error %q repeats the file's content", err)
	}

	if _, err := ReadPrivateKeyFile(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadPrivateKeyFile(absent) error = %v; want a not-exist error", err)
	}
}

func TestWritePrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "private.key")
	// An existing, too open file is replaced by a 0600 one.
	if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateKeyFile(p, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %04o; want 0600", got)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), k.String()+"\n"; got != want {
		t.Errorf("content = %q; want %q", got, want)
	}
	if got, err := ReadPrivateKeyFile(p); err != nil || got != k {
		t.Errorf("ReadPrivateKeyFile = %v, %v; want the written key", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v; want only private.key", names)
	}

	if err := WritePrivateKeyFile(filepath.Join(dir, "absent", "key"), k); err == nil {
		t.Error("WritePrivateKeyFile into a missing directory succeeded")
	}
}

// FuzzParseKey: keys come from operators and the admin API. ParseKey never
// panics, an accepted key prints back as the canonical text of the input,
// and an error never repeats the input (it may be a private key).
func FuzzParseKey(f *testing.F) {
	f.Add("kR5tbtQuP9kH1XgMWq4uvbDR0KsSLajK8bsS2ErwRQA=")
	f.Add(" c2hvcnQ= ")
	f.Add("kR5tbtQuP9kH1XgMWq4uvbDR0KsSLajK8bsS2ErwRQB=")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if in := strings.TrimSpace(s); len(in) >= 8 && strings.Contains(err.Error(), in) {
				t.Errorf("the error repeats the input: %v", err)
			}
			return
		}
		if k.String() != strings.TrimSpace(s) {
			t.Errorf("ParseKey(%q).String() = %q", s, k.String())
		}
	})
}
