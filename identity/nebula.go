package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/slackhq/nebula/cert"
)

// NebulaCA is a Nebula certificate authority: a self-signed version 1
// certificate with an ed25519 key.
type NebulaCA struct {
	// CertPEM is the CA certificate ("NEBULA CERTIFICATE"), what nodes get as
	// pki.ca.
	CertPEM []byte
	// KeyPEM is the CA's signing key ("NEBULA ED25519 PRIVATE KEY"),
	// readable by nebula-cert sign -ca-key.
	KeyPEM []byte
}

// String describes the CA certificate without its key.
func (c NebulaCA) String() string { return describeNebulaCert("nebula CA", c.CertPEM) }

// GoString describes the CA certificate without its key.
func (c NebulaCA) GoString() string { return c.String() }

// NebulaHost is a Nebula host certificate and the host's key.
type NebulaHost struct {
	// CertPEM is the host certificate ("NEBULA CERTIFICATE"), pki.cert.
	CertPEM []byte
	// KeyPEM is the host's X25519 private key ("NEBULA X25519 PRIVATE KEY"),
	// pki.key.
	KeyPEM []byte
}

// String describes the host certificate without the key.
func (h NebulaHost) String() string { return describeNebulaCert("nebula host", h.CertPEM) }

// GoString describes the host certificate without the key.
func (h NebulaHost) GoString() string { return h.String() }

// NebulaCertDetails is what NebulaCertInfo reads from a certificate.
type NebulaCertDetails struct {
	// Version is the certificate format version (1 for the certificates
	// made here).
	Version int
	// Name is the certificate's name.
	Name string
	// Network is the host's overlay address with the overlay network's
	// prefix length (10.200.0.5/16); the zero Prefix when the certificate
	// has none, as with a CA without network constraints.
	Network netip.Prefix
	// Groups are the certificate's groups.
	Groups []string
	// IsCA reports whether the certificate is a CA certificate.
	IsCA bool
	// NotBefore and NotAfter bound the validity, to the second.
	NotBefore, NotAfter time.Time
	// Issuer is the hex SHA-256 fingerprint of the signing CA's certificate;
	// empty for a CA.
	Issuer string
	// Fingerprint is the hex SHA-256 fingerprint of this certificate.
	Fingerprint string
}

// NewNebulaCA makes a Nebula CA named name, valid from now for validFor,
// without group or network constraints. Nebula 1.6 and later read it.
func NewNebulaCA(name string, validFor time.Duration) (NebulaCA, error) {
	if name == "" {
		return NebulaCA{}, errors.New("nebula CA: empty name")
	}
	if validFor < time.Second {
		return NebulaCA{}, fmt.Errorf("nebula CA %q: validity %v is shorter than a second", name, validFor)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return NebulaCA{}, fmt.Errorf("nebula CA %q: %w", name, err)
	}
	now := time.Now().Truncate(time.Second)
	tbs := cert.TBSCertificate{
		Version:   cert.Version1,
		Name:      name,
		IsCA:      true,
		NotBefore: now,
		NotAfter:  now.Add(validFor),
		PublicKey: pub,
		Curve:     cert.Curve_CURVE25519,
	}
	c, err := tbs.Sign(nil, cert.Curve_CURVE25519, priv)
	if err != nil {
		return NebulaCA{}, fmt.Errorf("nebula CA %q: signing: %w", name, err)
	}
	certPEM, err := c.MarshalPEM()
	if err != nil {
		return NebulaCA{}, fmt.Errorf("nebula CA %q: %w", name, err)
	}
	return NebulaCA{
		CertPEM: certPEM,
		KeyPEM:  cert.MarshalSigningPrivateKeyToPEM(cert.Curve_CURVE25519, priv),
	}, nil
}

