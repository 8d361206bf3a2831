package dns

import (
	"context"
	"fmt"
	"reflect"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/forward"
	"github.com/homeedge/edge/internal/daemon"
)

// prepareForwarder builds the resolver for cfg when it changed (a new one
// over the same cache), like prepareGeoIP.
func (s *Server) prepareForwarder(cfg forward.Config) (daemon.Change, error) {
	old := s.fwd.Load()
	switch {
	case len(cfg.Servers) == 0:
		return daemon.Change{Commit: func(int64) {
			s.fwd.Store(nil)
			s.fwdCfg = nil
			if old != nil {
				old.Close()
			}
		}}, nil
	case old != nil && s.fwdCfg != nil && reflect.DeepEqual(*s.fwdCfg, cfg):
		return daemon.Change{}, nil
	}
	if err := s.faults.Step("open resolver"); err != nil {
		return daemon.Change{}, err
	}
	f, err := forward.New(cfg, s.fcache, forward.Options{Log: s.log.With("component", "resolver"), Metrics: s.registry, Namespace: "edge_dns"})
	if err != nil {
		return daemon.Change{}, fmt.Errorf("dns.upstreams: %w", err)
	}
	c := cfg
	return daemon.Change{
		Commit: func(int64) {
			s.fwd.Store(f)
			s.fwdCfg = &c
			if old != nil {
				old.Close()
			}
			f.Publish()
		},
		Abort: f.Close,
	}, nil
}

// resolveTimeout bounds one recursive answer; the resolver answers stale
// data or SERVFAIL well before it.
const resolveTimeout = 5 * time.Second

// resolve asks the resolver an inside client's question and returns
// the reply to send, truncated to what the client takes over UDP.
func (s *Server) resolve(req *mdns.Msg, fwd *forward.Forwarder, proto string, opt *mdns.OPT) *mdns.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	resp, _ := fwd.Resolve(ctx, req)
	resp.RecursionAvailable = true
	size := mdns.MaxMsgSize
	if proto == "udp" {
		size = mdns.MinMsgSize
		if opt != nil {
			size = int(min(max(opt.UDPSize(), mdns.MinMsgSize), ednsSize))
		}
	}
	resp.Truncate(size)
	return resp
}

// continueChain appends the resolver's answer for target to resp.
func (s *Server) continueChain(req, resp *mdns.Msg, target string, fwd *forward.Forwarder) {
	sub := new(mdns.Msg)
	sub.SetQuestion(target, req.Question[0].Qtype)
	sub.RecursionDesired = true
	if o := req.IsEdns0(); o != nil {
		sub.SetEdns0(ednsSize, o.Do())
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	r, _ := fwd.Resolve(ctx, sub)
	resp.Answer = append(resp.Answer, r.Answer...)
	resp.Authoritative = false
	if r.Rcode != mdns.RcodeSuccess {
		resp.Rcode = r.Rcode
	}
}
