package forward

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/homeedge/edge/internal/config"
)

// The tests run real upstreams on loopback:
//
//	Resolve --> Forwarder --udp/tcp--> miekg server 127.0.0.1:N
//	                      --tls------> miekg server (tcp-tls, test CA)
//	                      --https----> httptest TLS server, HTTP/2
//
// Each upstream answers through a handler the test writes; the cache's
// clock is a fakeClock the test moves.

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// handler answers one query; returning nil sends nothing (a blackhole).
type handler func(q *dns.Msg) *dns.Msg

// upstreamServer is a test upstream; it counts what it was asked.
type upstreamServer struct {
	Addr   string
	handle handler
	// handleTCP, when set, answers the queries that come over TCP.
	handleTCP handler
	mu        sync.Mutex
	queries   []*dns.Msg
	// tcp counts queries that came over TCP (for plain DNS).
	tcp atomic.Int32
}

func (s *upstreamServer) serve(w dns.ResponseWriter, q *dns.Msg) {
	s.mu.Lock()
	s.queries = append(s.queries, q.Copy())
	s.mu.Unlock()
	h := s.handle
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		s.tcp.Add(1)
		if s.handleTCP != nil {
			h = s.handleTCP
		}
	}
	r := h(q)
	if r == nil {
		return
	}
	r.Id = q.Id
	w.WriteMsg(r)
}

// Queries returns how many queries arrived.
func (s *upstreamServer) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queries)
}

// Last returns the last query that arrived.
func (s *upstreamServer) Last() *dns.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queries) == 0 {
		return nil
	}
	return s.queries[len(s.queries)-1]
}

// serveDNS starts a plain DNS upstream on UDP and TCP, same port.
func serveDNS(t testing.TB, h handler) *upstreamServer {
	t.Helper()
	s := &upstreamServer{handle: h}
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no free port for UDP and TCP")
	}
	s.Addr = pc.LocalAddr().String()
	start(t, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)})
	start(t, &dns.Server{Listener: l, Handler: dns.HandlerFunc(s.serve)})
	return s
}

func start(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
}

// deadAddr returns a loopback UDP address where nothing listens: queries
// to it fail at once (ICMP port unreachable).
func deadAddr(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// testCA is a CA and a server certificate for dns.test and 127.0.0.1.
type testCA struct {
	Pool   *x509.CertPool
	File   string // the CA in PEM, for ca_file
	Server tls.Certificate
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	c, err := makeCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func makeCA(dir string) (testCA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testCA{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "edge test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return testCA{}, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testCA{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "dns.test"},
		DNSNames:     []string{"dns.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return testCA{}, err
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return testCA{}, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testCA{
		Pool:   pool,
		File:   file,
		Server: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key},
	}, nil
}

// dotServer is a DNS over TLS upstream; it can drop its connections.
type dotServer struct {
	*upstreamServer
	mu    sync.Mutex
	conns []net.Conn
}

// DropConns closes every connection the server accepted so far, as a
// server does with idle ones.
func (d *dotServer) DropConns() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

type trackingListener struct {
	net.Listener
	d *dotServer
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.d.mu.Lock()
		l.d.conns = append(l.d.conns, c)
		l.d.mu.Unlock()
	}
	return c, err
}

func serveDoT(t testing.TB, ca testCA, h handler) *dotServer {
	t.Helper()
	d := &dotServer{upstreamServer: &upstreamServer{handle: h}}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Server}, NextProtos: []string{"dot"}})
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = l.Addr().String()
	start(t, &dns.Server{Listener: trackingListener{l, d}, Net: "tcp-tls", Handler: dns.HandlerFunc(d.serve)})
	return d
}

// dohServer is a DNS over HTTPS upstream on httptest with HTTP/2.
type dohServer struct {
	*upstreamServer
	URL string
	srv *httptest.Server
	// protos and ids record each request's HTTP major version and DNS ID.
	mu     sync.Mutex
	protos []int
	ids    []uint16
	method []string
}

func serveDoH(t testing.TB, ca testCA, h handler) *dohServer {
	t.Helper()
	d := &dohServer{upstreamServer: &upstreamServer{handle: h}}
	d.srv = httptest.NewUnstartedServer(http.HandlerFunc(d.serveHTTP))
	d.srv.EnableHTTP2 = true
	d.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server}}
	d.srv.StartTLS()
	t.Cleanup(d.srv.Close)
	d.URL = d.srv.URL + "/dns-query"
	d.Addr = d.srv.Listener.Addr().String()
	return d
}

func (d *dohServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	var err error
	switch r.Method {
	case http.MethodPost:
		if r.Header.Get("Content-Type") != "application/dns-message" {
			http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
			return
		}
		body, err = io.ReadAll(r.Body)
	case http.MethodGet:
		body, err = base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	q := new(dns.Msg)
	if err != nil || q.Unpack(body) != nil {
		http.Error(w, "bad message", http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.protos = append(d.protos, r.ProtoMajor)
	d.ids = append(d.ids, q.Id)
	d.method = append(d.method, r.Method)
	d.mu.Unlock()
	d.upstreamServer.mu.Lock()
	d.queries = append(d.queries, q.Copy())
	d.upstreamServer.mu.Unlock()
	reply := d.handle(q)
	if reply == nil {
		http.Error(w, "no answer", http.StatusBadGateway)
		return
	}
	reply.Id = q.Id
	out, err := reply.Pack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/dns-message")
	w.Write(out)
}

// answerWith returns a handler that answers every query with rrs (in
// presentation format, "$NAME" standing for the question's name).
func answerWith(rrs ...string) handler {
	return func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg)
		r.SetReply(q)
		r.RecursionAvailable = true
		for _, s := range rrs {
			r.Answer = append(r.Answer, mustRR(replaceName(s, q.Question[0].Name)))
		}
		return r
	}
}

func replaceName(s, name string) string {
	if len(s) >= 5 && s[:5] == "$NAME" {
		return name + s[5:]
	}
	return s
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// testEnv is a Forwarder over a fresh cache with a fake clock.
type testEnv struct {
	F     *Forwarder
	Cache *Cache
	Clock *fakeClock
}

func fastConfig(servers ...Server) Config {
	c := DefaultConfig()
	c.Servers = servers
	c.Timeout = config.Duration(300 * time.Millisecond)
	return c
}

func newEnv(t testing.TB, cfg Config, ccfg CacheConfig, opts Options) *testEnv {
	t.Helper()
	clock := newFakeClock()
	cache := NewCache(ccfg, CacheOptions{Now: clock.Now, Metrics: opts.Metrics, Namespace: opts.Namespace})
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = 20 * time.Millisecond
	}
	f, err := New(cfg, cache, opts)
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	t.Cleanup(f.Close)
	return &testEnv{F: f, Cache: cache, Clock: clock}
}

// newReq builds a recursive query; edns adds an OPT with the DO bit do.
func newReq(name string, qtype uint16, edns, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = dns.Id()
	if edns {
		m.SetEdns0(4096, do)
	}
	return m
}

func ttls(rrs []dns.RR) []uint32 {
	var out []uint32
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.Header().Ttl)
	}
	return out
}

func edeCodes(m *dns.Msg) []uint16 {
	o := m.IsEdns0()
	if o == nil {
		return nil
	}
	var out []uint16
	for _, opt := range o.Option {
		if e, ok := opt.(*dns.EDNS0_EDE); ok {
			out = append(out, e.InfoCode)
		}
	}
	return out
}

// eventually polls cond until it holds or a second passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
