package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// transport carries one query to one upstream. query is a packed message
// whose ID the transport sets itself (a fresh random one per UDP attempt,
// one unique on the connection for TLS, 0 for HTTPS); the reply's ID is
// checked and then no longer matters.
type transport interface {
	exchange(ctx context.Context, query []byte) (*dns.Msg, error)
	close()
}

var (
	errShortRead = errors.New("reply shorter than a DNS header")
)

// udpReadSize is the receive buffer for UDP replies: more than we
// advertise (ednsSize), so that a server ignoring it is still read whole.
const udpReadSize = 4096

var udpBufs = sync.Pool{New: func() any { b := make([]byte, udpReadSize); return &b }}

// withID returns a copy of query with its ID set to id.
func withID(query []byte, id uint16) []byte {
	b := append([]byte(nil), query...)
	binary.BigEndian.PutUint16(b, id)
	return b
}

// deadlineOnCancel makes conn's reads and writes fail when ctx ends, so
// that a blocked read returns at once; the returned func undoes it.
func deadlineOnCancel(ctx context.Context, conn net.Conn) func() bool {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
}

// ctxErr prefers the context's error to the I/O error it caused, so that
// a timeout reads as one.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Connection deadlines come from ctx, and may pass a moment before
	// ctx itself says so.
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// plainTransport is DNS over UDP, retried over TCP when the reply is
// truncated. Each UDP query gets its own socket, so its own random source
// port, and a random ID: together the 32 bits that make blind spoofing hard.
type plainTransport struct {
	addr   string
	dialer net.Dialer
}

func (t *plainTransport) exchange(ctx context.Context, query []byte) (*dns.Msg, error) {
	r, err := t.udp(ctx, query)
	if err != nil {
		return nil, err
	}
	if r.Truncated {
		return t.tcp(ctx, query)
	}
	return r, nil
}

func (t *plainTransport) udp(ctx context.Context, query []byte) (*dns.Msg, error) {
	conn, err := t.dialer.DialContext(ctx, "udp", t.addr)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	defer conn.Close()
	defer deadlineOnCancel(ctx, conn)()
	id := uint16(rand.Uint32())
	if _, err := conn.Write(withID(query, id)); err != nil {
		return nil, ctxErr(ctx, err)
	}
	bp := udpBufs.Get().(*[]byte)
	defer udpBufs.Put(bp)
	buf := *bp
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		// A reply with another ID is late for an earlier query or
		// forged: keep waiting for ours.
		if n < 12 || binary.BigEndian.Uint16(buf) != id {
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			return nil, fmt.Errorf("unpack reply: %w", err)
		}
		return m, nil
	}
}

func (t *plainTransport) tcp(ctx context.Context, query []byte) (*dns.Msg, error) {
	conn, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	defer conn.Close()
	defer deadlineOnCancel(ctx, conn)()
	id := uint16(rand.Uint32())
	if err := writeFramed(conn, withID(query, id)); err != nil {
		return nil, ctxErr(ctx, err)
	}
	b, err := readFramed(conn)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if binary.BigEndian.Uint16(b) != id {
		return nil, dns.ErrId
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, fmt.Errorf("unpack reply: %w", err)
	}
	return m, nil
}

func (t *plainTransport) close() {}

// writeFramed writes msg with its two-byte length (RFC 1035 §4.2.2) in
// one write, so it leaves in one segment.
func writeFramed(w io.Writer, msg []byte) error {
	b := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(b, uint16(len(msg)))
	copy(b[2:], msg)
	_, err := w.Write(b)
	return err
}

