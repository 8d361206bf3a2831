package health

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homeedge/edge/internal/config"
)

var defaultDial = (&net.Dialer{}).DialContext

// addrPort splits an httptest server's address.
func addrPort(t *testing.T, hostport string) (netip.Addr, uint16) {
	t.Helper()
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		t.Fatalf("ParseAddrPort(%q) = %v", hostport, err)
	}
	return ap.Addr(), ap.Port()
}

// probeOnce runs one check as a target does: under its timeout. It
// returns the reason ("" for a pass) and how long the check took.
func probeOnce(t *testing.T, addr netip.Addr, c Check, roots *x509.CertPool) (string, time.Duration) {
	t.Helper()
	c = c.withDefaults()
	p := newProber(addr, c, defaultDial, roots)
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
	defer cancel()
	start := time.Now()
	err := p.probe(ctx)
	return reason(err, c), time.Since(start)
}

func TestProberTarget(t *testing.T) {
	tests := []struct {
		name                string
		addr                string
		check               Check
		dest, url, hostHead string
	}{
		{"http ipv4", "192.0.2.10", Check{Type: "http", Port: 8080},
			"192.0.2.10:8080", "http://192.0.2.10:8080/", "192.0.2.10:8080"},
		{"http default port", "192.0.2.10", Check{Type: "http", Port: 80, Path: "/healthz?x=1"},
			"192.0.2.10:80", "http://192.0.2.10:80/healthz?x=1", "192.0.2.10"},
		{"https default port with host", "192.0.2.10", Check{Type: "http", Port: 443, TLS: true, Host: "www.example.net"},
			"192.0.2.10:443", "https://www.example.net:443/", "www.example.net"},
		{"https other port", "192.0.2.10", Check{Type: "http", Port: 80, TLS: true, Host: "www.example.net"},
			"192.0.2.10:80", "https://www.example.net:80/", "www.example.net:80"},
		{"ipv6", "2001:db8::1", Check{Type: "http", Port: 80},
			"[2001:db8::1]:80", "http://[2001:db8::1]:80/", "[2001:db8::1]"},
		{"ipv6 zone dials with it, names without", "fe80::1%eth0", Check{Type: "http", Port: 8080},
			"[fe80::1%eth0]:8080", "http://[fe80::1]:8080/", "[fe80::1]:8080"},
		{"tcp", "2001:db8::1", Check{Type: "tcp", Port: 22},
			"[2001:db8::1]:22", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProber(netip.MustParseAddr(tc.addr), tc.check.withDefaults(), defaultDial, nil)
			if p.dest != tc.dest || p.url != tc.url || p.host != tc.hostHead {
				t.Errorf("newProber(%s, %+v) = dest %q url %q host %q, want dest %q url %q host %q",
					tc.addr, tc.check, p.dest, p.url, p.host, tc.dest, tc.url, tc.hostHead)
			}
			if p.url != "" {
				if _, err := url.Parse(p.url); err != nil {
					t.Errorf("newProber(%s, %+v).url does not parse: %v", tc.addr, tc.check, err)
				}
			}
		})
	}
}

// statusServer answers /status/<code> with that code, /redirect with a
// 301 to /status/500, and records the Host header and request URI.
type statusServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "host uri"
}

func newStatusServer(t *testing.T, tls bool) *statusServer {
	s := &statusServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Host+" "+r.RequestURI)
		s.mu.Unlock()
		switch {
		case r.URL.Path == "/redirect":
			http.Redirect(w, r, "/status/500", http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, "/status/"):
			code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.WriteHeader(code)
			io.WriteString(w, "status\n")
		default:
			io.WriteString(w, "ok\n")
		}
	})
	s.Server = httptest.NewUnstartedServer(h)
	// Failed handshakes are what some cases test; keep them out of the
	// test output.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func TestHTTPCheck(t *testing.T) {
	srv := newStatusServer(t, false)
	addr, port := addrPort(t, srv.Listener.Addr().String())
	tests := []struct {
		path   string
		expect StatusCodes
		want   string
	}{
		{"/", "", ""},
		{"/status/200", "", ""},
		{"/status/204", "200,204", ""},
		{"/status/503", "", "http status 503"},
		{"/status/404", "", "http status 404"},
		{"/status/404", "200-399,404", ""},
		{"/status/399", "", ""},
		{"/status/400", "", "http status 400"},
		// Not followed: the 301 itself is judged (following would give 500).
		{"/redirect", "", ""},
		{"/redirect", "200", "http status 301"},
		{"/status/200", "2xx", `"2xx" is not a status code in expect "2xx"; write codes and ranges separated by commas, such as "200-399" or "200,204"`},
	}
	for _, tc := range tests {
		c := Check{Type: "http", Port: port, Path: tc.path, Expect: tc.expect, Timeout: config.Duration(5 * time.Second)}
		if got, _ := probeOnce(t, addr, c, nil); got != tc.want {
			t.Errorf("probe(GET %s, expect %q) = %q, want %q", tc.path, tc.expect, got, tc.want)
		}
	}
}

