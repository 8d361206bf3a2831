package dns

import (
	"io"
	"log/slog"
	"net"
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/dns/zone"
)

// memWriter is a ResponseWriter that keeps what the handler sends.
type memWriter struct {
	remote, local net.Addr
	msgs          []*mdns.Msg
}

func (w *memWriter) LocalAddr() net.Addr        { return w.local }
func (w *memWriter) RemoteAddr() net.Addr       { return w.remote }
func (w *memWriter) WriteMsg(m *mdns.Msg) error { w.msgs = append(w.msgs, m); return nil }
func (w *memWriter) Write(b []byte) (int, error) {
	m := new(mdns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msgs = append(w.msgs, m)
	return len(b), nil
}
func (w *memWriter) Close() error        { return nil }
func (w *memWriter) TsigStatus() error   { return nil }
func (w *memWriter) TsigTimersOnly(bool) {}
func (w *memWriter) Hijack()             {}

var _ mdns.ResponseWriter = (*memWriter)(nil)

// newHandlerOnly builds the query path of a server without sockets or a
// store: what the fuzzer drives.
func newHandlerOnly(tb testing.TB, section string) *Server {
	tb.Helper()
	yaml := "version: 1\nsite:\n  local_domain: home.arpa\n  networks:\n    lan: [192.168.1.0/24]\ndns:\n" + section
	f, err := parseYAML(yaml)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: newMetrics(prometheus.NewRegistry())}
	s.xfr = newTransfers(s)
	set, err := zone.Build(f.Section.buildInput(&f.Site, nil))
	if err != nil {
		tb.Fatalf("build: %v", err)
	}
	s.rt.Store(&snapshot{cfg: f, set: set, inside: f.Section.insidePrefixes(&f.Site), keys: map[string]*tsigKey{}})
	return s
}

// FuzzServeDNS sends arbitrary messages through the handler, from an
// inside and an outside client, over UDP and TCP: no panic, and every
// answer packs and fits the transport.
func FuzzServeDNS(f *testing.F) {
	s := newHandlerOnly(f, zones+`  views:
    - name: inside
      match: {networks: [lan]}
      records:
        - {name: www.example.net, type: A, value: 192.168.1.10}
`)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.example.net.", mdns.TypeA}, {"big.example.net.", mdns.TypeTXT}, {"nas.home.arpa.", mdns.TypeAAAA}, {"x.other.", mdns.TypeANY}, {"example.net.", mdns.TypeAXFR}} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.qtype)
		b, _ := m.Pack()
		f.Add(b)
		m.SetEdns0(4096, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0)})
		b, _ = m.Pack()
		f.Add(b)
	}
	u := new(mdns.Msg)
	u.SetUpdate("home.arpa.")
	u.Insert([]mdns.RR{rr("x.home.arpa. 60 IN A 192.168.1.9")})
	b, _ := u.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(mdns.Msg)
		if err := req.Unpack(data); err != nil {
			return // miekg/dns drops it (and counts it) before the handler
		}
		for _, src := range []net.IP{net.IPv4(192, 168, 1, 100), net.IPv4(203, 0, 113, 9)} {
			for _, udp := range []bool{true, false} {
				w := &memWriter{local: &net.UDPAddr{IP: net.IPv4(192, 168, 1, 1), Port: 53}, remote: &net.UDPAddr{IP: src, Port: 5353}}
				limit := mdns.MaxMsgSize
				if !udp {
					w.local = &net.TCPAddr{IP: net.IPv4(192, 168, 1, 1), Port: 53}
					w.remote = &net.TCPAddr{IP: src, Port: 5353}
				} else {
					limit = ednsSize
				}
				s.ServeDNS(w, req.Copy())
				for _, m := range w.msgs {
					out, err := m.Pack()
					if err != nil {
						t.Fatalf("answer does not pack: %v\n%v", err, m)
					}
					if len(out) > limit {
						t.Fatalf("answer of %d bytes over %s", len(out), map[bool]string{true: "udp", false: "tcp"}[udp])
					}
				}
			}
		}
	})
}
