package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slackhq/nebula/cert"
)

func newTestCA(t testing.TB, name string) NebulaCA {
	t.Helper()
	ca, err := NewNebulaCA(name, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestNebulaCAAndHost(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	ca := newTestCA(t, "home fleet")
	if !bytes.HasPrefix(ca.CertPEM, []byte("-----BEGIN NEBULA CERTIFICATE-----\n")) ||
		!bytes.HasPrefix(ca.KeyPEM, []byte("-----BEGIN NEBULA ED25519 PRIVATE KEY-----\n")) {
		t.Fatalf("CA PEM headers: %q / %q", firstLine(ca.CertPEM), firstLine(ca.KeyPEM))
	}
	caInfo, err := NebulaCertInfo(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !caInfo.IsCA || caInfo.Name != "home fleet" || caInfo.Version != 1 || caInfo.Issuer != "" || caInfo.Network.IsValid() {
		t.Errorf("CA details = %+v", caInfo)
	}
	if d := caInfo.NotAfter.Sub(caInfo.NotBefore); d != 365*24*time.Hour {
		t.Errorf("CA validity %v", d)
	}

	addr := netip.MustParsePrefix("10.200.0.5/16")
	groups := []string{"servers", "nas"}
	host, err := SignNebulaHost(ca, "nas", addr, groups, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(host.KeyPEM, []byte("-----BEGIN NEBULA X25519 PRIVATE KEY-----\n")) {
		t.Errorf("host key header %q", firstLine(host.KeyPEM))
	}
	d, err := NebulaCertInfo(host.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "nas" || d.Network != addr || !slices.Equal(d.Groups, groups) || d.IsCA || d.Version != 1 {
		t.Errorf("host details = %+v", d)
	}
	if d.Issuer != caInfo.Fingerprint {
		t.Errorf("issuer %s, want the CA fingerprint %s", d.Issuer, caInfo.Fingerprint)
	}
	if !d.NotAfter.Equal(caInfo.NotAfter) || d.NotBefore.Before(start) || d.NotBefore.Before(caInfo.NotBefore) {
		t.Errorf("host validity %v..%v, CA %v..%v", d.NotBefore, d.NotAfter, caInfo.NotBefore, caInfo.NotAfter)
	}
	if err := VerifyNebulaHost(ca.CertPEM, host, time.Now()); err != nil {
		t.Errorf("VerifyNebulaHost: %v", err)
	}

	// validFor shorter than the CA's remaining life wins.
	short, err := SignNebulaHost(ca, "laptop", netip.MustParsePrefix("10.200.0.6/16"), nil, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := NebulaCertInfo(short.CertPEM)
	if got := ds.NotAfter.Sub(ds.NotBefore); got < 30*24*time.Hour-2*time.Second || got > 30*24*time.Hour {
		t.Errorf("validFor 30d gave %v", got)
	}
	if len(ds.Groups) != 0 {
		t.Errorf("groups %q, want none", ds.Groups)
	}
	// validFor longer than the CA's life is cut to the CA's.
	long, err := SignNebulaHost(ca, "router", netip.MustParsePrefix("10.200.0.1/16"), nil, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if dl, _ := NebulaCertInfo(long.CertPEM); !dl.NotAfter.Equal(caInfo.NotAfter) {
		t.Errorf("validFor 10y gave not-after %v, CA %v", dl.NotAfter, caInfo.NotAfter)
	}

	// Another CA's host, a swapped key, a time past expiry: all fail.
	other := newTestCA(t, "other fleet")
	stranger, err := SignNebulaHost(other, "stranger", addr, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyNebulaHost(ca.CertPEM, stranger, time.Now()); err == nil {
		t.Error("a host of another CA verified")
	}
	if err := VerifyNebulaHost(ca.CertPEM, NebulaHost{CertPEM: host.CertPEM, KeyPEM: short.KeyPEM}, time.Now()); err == nil {
		t.Error("a host cert with another host's key verified")
	}
	if err := VerifyNebulaHost(ca.CertPEM, host, time.Now().Add(366*24*time.Hour)); err == nil {
		t.Error("verified after expiry")
	}
	if err := VerifyNebulaHost(ca.CertPEM, NebulaHost{CertPEM: ca.CertPEM, KeyPEM: host.KeyPEM}, time.Now()); err == nil {
		t.Error("the CA cert verified as a host cert")
	}

	// Nothing prints key material.
	for _, s := range []string{fmt.Sprint(ca), fmt.Sprintf("%+v", ca), fmt.Sprintf("%#v", ca), fmt.Sprint(host), fmt.Sprintf("%#v", host)} {
		assertNoKeyMaterial(t, s, ca.KeyPEM)
		assertNoKeyMaterial(t, s, host.KeyPEM)
		if !strings.Contains(s, "fingerprint") {
			t.Errorf("String = %q", s)
		}
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

func TestSignNebulaHostErrors(t *testing.T) {
	ca := newTestCA(t, "fleet")
	other := newTestCA(t, "other")
	good := netip.MustParsePrefix("10.200.0.5/16")
	for _, tc := range []struct {
		name   string
		ca     NebulaCA
		host   string
		addr   netip.Prefix
		groups []string
	}{
		{"empty name", ca, "", good, nil},
		{"no address", ca, "h", netip.Prefix{}, nil},
		{"ipv6", ca, "h", netip.MustParsePrefix("fd00::5/64"), nil},
		{"network address", ca, "h", netip.MustParsePrefix("10.200.0.0/16"), nil},
		{"broadcast address", ca, "h", netip.MustParsePrefix("10.200.255.255/16"), nil},
		{"zero bits", ca, "h", netip.MustParsePrefix("10.200.0.5/0"), nil},
		{"empty group", ca, "h", good, []string{"a", ""}},
		{"key of another CA", NebulaCA{CertPEM: ca.CertPEM, KeyPEM: other.KeyPEM}, "h", good, nil},
		{"no CA", NebulaCA{}, "h", good, nil},
		{"host key as CA key", NebulaCA{CertPEM: ca.CertPEM, KeyPEM: mustHost(t, ca).KeyPEM}, "h", good, nil},
		{"expired CA", expiredCA(t), "h", good, nil},
	} {
		_, err := SignNebulaHost(tc.ca, tc.host, tc.addr, tc.groups, 0)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		assertNoKeyMaterial(t, err.Error(), tc.ca.KeyPEM)
	}
	if _, err := NewNebulaCA("", time.Hour); err == nil {
		t.Error("CA without name accepted")
	}
	if _, err := NewNebulaCA("x", 0); err == nil {
		t.Error("CA with zero validity accepted")
	}
	if _, err := NebulaCertInfo([]byte("junk")); err == nil {
		t.Error("NebulaCertInfo(junk) succeeded")
	}
	// A /32 and a /31 address are single hosts and fine.
	for _, p := range []string{"10.200.0.0/31", "10.200.0.9/32"} {
		if _, err := SignNebulaHost(ca, "h", netip.MustParsePrefix(p), nil, 0); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func mustHost(t testing.TB, ca NebulaCA) NebulaHost {
	t.Helper()
	h, err := SignNebulaHost(ca, "h", netip.MustParsePrefix("10.200.0.7/16"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// expiredCA builds a CA whose validity ended an hour ago.
func expiredCA(t testing.TB) NebulaCA {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().Truncate(time.Second)
	tbs := cert.TBSCertificate{Version: cert.Version1, Name: "old", IsCA: true, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour), PublicKey: pub, Curve: cert.Curve_CURVE25519}
	c, err := tbs.Sign(nil, cert.Curve_CURVE25519, priv)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.MarshalPEM()
	return NebulaCA{CertPEM: p, KeyPEM: cert.MarshalSigningPrivateKeyToPEM(cert.Curve_CURVE25519, priv)}
}

// nebulaCertJSON is the part of nebula-cert 1.6's print -json output the
// tests look at.
type nebulaCertJSON struct {
	Details struct {
		Name      string    `json:"name"`
		Ips       []string  `json:"ips"`
		Groups    []string  `json:"groups"`
		IsCa      bool      `json:"isCa"`
		Issuer    string    `json:"issuer"`
		NotAfter  time.Time `json:"notAfter"`
		NotBefore time.Time `json:"notBefore"`
	} `json:"details"`
	Fingerprint string `json:"fingerprint"`
}

func TestNebulaCertInterop(t *testing.T) {
	nc := needTool(t, "nebula-cert")
	dir := t.TempDir()
	ca := newTestCA(t, "home fleet")
	host, err := SignNebulaHost(ca, "nas", netip.MustParsePrefix("10.200.0.5/16"), []string{"servers", "storage"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	caCrt := writeFile(t, dir, "ca.crt", ca.CertPEM)
	caKey := writeFile(t, dir, "ca.key", ca.KeyPEM)
	hostCrt := writeFile(t, dir, "host.crt", host.CertPEM)
	writeFile(t, dir, "host.key", host.KeyPEM)

	mustRun(t, nil, nc, "verify", "-ca", caCrt, "-crt", hostCrt)

	var p nebulaCertJSON
	out := mustRun(t, nil, nc, "print", "-json", "-path", hostCrt)
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("nebula-cert print -json: %v\n%s", err, out)
	}
	caInfo, _ := NebulaCertInfo(ca.CertPEM)
	hostInfo, _ := NebulaCertInfo(host.CertPEM)
	if p.Details.Name != "nas" || !slices.Equal(p.Details.Ips, []string{"10.200.0.5/16"}) ||
		!slices.Equal(p.Details.Groups, []string{"servers", "storage"}) || p.Details.IsCa {
		t.Errorf("nebula-cert print: %s", out)
	}
	if p.Details.Issuer != caInfo.Fingerprint || p.Fingerprint != hostInfo.Fingerprint {
		t.Errorf("nebula-cert sees issuer %s and fingerprint %s, we compute %s and %s", p.Details.Issuer, p.Fingerprint, caInfo.Fingerprint, hostInfo.Fingerprint)
	}
	if !p.Details.NotAfter.Equal(hostInfo.NotAfter) {
		t.Errorf("nebula-cert not-after %v, ours %v", p.Details.NotAfter, hostInfo.NotAfter)
	}

	// A host of another CA fails verification against ours.
	other := newTestCA(t, "other fleet")
	stranger, err := SignNebulaHost(other, "stranger", netip.MustParsePrefix("10.200.0.9/16"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	strangerCrt := writeFile(t, dir, "stranger.crt", stranger.CertPEM)
	if _, errOut, err := run(nil, nc, "verify", "-ca", caCrt, "-crt", strangerCrt); err == nil {
		t.Error("nebula-cert verify accepted a host cert of another CA")
	} else {
		t.Logf("expected failure: %s", strings.TrimSpace(errOut))
	}

	// nebula-cert signs with our CA key, and we sign with its CA.
	mustRun(t, nil, nc, "sign", "-ca-crt", caCrt, "-ca-key", caKey, "-name", "theirs", "-ip", "10.200.0.20/16",
		"-out-crt", filepath.Join(dir, "theirs.crt"), "-out-key", filepath.Join(dir, "theirs.key"))
	theirsCrt, _ := os.ReadFile(filepath.Join(dir, "theirs.crt"))
	theirsKey, _ := os.ReadFile(filepath.Join(dir, "theirs.key"))
	if err := VerifyNebulaHost(ca.CertPEM, NebulaHost{CertPEM: theirsCrt, KeyPEM: theirsKey}, time.Now()); err != nil {
		t.Errorf("cert nebula-cert signed with our CA: %v", err)
	}
	mustRun(t, nil, nc, "ca", "-name", "their fleet", "-duration", "2h",
		"-out-crt", filepath.Join(dir, "their-ca.crt"), "-out-key", filepath.Join(dir, "their-ca.key"))
	var theirCA NebulaCA
	theirCA.CertPEM, _ = os.ReadFile(filepath.Join(dir, "their-ca.crt"))
	theirCA.KeyPEM, _ = os.ReadFile(filepath.Join(dir, "their-ca.key"))
	h2, err := SignNebulaHost(theirCA, "ours", netip.MustParsePrefix("10.201.0.3/24"), []string{"g"}, 0)
	if err != nil {
		t.Fatalf("signing with nebula-cert's CA: %v", err)
	}
	mustRun(t, nil, nc, "verify", "-ca", filepath.Join(dir, "their-ca.crt"), "-crt", writeFile(t, dir, "h2.crt", h2.CertPEM))
}

// TestNebulaNodeInterop has Debian's nebula daemon load the CA, host cert
// and host key in -test mode, which checks that the key is the cert's and
// that the CA signed it.
func TestNebulaNodeInterop(t *testing.T) {
	neb := needTool(t, "nebula")
	dir := t.TempDir()
	ca := newTestCA(t, "home fleet")
	host, err := SignNebulaHost(ca, "nas", netip.MustParsePrefix("10.200.0.5/16"), []string{"servers"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := mustHost(t, ca)
	caCrt := writeFile(t, dir, "ca.crt", ca.CertPEM)
	hostCrt := writeFile(t, dir, "host.crt", host.CertPEM)
	hostKey := writeFile(t, dir, "host.key", host.KeyPEM)
	otherKey := writeFile(t, dir, "other.key", other.KeyPEM)
	config := func(key string) string {
		return writeFile(t, dir, "config.yml", fmt.Appendf(nil, `pki:
  ca: %s
  cert: %s
  key: %s
static_host_map: {}
lighthouse:
  am_lighthouse: false
listen:
  host: 127.0.0.1
  port: 0
tun:
  disabled: true
firewall:
  outbound: [{port: any, proto: any, host: any}]
  inbound: [{port: any, proto: any, group: servers}]
`, caCrt, hostCrt, key))
	}
	mustRun(t, nil, neb, "-test", "-config", config(hostKey))
	out, errOut, err := run(nil, neb, "-test", "-config", config(otherKey))
	if err == nil || !strings.Contains(out+errOut, "not a pair") {
		t.Errorf("nebula -test with another host's key: %v\n%s%s", err, out, errOut)
	}
}
