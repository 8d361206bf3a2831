package firewall

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homeedge/edge/firewall/fwconfig"
	"github.com/homeedge/edge/firewall/nflog"
)

// copyRange is how much of each logged packet the kernel copies: the IP
// and transport headers.
const copyRange = 128

// packetLog reads the NFLOG group that log rules send to (log.to: daemon)
// and writes each packet to the daemon's log, with the rule's prefix.
type packetLog struct {
	group  uint16
	r      packetReader
	done   chan struct{}
	log    *slog.Logger
	logged *prometheus.CounterVec
	lost   prometheus.Counter

	ifMu   sync.Mutex
	ifName map[uint32]string
}

// syncPacketLog starts, stops or moves the packet log to match cfg; the
// caller holds mu. A group another reader holds (ulogd) is reported and
// left to it: the ruleset stays applied either way.
func (s *Service) syncPacketLog(cfg *fwconfig.Config) {
	want := cfg.Log.To == fwconfig.LogToDaemon
	if p := s.plog; p != nil && (!want || p.group != cfg.Log.Group) {
		p.close()
		s.plog = nil
	}
	if !want || s.plog != nil {
		return
	}
	r, err := s.openPacketLog(cfg.Log.Group)
	if err != nil {
		s.log.Error("packet log: cannot read the NFLOG group; logged packets are not written to this log", "group", cfg.Log.Group, "err", err)
		return
	}
	p := &packetLog{group: cfg.Log.Group, r: r, done: make(chan struct{}), log: s.log.With("component", "packets"),
		logged: s.metrics.logged, lost: s.metrics.logLost, ifName: map[uint32]string{}}
	s.plog = p
	s.log.Info("packet log: reading NFLOG group", "group", p.group)
	go p.run()
}

func (p *packetLog) run() {
	defer close(p.done)
	var lost uint64
	for {
		e, err := p.r.Read()
		if n := p.r.Dropped(); n > lost {
			p.lost.Add(float64(n - lost))
			p.log.Warn("packet log: the kernel dropped entries (receive buffer full)", "lost", n-lost)
			lost = n
		}
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, nflog.ErrMalformed):
			p.log.Warn("packet log: unreadable entry", "err", err)
			continue
		case err != nil:
			p.log.Error("packet log: read failed; stopping it", "err", err)
			return
		}
		p.logged.WithLabelValues(e.Prefix).Inc()
		p.log.Info("packet", p.attrs(e)...)
	}
}

// attrs describes a logged packet: prefix, interfaces, addresses,
// protocol, ports or ICMP type, length.
func (p *packetLog) attrs(e nflog.Entry) []any {
	a := []any{"prefix", e.Prefix}
	if e.InIface != 0 {
		a = append(a, "in", p.iface(e.InIface))
	}
	if e.OutIface != 0 {
		a = append(a, "out", p.iface(e.OutIface))
	}
	if e.Src.IsValid() {
		a = append(a, "src", e.Src, "dst", e.Dst, "proto", protoName(e.Proto))
	}
	switch e.Proto {
	case 6, 17, 132, 136:
		if e.SrcPort != 0 || e.DstPort != 0 {
			a = append(a, "sport", e.SrcPort, "dport", e.DstPort)
		}
		if e.Proto == 6 {
			a = append(a, "flags", tcpFlags(e.TCPFlags))
		}
	case 1, 58:
		a = append(a, "type", e.ICMPType, "code", e.ICMPCode)
	}
	return append(a, "len", e.Length)
}

func (p *packetLog) iface(idx uint32) string {
	p.ifMu.Lock()
	defer p.ifMu.Unlock()
	if n, ok := p.ifName[idx]; ok {
		return n
	}
	name := strconv.Itoa(int(idx))
	if ifi, err := net.InterfaceByIndex(int(idx)); err == nil {
		name = ifi.Name
		p.ifName[idx] = name // interfaces come and go; names of live ones are cached
	}
	return name
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// tcpFlags names the set flags the way tcpdump does: S, SA, F, R, P.
func tcpFlags(f uint8) string {
	const names = "FSRPAUEC"
	var b []byte
	for i := range 8 {
		if f&(1<<i) != 0 {
			b = append(b, names[i])
		}
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}

func (p *packetLog) close() {
	p.r.Close()
	<-p.done
}
