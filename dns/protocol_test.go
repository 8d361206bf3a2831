package dns

import (
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// exchange sends m over net ("udp" or "tcp") and returns the reply,
// signing with secret when the message has a TSIG.
func (ts *testServer) exchange(t *testing.T, net string, m *mdns.Msg, secret map[string]string) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: net, Timeout: 2 * time.Second, TsigSecret: secret}
	r, _, err := c.Exchange(m, ts.addr)
	if err != nil && r == nil {
		t.Fatalf("%s exchange: %v", net, err)
	}
	return r
}

func withOPT(m *mdns.Msg, version uint8, do bool) {
	o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
	o.SetUDPSize(1232)
	o.SetVersion(version)
	o.SetDo(do)
	m.Extra = append(m.Extra, o)
}

// TestProtocolCorners: error answers keep EDNS (RFC 6891 §7), two OPT
// records are FORMERR (§6.1.1), BADVERS echoes DO (RFC 3225 §3), over UDP
// and TCP.
func TestProtocolCorners(t *testing.T) {
	ts := startServer(t, updatableZones)
	tests := []struct {
		name    string
		msg     func() *mdns.Msg
		rcode   int
		wantOPT bool
		wantDO  bool
	}{
		{"NOTIMP keeps OPT", func() *mdns.Msg {
			m := new(mdns.Msg).SetQuestion("example.net.", mdns.TypeA)
			m.Opcode = mdns.OpcodeStatus
			withOPT(m, 0, true)
			return m
		}, mdns.RcodeNotImplemented, true, true},
		{"FORMERR keeps OPT", func() *mdns.Msg {
			m := new(mdns.Msg).SetQuestion("example.net.", mdns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			withOPT(m, 0, false)
			return m
		}, mdns.RcodeFormatError, true, false},
		{"two OPT records", func() *mdns.Msg {
			m := new(mdns.Msg).SetQuestion("example.net.", mdns.TypeA)
			withOPT(m, 0, false)
			withOPT(m, 0, false)
			return m
		}, mdns.RcodeFormatError, false, false},
		{"BADVERS echoes DO", func() *mdns.Msg {
			m := new(mdns.Msg).SetQuestion("example.net.", mdns.TypeA)
			withOPT(m, 1, true)
			return m
		}, mdns.RcodeBadVers, true, true},
	}
	for _, tc := range tests {
		for _, net := range []string{"udp", "tcp"} {
			t.Run(tc.name+" "+net, func(t *testing.T) {
				r := ts.exchange(t, net, tc.msg(), nil)
				opt := r.IsEdns0()
				if r.Rcode != tc.rcode || (opt != nil) != tc.wantOPT || opt != nil && opt.Do() != tc.wantDO {
					t.Errorf("reply rcode %s, OPT %v; want %s, OPT %v with DO %v\n%v", mdns.RcodeToString[r.Rcode], opt, mdns.RcodeToString[tc.rcode], tc.wantOPT, tc.wantDO, r)
				}
			})
		}
	}
}

// TestTSIGErrors: an UPDATE or AXFR whose TSIG fails gets NOTAUTH with an
// unsigned TSIG record naming the error (RFC 8945 §5.3.2), so that
// nsupdate can say BADSIG or BADKEY.
func TestTSIGErrors(t *testing.T) {
	ts := startServer(t, updatableZones)
	const wrong = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc="
	tests := []struct {
		name string
		msg  func() *mdns.Msg
		key  string
		want uint16
	}{
		{"update, wrong secret", func() *mdns.Msg {
			m := new(mdns.Msg).SetUpdate("home.arpa.")
			m.Insert([]mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: "x.home.arpa.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: []byte{192, 168, 1, 7}}})
			return m
		}, "edge-vpn.", mdns.RcodeBadSig},
		{"update, unknown key", func() *mdns.Msg {
			return new(mdns.Msg).SetUpdate("home.arpa.")
		}, "nosuch.", mdns.RcodeBadKey},
		{"axfr, wrong secret", func() *mdns.Msg {
			m := new(mdns.Msg)
			m.SetAxfr("example.net.")
			return m
		}, "xfr.", mdns.RcodeBadSig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg()
			m.SetTsig(tc.key, mdns.HmacSHA256, 300, time.Now().Unix())
			r := ts.exchange(t, "tcp", m, map[string]string{tc.key: wrong})
			tsig := r.IsTsig()
			if r.Rcode != mdns.RcodeNotAuth || tsig == nil || tsig.Error != tc.want || tsig.MACSize != 0 {
				t.Fatalf("reply rcode %s, TSIG %v; want NOTAUTH and an unsigned TSIG with error %s", mdns.RcodeToString[r.Rcode], tsig, mdns.RcodeToString[int(tc.want)])
			}
		})
	}
}
