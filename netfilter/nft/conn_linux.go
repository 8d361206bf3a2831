//go:build linux

package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is a connection to the nftables of one network namespace. Writes
// go out as raw netlink batches this package builds and sends itself (so
// that every kernel error can be tied to the object that caused it). A
// Conn is safe for
// concurrent use; its batches and dumps are serialized.
//
// Rules and set metadata are read through google/nftables; set elements
// are dumped and decoded here (faster, for blocklists).
type Conn struct {
	// lib reads rules, sets and elements (a lasting connection).
	lib *nftables.Conn

	// mu guards the fields below and the use of sock.
	mu     sync.Mutex
	sock   *netlink.Conn
	raw    syscall.RawConn
	seq    uint32
	sndbuf int
	buf    []byte
}

// Open connects to the nftables of the network namespace netnsFd refers
// to; 0 means the caller's own namespace.
func Open(netnsFd int) (*Conn, error) {
	sock, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	c := &Conn{sock: sock, seq: uint32(time.Now().Unix()), buf: make([]byte, 1<<20)}
	fail := func(err error) (*Conn, error) {
		sock.Close()
		return nil, err
	}
	// Acks without the request echoed (a rejected element chunk would
	// come back whole), with the kernel's error message when it has one.
	if err := sock.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fail(fmt.Errorf("netlink cap-ack: %w", err))
	}
	_ = sock.SetOption(netlink.ExtendedAcknowledge, true)
	if c.raw, err = sock.SyscallConn(); err != nil {
		return fail(err)
	}
	// Room for the error reports of a badly broken batch; an overflow
	// is still detected and reported as such.
	c.setBuf(unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, 8<<20)
	c.lib, err = nftables.New(nftables.WithNetNSFd(netnsFd), nftables.AsLasting(),
		nftables.WithSockOptions(func(nl *netlink.Conn) error { return nl.SetReadBuffer(8 << 20) }))
	if err != nil {
		return fail(fmt.Errorf("open nftables connection: %w", err))
	}
	return c, nil
}

// Close closes both sockets.
func (c *Conn) Close() error {
	err := c.lib.CloseLasting()
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(err, c.sock.Close())
}

// setBuf sets a socket buffer size, forcing past the sysctl limit when
// allowed (root, CAP_NET_ADMIN).
func (c *Conn) setBuf(force, plain, n int) {
	_ = c.raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, force, n) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, plain, n)
		}
	})
}

// message is one nf_tables request of a batch, with the object it
// creates or deletes, for errors.
type message struct {
	typ   uint16 // NFT_MSG_*
	flags uint16
	data  []byte // nfgenmsg and attributes
	label string
}

const nlmsgHdrLen = 16

func nlAlign(n int) int { return (n + 3) &^ 3 }