// SignNebulaHost makes an X25519 key pair for a host and signs its version 1
// certificate with ca: name, the overlay address addr with the overlay
// network's prefix length (10.200.0.5/16, IPv4 only in version 1), and
// groups. The certificate is valid from now until the CA expires or for
// validFor, whichever ends sooner; validFor <= 0 means until the CA expires.
func SignNebulaHost(ca NebulaCA, name string, addr netip.Prefix, groups []string, validFor time.Duration) (NebulaHost, error) {
	if name == "" {
		return NebulaHost{}, errors.New("nebula host cert: empty name")
	}
	if !addr.IsValid() || !addr.Addr().Is4() {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: address %v is not an IPv4 address with a prefix length (version 1 certificates are IPv4 only)", name, addr)
	}
	if addr.Bits() == 0 || addr.Bits() < 31 && (addr.Addr() == addr.Masked().Addr() || addr.Addr() == lastAddr(addr)) {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: %v is the network or broadcast address, not a host address", name, addr)
	}
	for _, g := range groups {
		if g == "" {
			return NebulaHost{}, fmt.Errorf("nebula host cert %q: empty group name", name)
		}
	}

	caCert, _, err := cert.UnmarshalCertificateFromPEM(ca.CertPEM)
	if err != nil {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: reading the CA certificate: %w", name, err)
	}
	if !caCert.IsCA() || caCert.Curve() != cert.Curve_CURVE25519 {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: the CA certificate %q is not an ed25519 CA", name, caCert.Name())
	}
	caKey, _, curve, err := cert.UnmarshalSigningPrivateKeyFromPEM(ca.KeyPEM)
	if err != nil || curve != cert.Curve_CURVE25519 {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: the CA key is not an unencrypted Nebula ed25519 private key", name)
	}
	if caCert.VerifyPrivateKey(cert.Curve_CURVE25519, caKey) != nil {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: the CA key does not belong to the CA certificate %q", name, caCert.Name())
	}

	now := time.Now().Truncate(time.Second)
	notBefore := now
	if caCert.NotBefore().After(notBefore) {
		notBefore = caCert.NotBefore()
	}
	notAfter := caCert.NotAfter()
	if validFor > 0 {
		if end := now.Add(validFor).Truncate(time.Second); end.Before(notAfter) {
			notAfter = end
		}
	}
	if !notAfter.After(notBefore) || !notAfter.After(now) {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: the CA %q expires %s, no validity left", name, caCert.Name(), caCert.NotAfter().UTC().Format(time.RFC3339))
	}

	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: %w", name, err)
	}
	var gs []string
	if len(groups) > 0 {
		gs = slices.Clone(groups)
	}
	tbs := cert.TBSCertificate{
		Version:   cert.Version1,
		Name:      name,
		Networks:  []netip.Prefix{addr},
		Groups:    gs,
		NotBefore: notBefore,
		NotAfter:  notAfter,
		PublicKey: priv.PublicKey().Bytes(),
		Curve:     cert.Curve_CURVE25519,
	}
	c, err := tbs.Sign(caCert, cert.Curve_CURVE25519, caKey)
	if err != nil {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: signing: %w", name, err)
	}
	certPEM, err := c.MarshalPEM()
	if err != nil {
		return NebulaHost{}, fmt.Errorf("nebula host cert %q: %w", name, err)
	}
	return NebulaHost{
		CertPEM: certPEM,
		KeyPEM:  cert.MarshalPrivateKeyToPEM(cert.Curve_CURVE25519, priv.Bytes()),
	}, nil
}

// NebulaCertInfo reads the first certificate in certPEM, for checks. It does
// not verify the signature; VerifyNebulaHost does.
func NebulaCertInfo(certPEM []byte) (NebulaCertDetails, error) {
	c, _, err := cert.UnmarshalCertificateFromPEM(certPEM)
	if err != nil {
		return NebulaCertDetails{}, fmt.Errorf("nebula certificate: %w", err)
	}
	fp, err := c.Fingerprint()
	if err != nil {
		return NebulaCertDetails{}, fmt.Errorf("nebula certificate %q: fingerprint: %w", c.Name(), err)
	}
	d := NebulaCertDetails{
		Version:     int(c.Version()),
		Name:        c.Name(),
		Groups:      slices.Clone(c.Groups()),
		IsCA:        c.IsCA(),
		NotBefore:   c.NotBefore(),
		NotAfter:    c.NotAfter(),
		Issuer:      c.Issuer(),
		Fingerprint: fp,
	}
	if nets := c.Networks(); len(nets) > 0 {
		d.Network = nets[0]
	}
	return d, nil
}

// VerifyNebulaHost checks that host's certificate was signed by the CA in
// caCertPEM, that both are valid at now and that host's key belongs to the
// certificate: what a Nebula node checks when it loads its pki section.
func VerifyNebulaHost(caCertPEM []byte, host NebulaHost, now time.Time) error {
	caCert, _, err := cert.UnmarshalCertificateFromPEM(caCertPEM)
	if err != nil {
		return fmt.Errorf("nebula CA certificate: %w", err)
	}
	pool := cert.NewCAPool()
	if err := pool.AddCA(caCert); err != nil && !errors.Is(err, cert.ErrExpired) {
		return fmt.Errorf("nebula CA certificate: %w", err)
	}
	c, _, err := cert.UnmarshalCertificateFromPEM(host.CertPEM)
	if err != nil {
		return fmt.Errorf("nebula host certificate: %w", err)
	}
	if c.IsCA() {
		return fmt.Errorf("nebula host certificate %q is a CA certificate", c.Name())
	}
	if _, err := pool.VerifyCertificate(now, c); err != nil {
		return fmt.Errorf("nebula host certificate %q: %w", c.Name(), err)
	}
	key, _, curve, err := cert.UnmarshalPrivateKeyFromPEM(host.KeyPEM)
	if err != nil {
		return fmt.Errorf("nebula host key for %q: not a Nebula X25519 or P256 private key", c.Name())
	}
	if err := c.VerifyPrivateKey(curve, key); err != nil {
		return fmt.Errorf("nebula host key for %q: %w", c.Name(), err)
	}
	return nil
}

// describeNebulaCert names a certificate by name and fingerprint.
func describeNebulaCert(kind string, certPEM []byte) string {
	d, err := NebulaCertInfo(certPEM)
	if err != nil {
		return kind + " (unreadable certificate)"
	}
	return fmt.Sprintf("%s %q (fingerprint %s)", kind, d.Name, d.Fingerprint)
}