func readFramed(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(l[:])
	if n < 12 {
		return nil, errShortRead
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// tlsTransport is DNS over TLS (RFC 7858) on one persistent connection
// that carries many queries at once (pipelining, RFC 7766 §6.2.1.1):
// answers come back in any order and are matched by ID. The connection is
// dialed on first use and again after it fails or idles out; one
// connection is enough because no query waits for another.
type tlsTransport struct {
	addr    string
	dial    func(ctx context.Context) (net.Conn, error)
	idle    time.Duration
	mu      sync.Mutex
	conn    *streamConn // guarded by mu; nil or dead means dial
	dialing *dialCall   // guarded by mu; non-nil while a dial runs
	closed  bool        // guarded by mu
}

type dialCall struct {
	done chan struct{}
	conn *streamConn
	err  error
}

func newTLSTransport(addr string, conf *tls.Config, idle time.Duration) *tlsTransport {
	d := &tls.Dialer{NetDialer: &net.Dialer{KeepAlive: idle}, Config: conf}
	return &tlsTransport{
		addr: addr,
		idle: idle,
		dial: func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
	}
}

func (t *tlsTransport) exchange(ctx context.Context, query []byte) (*dns.Msg, error) {
	for attempt := 0; ; attempt++ {
		sc, fresh, err := t.get(ctx)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		r, err := sc.exchange(ctx, query)
		if err == nil {
			return r, nil
		}
		// A server may close an idle connection just as a query goes
		// out on it; that query deserves one more try on a new one.
		if fresh || attempt > 0 || ctx.Err() != nil || !errors.Is(err, errConnDone) {
			return nil, ctxErr(ctx, err)
		}
	}
}

// get returns a live connection, dialing one if needed; fresh reports
// that it was dialed for this call. Concurrent callers share one dial.
func (t *tlsTransport) get(ctx context.Context) (sc *streamConn, fresh bool, err error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false, ErrClosed
	}
	if t.conn != nil && t.conn.alive() {
		sc := t.conn
		t.mu.Unlock()
		return sc, false, nil
	}
	if d := t.dialing; d != nil {
		t.mu.Unlock()
		select {
		case <-d.done:
			return d.conn, true, d.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	d := &dialCall{done: make(chan struct{})}
	t.dialing = d
	t.mu.Unlock()

	conn, err := t.dial(ctx)
	if err == nil {
		d.conn = newStreamConn(conn, t.idle)
	}
	d.err = err
	t.mu.Lock()
	t.dialing = nil
	if t.closed && d.conn != nil {
		d.conn.fail(ErrClosed)
		d.conn, d.err = nil, ErrClosed
	}
	if d.conn != nil {
		t.conn = d.conn
	}
	t.mu.Unlock()
	close(d.done)
	return d.conn, true, d.err
}

func (t *tlsTransport) close() {
	t.mu.Lock()
	t.closed = true
	sc := t.conn
	t.conn = nil
	t.mu.Unlock()
	if sc != nil {
		sc.fail(ErrClosed)
	}
}

var errConnDone = errors.New("connection closed")

// streamConn is one pipelined DNS connection: writers take turns, one
// reader hands each answer to the query waiting for its ID.
type streamConn struct {
	conn net.Conn
	idle time.Duration
	wmu  sync.Mutex // serializes writes
	done chan struct{}

	mu      sync.Mutex
	pending map[uint16]chan *dns.Msg // guarded by mu
	err     error                    // guarded by mu; set once, when the connection ends
}

func newStreamConn(conn net.Conn, idle time.Duration) *streamConn {
	sc := &streamConn{conn: conn, idle: idle, done: make(chan struct{}), pending: make(map[uint16]chan *dns.Msg)}
	conn.SetReadDeadline(time.Now().Add(idle))
	go sc.read()
	return sc
}

func (sc *streamConn) alive() bool {
	select {
	case <-sc.done:
		return false
	default:
		return true
	}
}

func (sc *streamConn) exchange(ctx context.Context, query []byte) (*dns.Msg, error) {
	ch := make(chan *dns.Msg, 1)
	sc.mu.Lock()
	if sc.err != nil {
		sc.mu.Unlock()
		return nil, errConnDone
	}
	id := uint16(rand.Uint32())
	for sc.pending[id] != nil {
		id++
	}
	sc.pending[id] = ch
	sc.mu.Unlock()
	defer func() {
		sc.mu.Lock()
		delete(sc.pending, id)
		sc.mu.Unlock()
	}()

	// Every query pushes the idle deadline out; the reader fails the
	// connection once nothing was asked for that long.
	sc.conn.SetReadDeadline(time.Now().Add(sc.idle))
	sc.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		sc.conn.SetWriteDeadline(dl)
	} else {
		sc.conn.SetWriteDeadline(time.Time{})
	}
	err := writeFramed(sc.conn, withID(query, id))
	sc.wmu.Unlock()
	if err != nil {
		sc.fail(err)
		return nil, fmt.Errorf("%w: %v", errConnDone, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-sc.done:
		return nil, fmt.Errorf("%w: %v", errConnDone, sc.failure())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (sc *streamConn) read() {
	for {
		b, err := readFramed(sc.conn)
		if err != nil {
			sc.fail(err)
			return
		}
		id := binary.BigEndian.Uint16(b)
		sc.mu.Lock()
		ch := sc.pending[id]
		sc.mu.Unlock()
		if ch == nil {
			continue // the query gave up already
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			sc.fail(fmt.Errorf("unpack reply: %w", err))
			return
		}
		select {
		case ch <- m:
		default:
		}
	}
}

func (sc *streamConn) fail(err error) {
	sc.mu.Lock()
	if sc.err != nil {
		sc.mu.Unlock()
		return
	}
	sc.err = err
	sc.mu.Unlock()
	close(sc.done)
	sc.conn.Close()
}

func (sc *streamConn) failure() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.err
}

// httpsTransport is DNS over HTTPS (RFC 8484) with net/http over HTTP/2,
// which multiplexes queries on one connection and pings it when idle so a
// dead one is noticed before a query waits on it.
type httpsTransport struct {
	url    string
	method string
	client *http.Client
	tr     *http.Transport
}

func newHTTPSTransport(ep endpoint, conf *tls.Config, timeout time.Duration) *httpsTransport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	addr := ep.addr
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	tr := &http.Transport{
		// Never a proxy from the environment: DNS goes where it is
		// configured to, and the URL's host is not looked up.
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: timeout,
		ForceAttemptHTTP2:   true,
		Protocols:           &protos,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     5 * time.Second,
		},
	}
	return &httpsTransport{url: ep.url, method: ep.method, client: &http.Client{Transport: tr}, tr: tr}
}

// dohMaxSize bounds a DoH reply body: a DNS message is at most 64 KiB.
const dohMaxSize = 65535

func (t *httpsTransport) exchange(ctx context.Context, query []byte) (*dns.Msg, error) {
	// RFC 8484 §4.1: ID 0, so that equal questions are equal requests
	// for HTTP caches.
	b := withID(query, 0)
	var req *http.Request
	var err error
	if t.method == http.MethodGet {
		sep := "?"
		if strings.Contains(t.url, "?") {
			sep = "&"
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, t.url+sep+"dns="+base64.RawURLEncoding.EncodeToString(b), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(b))
		if err == nil {
			req.Header.Set("Content-Type", "application/dns-message")
		}
	}
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/dns-message")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("http status %s", resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/dns-message" {
		return nil, fmt.Errorf("reply has content type %q, want application/dns-message", resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, dohMaxSize+1))
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if len(body) > dohMaxSize {
		return nil, errors.New("reply larger than a DNS message")
	}
	if len(body) < 12 {
		return nil, errShortRead
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		return nil, fmt.Errorf("unpack reply: %w", err)
	}
	return m, nil
}

func (t *httpsTransport) close() { t.tr.CloseIdleConnections() }