func appendMsg(b []byte, typ, flags uint16, seq uint32, data []byte) []byte {
	n := nlmsgHdrLen + len(data)
	b = binary.NativeEndian.AppendUint32(b, uint32(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nfgen is the nfgenmsg header every nf_tables message starts with.
func nfgen(family uint8, resID uint16) []byte {
	return []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
}

// kernelError is one error the kernel reported for a batch.
type kernelError struct {
	label string
	errno syscall.Errno
	msg   string // extended ack message, if any
}

func (e kernelError) Error() string {
	s := fmt.Sprintf("%s: %v", e.label, e.errno)
	if e.msg != "" {
		s += " (" + e.msg + ")"
	}
	return s
}

// send sends msgs as one nf_tables transaction and waits for the
// kernel's verdict. Every message goes without NLM_F_ACK and NLM_F_ECHO
// except the last, which is acknowledged: the kernel reports an error
// for each refused message (tagged with its sequence number, which maps
// back to the message's label) and then the last message's ack, all
// before sendmsg returns. So the reply is complete once that ack has
// arrived, and a failing batch names its culprit exactly, without
// bisecting.
func (c *Conn) send(msgs []message) error { return c.batch(msgs, true) }

// batch is send, or with commit false the same batch without its
// NFNL_MSG_BATCH_END: the kernel processes every message as it would
// for a commit, finds the batch unfinished, and aborts it with
// NFNL_ABORT_VALIDATE, which first runs the checks a commit runs
// (jump loops, chain depth); what it refuses is reported exactly as for
// a commit, and nothing is applied either way. This is how nft -c checks
// a ruleset.
func (c *Conn) batch(msgs []message, commit bool) error {
	if len(msgs) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drain()
	size := 2 * nlAlign(nlmsgHdrLen+4) // batch begin and end
	for _, m := range msgs {
		size += nlAlign(nlmsgHdrLen + len(m.data))
	}
	base := c.seq
	c.seq += uint32(len(msgs)) + 2
	b := make([]byte, 0, size)
	b = appendMsg(b, unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, base, nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES))
	for i, m := range msgs {
		flags := m.flags&^(unix.NLM_F_ACK|unix.NLM_F_ECHO) | unix.NLM_F_REQUEST
		if i == len(msgs)-1 {
			flags |= unix.NLM_F_ACK
		}
		b = appendMsg(b, unix.NFNL_SUBSYS_NFTABLES<<8|m.typ, flags, base+1+uint32(i), m.data)
	}
	lastSeq := base + uint32(len(msgs))
	if commit {
		b = appendMsg(b, unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, lastSeq+1, nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES))
	}

	// The whole batch is one datagram, which must fit the send buffer.
	if need := len(b) + 64<<10; need > c.sndbuf {
		c.setBuf(unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, need)
		c.sndbuf = need
	}
	var serr error
	werr := c.raw.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), b, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
		return serr != unix.EAGAIN
	})
	if serr == nil {
		serr = werr
	}
	if serr != nil {
		return fmt.Errorf("send batch of %d messages (%d bytes): %w", len(msgs), len(b), serr)
	}

	label := func(seq uint32) string {
		if seq > base && seq <= lastSeq {
			return msgs[seq-base-1].label
		}
		return "commit" // batch begin or end
	}
	var errs []kernelError
	done := false
	_ = c.sock.SetReadDeadline(time.Now().Add(replyTimeout))
	defer c.sock.SetReadDeadline(time.Time{})
	for !done {
		// Until something went wrong, wait for the last message's ack;
		// once the kernel reported an error, everything it has to say is
		// already queued (it answers before sendmsg returns), and a reset
		// error list may never include that ack.
		n, err := c.recv(len(errs) == 0)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if errors.Is(err, unix.ENOBUFS) {
			return &BatchError{Errors: []string{"the kernel's error reports overflowed the netlink receive buffer; the batch was refused"}, Errno: unix.ENOBUFS}
		}
		if err != nil {
			return fmt.Errorf("receive batch result: %w", err)
		}
		nms, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return fmt.Errorf("parse batch result: %w", err)
		}
		for _, m := range nms {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4+nlmsgHdrLen {
				continue
			}
			code := int32(binary.NativeEndian.Uint32(m.Data[:4]))
			seq := binary.NativeEndian.Uint32(m.Data[4+8:])
			if seq-base > lastSeq+1-base {
				continue // not about this batch
			}
			if code != 0 {
				errs = append(errs, kernelError{label: label(seq), errno: syscall.Errno(-code), msg: extAckMsg(m)})
			}
			if seq == lastSeq {
				done = true
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	be := &BatchError{Errno: errs[0].errno}
	for _, e := range errs {
		be.Errors = append(be.Errors, e.Error())
	}
	return be
}

// replyTimeout bounds the wait for the kernel's answer; it answers a
// batch before sendmsg returns, so this only guards against surprises.
const replyTimeout = 30 * time.Second

// drain discards whatever an earlier, interrupted request left queued.
func (c *Conn) drain() {
	for {
		if _, err := c.recv(false); errors.Is(err, unix.EAGAIN) || err != nil && !errors.Is(err, unix.ENOBUFS) {
			return
		}
	}
}

// recv reads one datagram into c.buf. Without wait it returns EAGAIN when
// nothing is queued; with wait it blocks until the read deadline.
func (c *Conn) recv(wait bool) (int, error) {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = unix.Recvfrom(int(fd), c.buf, unix.MSG_DONTWAIT)
			if rerr != unix.EINTR {
				break
			}
		}
		// Returning false waits for the socket to become readable.
		return !(rerr == unix.EAGAIN && wait)
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// extAckMsg returns the NLMSGERR_ATTR_MSG text of an extended ack.
func extAckMsg(m syscall.NetlinkMessage) string {
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 {
		return ""
	}
	// With NETLINK_CAP_ACK only the request's header is echoed.
	tlvs := m.Data[4+nlmsgHdrLen:]
	if m.Header.Flags&unix.NLM_F_CAPPED == 0 && len(m.Data) >= 4+nlmsgHdrLen {
		reqLen := int(binary.NativeEndian.Uint32(m.Data[4:]))
		if 4+nlAlign(reqLen) <= len(m.Data) {
			tlvs = m.Data[4+nlAlign(reqLen):]
		}
	}
	ad, err := netlink.NewAttributeDecoder(tlvs)
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == unix.NLMSGERR_ATTR_MSG {
			return strings.TrimRight(ad.String(), "\x00")
		}
	}
	return ""
}

// dump sends an nf_tables dump request and calls fn with each reply's
// payload (after the nfgenmsg header). An interrupted dump (the object
// changed meanwhile) is retried.
func (c *Conn) dump(typ uint16, family uint8, attrs []byte, fn func(data []byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drain()
	for attempt := 0; ; attempt++ {
		intr, err := c.dumpOnce(typ, family, attrs, fn)
		if err != nil || !intr {
			return err
		}
		if attempt == 3 {
			return errors.New("dump interrupted by concurrent changes 4 times")
		}
	}
}

func (c *Conn) dumpOnce(typ uint16, family uint8, attrs []byte, fn func(data []byte) error) (intr bool, err error) {
	seq := c.seq
	c.seq++
	req := appendMsg(nil, unix.NFNL_SUBSYS_NFTABLES<<8|typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, append(nfgen(family, 0), attrs...))
	var serr error
	werr := c.raw.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), req, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
		return serr != unix.EAGAIN
	})
	if serr == nil {
		serr = werr
	}
	if serr != nil {
		return false, serr
	}
	_ = c.sock.SetReadDeadline(time.Now().Add(replyTimeout))
	defer c.sock.SetReadDeadline(time.Time{})
	var cbErr error
	for {
		n, err := c.recv(true)
		if err != nil {
			return false, err
		}
		nms, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return false, err
		}
		for _, m := range nms {
			if m.Header.Seq != seq {
				continue // a late reply to an earlier request
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return intr, cbErr
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
						return false, syscall.Errno(-code)
					}
				}
				return intr, cbErr
			default:
				if cbErr == nil && len(m.Data) >= 4 {
					cbErr = fn(m.Data[4:])
				}
			}
		}
	}
}