func TestHTTPCheckHostAndQuery(t *testing.T) {
	srv := newStatusServer(t, false)
	addr, port := addrPort(t, srv.Listener.Addr().String())
	p := strconv.Itoa(int(port))
	probeOnce(t, addr, Check{Type: "http", Port: port}, nil)
	probeOnce(t, addr, Check{Type: "http", Port: port, Host: "www.example.net", Path: "/healthz?full=1"}, nil)
	got := srv.requests()
	want := []string{"127.0.0.1:" + p + " /", "www.example.net:" + p + " /healthz?full=1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests seen = %q, want %q", got, want)
	}
}

func TestHTTPSCheck(t *testing.T) {
	srv := newStatusServer(t, true)
	plain := newStatusServer(t, false)
	addr, port := addrPort(t, srv.Listener.Addr().String())
	_, plainPort := addrPort(t, plain.Listener.Addr().String())
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tests := []struct {
		name  string
		check Check
		roots *x509.CertPool
		want  string // substring; "" means the check passes
	}{
		{"insecure skips verification", Check{Insecure: true}, nil, ""},
		{"unknown authority", Check{}, nil, "tls: x509: certificate signed by unknown authority"},
		{"trusted root, address", Check{}, roots, ""},
		{"trusted root, name in cert", Check{Host: "example.com"}, roots, ""},
		{"trusted root, name not in cert", Check{Host: "www.example.net"}, roots, "tls: x509: certificate is valid for"},
		{"insecure ignores the name", Check{Host: "www.example.net", Insecure: true}, nil, ""},
		{"status still judged", Check{Insecure: true, Path: "/status/503"}, nil, "http status 503"},
		{"tls to a plain server", Check{Insecure: true, Port: plainPort}, nil, "http: server gave HTTP response to HTTPS client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.check
			c.Type, c.TLS, c.Timeout = "http", true, config.Duration(5*time.Second)
			if c.Port == 0 {
				c.Port = port
			}
			got, _ := probeOnce(t, addr, c, tc.roots)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("probe(https %+v) = %q, want %q", tc.check, got, tc.want)
			}
		})
	}
}

// hangingServer accepts connections and never answers.
func hangingServer(t *testing.T) (netip.Addr, uint16) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return addrPort(t, ln.Addr().String())
}

func TestCheckTimeout(t *testing.T) {
	addr, port := hangingServer(t)
	c := Check{Type: "http", Port: port, Timeout: config.Duration(50 * time.Millisecond)}
	got, took := probeOnce(t, addr, c, nil)
	if got != "timeout after 50ms" {
		t.Errorf("probe(http to a server that never answers) = %q, want %q", got, "timeout after 50ms")
	}
	if took > time.Second {
		t.Errorf("probe(http to a server that never answers) took %v, want about 50ms", took)
	}
}

func TestHTTPBodyBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	addr, port := addrPort(t, srv.Listener.Addr().String())
	got, took := probeOnce(t, addr, Check{Type: "http", Port: port, Timeout: config.Duration(5 * time.Second)}, nil)
	if got != "" || took > 2*time.Second {
		t.Errorf("probe(endless body) = %q after %v, want a pass well within the timeout", got, took)
	}
}

func TestTCPCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, port := addrPort(t, ln.Addr().String())
	if got, _ := probeOnce(t, addr, Check{Type: "tcp", Port: port}, nil); got != "" {
		t.Errorf("probe(tcp to a listener) = %q, want a pass", got)
	}
	ln.Close()
	if got, _ := probeOnce(t, addr, Check{Type: "tcp", Port: port}, nil); got != "connect: connection refused" {
		t.Errorf("probe(tcp to a closed port) = %q, want %q", got, "connect: connection refused")
	}
	if got, _ := probeOnce(t, addr, Check{Type: "udp", Port: port}, nil); got != `unknown check type "udp"` {
		t.Errorf("probe(type udp) = %q, want %q", got, `unknown check type "udp"`)
	}
}

func TestReason(t *testing.T) {
	c := Check{Timeout: config.Duration(2 * time.Second)}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{statusError(503), "http status 503"},
		{fmt.Errorf("wrapped: %w", statusError(302)), "http status 302"},
		{context.DeadlineExceeded, "timeout after 2s"},
		{&url.Error{Op: "Get", URL: "http://x/", Err: context.DeadlineExceeded}, "timeout after 2s"},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, "timeout after 2s"},
		{refused, "connect: connection refused"},
		{&url.Error{Op: "Get", URL: "http://x/", Err: refused}, "connect: connection refused"},
		{&net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, "read: connection reset by peer"},
		{&url.Error{Op: "Get", URL: "http://x/", Err: io.EOF}, "connection closed before a full response"},
		{&url.Error{Op: "Get", URL: "http://x/", Err: errors.New("malformed HTTP response")}, "malformed HTTP response"},
		{errors.New("other"), "other"},
	}
	for _, tc := range tests {
		if got := reason(tc.err, c); got != tc.want {
			t.Errorf("reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
