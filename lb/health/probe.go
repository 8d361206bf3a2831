package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// maxBody bounds how much of an http check's response body is read. The
// status decides; reading a little lets a small answer complete cleanly,
// and the bound keeps a target that streams forever from holding a check.
const maxBody = 4 << 10

// maxHeader bounds the response header of an http check.
const maxHeader = 64 << 10

// userAgent names the checker in backends' access logs, so that their
// operators can tell checks from users.
const userAgent = "edge-health-check/1"

// dialFunc opens a connection; Options.Dial or a net.Dialer.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// prober runs one target's check. It is built once per target, so that
// the per-check path only does the check.
type prober struct {
	check  Check // with defaults
	dest   string
	dial   dialFunc
	expect statusSet
	// expectErr is set when Expect does not parse (the caller skipped
	// Validate); every check then fails saying why.
	expectErr error
	client    *http.Client
	url       string
	host      string // Host header
}

func newProber(addr netip.Addr, c Check, dial dialFunc, roots *x509.CertPool) *prober {
	p := &prober{check: c, dest: net.JoinHostPort(addr.String(), strconv.Itoa(int(c.Port))), dial: dial}
	if c.Type != TypeHTTP {
		return p
	}
	p.expect, p.expectErr = parseExpect(string(c.Expect))
	scheme, defPort := "http", uint16(80)
	if c.TLS {
		scheme, defPort = "https", 443
	}
	// The Host header and the server name default to the address. A zone
	// (fe80::1%eth0) is for dialing only; it has no place in a URL.
	name := c.Host
	if name == "" {
		name = addr.WithZone("").String()
	}
	hostPort := net.JoinHostPort(name, strconv.Itoa(int(c.Port)))
	// Like browsers and curl, leave the scheme's default port out of the
	// Host header; name-based virtual hosts often match it exactly.
	p.host = hostPort
	if c.Port == defPort {
		p.host = strings.TrimSuffix(hostPort, ":"+strconv.Itoa(int(c.Port)))
	}
	p.url = scheme + "://" + hostPort + c.Path
	tr := &http.Transport{
		// Always the target, whatever the URL's host says: the Host
		// header names the site, the target decides where it goes.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(ctx, network, p.dest)
		},
		// Every check opens its own connection, so a check proves that
		// the target accepts connections now, and no idle connection
		// outlives a removed target. Proxy stays nil: a check must never
		// go through HTTP_PROXY.
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxHeader,
	}
	if c.TLS {
		tr.TLSClientConfig = &tls.Config{
			ServerName:         name,
			InsecureSkipVerify: c.Insecure,
			RootCAs:            roots,
			MinVersion:         tls.VersionTLS12,
		}
	}
	p.client = &http.Client{
		Transport: tr,
		// Redirects are not followed: the check is about this target,
		// and Expect judges a 3xx like any other status.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p
}

// probe runs one check under ctx, which carries the check's timeout. It
// returns nil when the target passed.
func (p *prober) probe(ctx context.Context) error {
	switch p.check.Type {
	case TypeHTTP:
		return p.probeHTTP(ctx)
	case TypeTCP:
		conn, err := p.dial(ctx, "tcp", p.dest)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	// Validate refuses this; a caller that skipped it learns from the
	// target's status why it never comes up.
	return fmt.Errorf("unknown check type %q", p.check.Type)
}

func (p *prober) probeHTTP(ctx context.Context) error {
	if p.expectErr != nil {
		return p.expectErr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	req.Host = p.host
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxBody)
	resp.Body.Close()
	if !p.expect.has(resp.StatusCode) {
		return statusError(resp.StatusCode)
	}
	return nil
}

// close releases what the prober holds.
func (p *prober) close() {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
}

// statusError is an http status that Expect does not accept.
type statusError int

func (e statusError) Error() string { return "http status " + strconv.Itoa(int(e)) }

// reason turns a check's error into the short text that Change, Status
// and the logs carry: "connect: connection refused", "http status 503",
// "timeout after 2s". The target's address is left out; it is logged
// beside the reason already.
func reason(err error, c Check) string {
	if err == nil {
		return ""
	}
	var se statusError
	if errors.As(err, &se) {
		return se.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return "timeout after " + c.Timeout.D().String()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout after " + c.Timeout.D().String()
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return "tls: " + cv.Err.Error()
	}
	var sc *os.SyscallError
	if errors.As(err, &sc) {
		// "connect: connection refused", "read: connection reset by peer"
		return sc.Error()
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed before a full response"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Sprintf("%s: %v", oe.Op, oe.Err)
	}
	return err.Error()
}
