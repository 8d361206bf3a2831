package dns

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tcpGate admits TCP connections so that no client can starve the others:
// at most max connections in all and perClient from one address. A
// connection is never left waiting unaccepted in the kernel's queue (where
// it would wait for a slot, unanswered): when all slots are taken, the
// connection that has waited longest for its next query is closed to make
// room, and a client already holding its share is turned away at once.
// TC retries (which rate limiting relies on), AXFR and UPDATE from other
// clients so always get a connection.
type tcpGate struct {
	net.Listener
	max, perClient int
	now            func() time.Time
	refused        *prometheus.CounterVec
	evicted        prometheus.Counter

	// mu guards conns and byAddr.
	mu     sync.Mutex
	conns  map[*gateConn]struct{}
	byAddr map[netip.Addr]int
}

func newTCPGate(ln net.Listener, max, perClient int, m *metrics) *tcpGate {
	return &tcpGate{Listener: ln, max: max, perClient: perClient, now: time.Now, refused: m.tcpRefused, evicted: m.tcpEvicted,
		conns: map[*gateConn]struct{}{}, byAddr: map[netip.Addr]int{}}
}

// Accept returns the next admitted connection; refused ones are closed
// here and never reach the server.
func (g *tcpGate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := g.admit(c); gc != nil {
			return gc, nil
		}
	}
}

func (g *tcpGate) admit(c net.Conn) *gateConn {
	addr := addrOf(c.RemoteAddr())
	g.mu.Lock()
	if g.byAddr[addr] >= g.perClient {
		g.mu.Unlock()
		g.refused.WithLabelValues("per_client").Inc()
		c.Close()
		return nil
	}
	var victim *gateConn
	if len(g.conns) >= g.max {
		if victim = g.idlestLocked(); victim == nil {
			g.mu.Unlock()
			g.refused.WithLabelValues("busy").Inc()
			c.Close()
			return nil
		}
		g.dropLocked(victim)
	}
	gc := &gateConn{Conn: c, g: g, addr: addr}
	gc.waitingSince.Store(g.now().UnixNano())
	g.conns[gc] = struct{}{}
	g.byAddr[addr]++
	g.mu.Unlock()
	if victim != nil {
		g.evicted.Inc()
		victim.Conn.Close()
	}
	return gc
}

// idlestLocked is the connection that has waited longest in a read: for
// its first or next query, or for the rest of one it sends slowly. A
// connection whose query is being answered is never taken.
func (g *tcpGate) idlestLocked() *gateConn {
	var best *gateConn
	var since int64
	for c := range g.conns {
		if w := c.waitingSince.Load(); w != 0 && (best == nil || w < since) {
			best, since = c, w
		}
	}
	return best
}

func (g *tcpGate) dropLocked(c *gateConn) {
	if _, ok := g.conns[c]; !ok {
		return
	}
	delete(g.conns, c)
	if g.byAddr[c.addr]--; g.byAddr[c.addr] <= 0 {
		delete(g.byAddr, c.addr)
	}
}

// gateConn is an admitted connection; it knows whether it waits.
type gateConn struct {
	net.Conn
	g    *tcpGate
	addr netip.Addr
	// waitingSince is when the read now blocked began (unix ns), or 0
	// while the connection is being answered.
	waitingSince atomic.Int64
	closeOnce    sync.Once
}

func (c *gateConn) Read(b []byte) (int, error) {
	if c.waitingSince.Load() == 0 {
		c.waitingSince.Store(c.g.now().UnixNano())
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.waitingSince.Store(0)
	}
	return n, err
}

func (c *gateConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	// Answered: from now on the connection waits for the next query.
	c.waitingSince.Store(c.g.now().UnixNano())
	return n, err
}

func (c *gateConn) Close() error {
	c.closeOnce.Do(func() {
		c.g.mu.Lock()
		c.g.dropLocked(c)
		c.g.mu.Unlock()
	})
	return c.Conn.Close()
}
