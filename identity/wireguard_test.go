package identity

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestWireGuardKeys(t *testing.T) {
	k, err := NewWireGuardKeys()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := base64.StdEncoding.DecodeString(k.Private)
	if err != nil || len(priv) != 32 || len(k.Private) != 44 {
		t.Fatalf("Private is not 32 bytes of base64: %v", err)
	}
	if priv[0]&7 != 0 || priv[31]&128 != 0 || priv[31]&64 == 0 {
		t.Errorf("private key not clamped: first byte %08b, last byte %08b", priv[0], priv[31])
	}
	pub, err := WireGuardPublic(k.Private)
	if err != nil || pub != k.Public || len(pub) != 44 {
		t.Errorf("WireGuardPublic = %q, %v; want %q", pub, err, k.Public)
	}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(format, k); strings.Contains(s, k.Private) {
			t.Errorf("%s prints the private key: %s", format, s)
		}
	}
}

func TestWireGuardPublicVector(t *testing.T) {
	// RFC 7748 section 6.1, Alice.
	priv, _ := hex.DecodeString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	want, _ := hex.DecodeString("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	got, err := WireGuardPublic(base64.StdEncoding.EncodeToString(priv))
	if err != nil || got != base64.StdEncoding.EncodeToString(want) {
		t.Errorf("WireGuardPublic = %q, %v", got, err)
	}
	for _, bad := range []string{"", "abc", base64.StdEncoding.EncodeToString(priv[:31]), base64.RawStdEncoding.EncodeToString(priv), "!" + base64.StdEncoding.EncodeToString(priv)[1:]} {
		_, err := WireGuardPublic(bad)
		if err == nil {
			t.Errorf("WireGuardPublic(%q) accepted", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error %q quotes the private key", err)
		}
	}
}

func TestWireGuardInterop(t *testing.T) {
	wg := needTool(t, "wg")
	for range 5 {
		k, err := NewWireGuardKeys()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(mustRun(t, []byte(k.Private+"\n"), wg, "pubkey")); got != k.Public {
			t.Errorf("wg pubkey = %q, want %q", got, k.Public)
		}
	}
	// A key from wg genkey gives the public key wg pubkey prints.
	priv := strings.TrimSpace(mustRun(t, nil, wg, "genkey"))
	want := strings.TrimSpace(mustRun(t, []byte(priv+"\n"), wg, "pubkey"))
	if got, err := WireGuardPublic(priv); err != nil || got != want {
		t.Errorf("WireGuardPublic(wg genkey) = %q, %v; want %q", got, err, want)
	}
}
