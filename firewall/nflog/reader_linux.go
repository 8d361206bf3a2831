//go:build linux

package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	// rcvbufSize is the socket receive buffer Open asks for.
	rcvbufSize = 4 << 20
	// recvBufSize is the buffer one datagram is read into. The kernel
	// batches packet messages into one skb of at most 128 KiB, or of one
	// message when a single packet needs more; copy ranges are capped
	// below 64 KiB.
	recvBufSize = 256 << 10
	// flushTimeout is how long the kernel may hold a batch of packet
	// messages before sending it, in 1/100 s.
	flushTimeout = 10
	// ackTimeout bounds the wait for the kernel's answer to a request.
	ackTimeout = 5 * time.Second
	// minCopyRange is the smallest copy range Open asks for.
	minCopyRange = 64
)

var (
	typePacket = netlink.HeaderType(unix.NFNL_SUBSYS_ULOG<<8 | nfulnlMsgPacket)
	typeConfig = netlink.HeaderType(unix.NFNL_SUBSYS_ULOG<<8 | nfulnlMsgConfig)
	typeProbe  = netlink.HeaderType(unix.NFNL_SUBSYS_ULOG<<8 | nfulnlMsgMax)
)

// Reader receives the packets of one NFLOG group. Its methods may be
// called from any goroutine; concurrent Reads take turns.
type Reader struct {
	conn  *netlink.Conn
	rc    syscall.RawConn
	group uint16

	closed  atomic.Bool
	dropped atomic.Uint64

	mu         sync.Mutex // serializes Read; guards the fields below
	buf        []byte
	queue      []message
	head       int
	nextSeq    uint32 // the NFULA_SEQ the next entry should carry
	overflowed bool   // ENOBUFS seen since the last entry
}

// message is one netlink message of a received datagram.
type message struct {
	typ  netlink.HeaderType
	seq  uint32
	data []byte
}

// Open binds NFLOG group on the network namespace netnsFd (an open file
// descriptor of a namespace, such as /run/netns/NAME; 0 means the
// caller's namespace) and asks the kernel to copy the first copyRange
// bytes of each packet. copyRange is raised to at least 64, and the
// kernel lowers it to at most 65531; 128 covers the headers an Entry
// reports unless IPv6 extension headers take more than 74 bytes.
//
// Open needs CAP_NET_ADMIN in the namespace's user namespace (and
// CAP_SYS_ADMIN to enter another namespace). The socket's receive buffer
// is raised to 4 MiB. The kernel sends batched entries at least every
// 100 ms. A group that another socket has bound gives an error wrapping
// ErrGroupInUse.
func Open(netnsFd int, group uint16, copyRange uint32) (*Reader, error) {
	copyRange = max(copyRange, minCopyRange)
	copyRange = min(copyRange, copyRangeMax)

	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("nflog: open netlink socket: %w", err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("nflog: open netlink socket: %w", err)
	}
	r := &Reader{conn: conn, rc: rc, group: group, buf: make([]byte, recvBufSize)}
	if err := r.setRcvbuf(rcvbufSize); err != nil {
		conn.Close()
		return nil, fmt.Errorf("nflog: set receive buffer: %w", err)
	}

	// One request binds the group and configures it, so that every entry
	// carries a sequence number from the first one on.
	var mode [6]byte // struct nfulnl_msg_config_mode, packed
	binary.BigEndian.PutUint32(mode[0:], copyRange)
	mode[4] = nfulnlCopyPacket
	req := r.nfgenmsg()
	req = appendAttr(req, nfulaCfgCmd, []byte{nfulnlCfgCmdBind})
	req = appendAttr(req, nfulaCfgMode, mode[:])
	req = appendAttr(req, nfulaCfgTimeout, binary.BigEndian.AppendUint32(nil, flushTimeout))
	req = appendAttr(req, nfulaCfgFlags, binary.BigEndian.AppendUint16(nil, nfulnlCfgFSeq))

	if err := r.request(typeConfig, req); err != nil {
		err = r.bindError(err)
		conn.Close()
		return nil, err
	}
	return r, nil
}

// bindError explains why the kernel refused to bind the group.
func (r *Reader) bindError(err error) error {
	switch {
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("nflog: bind group %d: %w", r.group, ErrGroupInUse)
	case errors.Is(err, unix.EPERM):
		// The kernel answers EPERM both to a caller without
		// CAP_NET_ADMIN and to a group that another socket has bound.
		// A message type the subsystem does not handle tells them apart:
		// it fails with EPERM only for the first.
		if perr := r.request(typeProbe, r.nfgenmsg()); !errors.Is(perr, unix.EPERM) {
			return fmt.Errorf("nflog: bind group %d: %w", r.group, ErrGroupInUse)
		}
		return fmt.Errorf("nflog: bind group %d: %w (CAP_NET_ADMIN is needed)", r.group, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("nflog: bind group %d: %w (is nfnetlink_log available?)", r.group, err)
	}
	return fmt.Errorf("nflog: bind group %d: %w", r.group, err)
}

// setRcvbuf sets the receive buffer with SO_RCVBUFFORCE, which ignores
// net.core.rmem_max, falling back to SO_RCVBUF, which does not.
func (r *Reader) setRcvbuf(size int) error {
	var serr error
	if err := r.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	}); err != nil {
		return err
	}
	if serr == nil {
		return nil
	}
	return r.conn.SetReadBuffer(size)
}

// nfgenmsg returns the nfgenmsg header of a request about r's group.
func (r *Reader) nfgenmsg() []byte {
	return []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, byte(r.group >> 8), byte(r.group)}
}

// appendAttr appends a netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, val []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+len(val)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// request sends a request with NLM_F_ACK and waits for the kernel's
// answer. Packet messages that arrive first are kept for Read.
func (r *Reader) request(typ netlink.HeaderType, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	req, err := r.conn.Send(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Acknowledge},
		Data:   data,
	})
	if err != nil {
		return err
	}
	if err := r.conn.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
		return err
	}
	defer r.conn.SetReadDeadline(time.Time{})

	for {
		start := len(r.queue)
		if err := r.recv(); err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				r.overflowed = true
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("no answer from the kernel within %v", ackTimeout)
			}
			return err
		}
		// Messages kept in the queue must not point into r.buf, which
		// the next recv overwrites.
		kept := r.queue[:start]
		var (
			found  bool
			ackErr error
		)
		for _, m := range r.queue[start:] {
			if m.typ == netlink.Error && m.seq == req.Header.Sequence {
				found, ackErr = true, ackErrno(m.data)
				continue
			}
			if m.typ == typePacket {
				m.data = append([]byte(nil), m.data...)
				kept = append(kept, m)
			}
		}
		r.queue = kept
		if found {
			return ackErr
		}
	}
}

// ackErrno decodes the error code of an NLMSG_ERROR message.
func ackErrno(data []byte) error {
	if len(data) < 4 {
		return fmt.Errorf("%w: NLMSG_ERROR has %d bytes", ErrMalformed, len(data))
	}
	if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

// recv reads one datagram into r.buf and appends its messages to r.queue.
func (r *Reader) recv() error {
	var (
		n    int
		rerr error
	)
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, _, _, _, rerr = unix.Recvmsg(int(fd), r.buf, nil, 0)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	// A datagram larger than r.buf would lose its last messages, which
	// the sequence number of the next entry then counts as dropped.
	b := r.buf[:n]
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			break
		}
		r.queue = append(r.queue, message{
			typ:  netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
			seq:  binary.NativeEndian.Uint32(b[8:]),
			data: b[unix.NLMSG_HDRLEN:l],
		})
		b = b[min((l+3)&^3, len(b)):]
	}
	return nil
}

// Read blocks until the next entry arrives and returns it.
//
// After Close, Read returns an error wrapping net.ErrClosed. A message
// that cannot be decoded gives an error wrapping ErrMalformed; Read can
// be called again after it. When the socket's receive buffer overflows,
// Read counts the lost entries (see Dropped) and goes on.
func (r *Reader) Read() (Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.closed.Load() {
			return Entry{}, errClosed
		}
		if r.head == len(r.queue) {
			r.queue, r.head = r.queue[:0], 0
			if err := r.recv(); err != nil {
				switch {
				case r.closed.Load():
					return Entry{}, errClosed
				case errors.Is(err, unix.ENOBUFS):
					r.overflowed = true
					continue
				}
				return Entry{}, fmt.Errorf("nflog: receive: %w", err)
			}
			continue
		}
		m := r.queue[r.head]
		r.head++
		if m.typ != typePacket {
			// NLMSG_DONE ends a batch; acknowledgements are not
			// expected here.
			continue
		}
		e, seq, err := parse(m.data)
		if err != nil {
			return Entry{}, err
		}
		r.account(seq)
		return e, nil
	}
}

var errClosed = fmt.Errorf("nflog: reader closed: %w", net.ErrClosed)

// account adds the entries lost before an entry with sequence number seq.
// The kernel numbers a group's entries from 0 when it is bound.
func (r *Reader) account(seq seqInfo) {
	overflowed := r.overflowed
	r.overflowed = false
	if !seq.ok {
		if overflowed {
			r.dropped.Add(1)
		}
		return
	}
	// A number below the expected one (seen as a huge gap) is not
	// counted.
	if gap := seq.seq - r.nextSeq; gap < 1<<31 {
		r.dropped.Add(uint64(gap))
	}
	r.nextSeq = seq.seq + 1
}

// Dropped returns the number of entries lost, almost always because the
// socket's receive buffer overflowed (ENOBUFS). The kernel numbers each
// group's entries; Dropped counts the numbers missing between the entries
// Read returned, so entries lost in one overflow are counted when the
// next entry after it is read.
func (r *Reader) Dropped() uint64 {
	return r.dropped.Load()
}

// Close unbinds the group (best effort: the kernel also unbinds it when
// the socket closes) and closes the socket, unblocking a pending Read.
// Calling Close more than once does nothing.
func (r *Reader) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	// No acknowledgement is asked for: a concurrent Read may be reading
	// the socket.
	_, _ = r.conn.Send(netlink.Message{
		Header: netlink.Header{Type: typeConfig, Flags: netlink.Request},
		Data:   appendAttr(r.nfgenmsg(), nfulaCfgCmd, []byte{nfulnlCfgCmdUnbind}),
	})
	if err := r.conn.Close(); err != nil {
		return fmt.Errorf("nflog: close: %w", err)
	}
	return nil
}
