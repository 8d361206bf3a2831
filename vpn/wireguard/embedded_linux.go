package wireguard

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// embedded is a wireguard-go device over TUN that serves its UAPI socket
// in this process, so that wgctrl and wg(8) configure it like any other
// userspace WireGuard device.
type embedded struct {
	dev       *device.Device
	uapi      net.Listener
	closeUAPI func() // closes uapi once: a second Close would close a reused descriptor
	log       atomic.Pointer[slog.Logger]

	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup // the accept loop and the UAPI handlers
	done    chan struct{}
}

// startEmbedded creates the TUN name with mtu, starts a wireguard-go device
// on it and serves the device's UAPI socket. The link stays down.
func startEmbedded(name string, mtu int, log *slog.Logger) (*embedded, error) {
	tdev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("create TUN: %w", err)
	}
	e := &embedded{conns: make(map[net.Conn]struct{}), done: make(chan struct{})}
	e.setLog(log)
	e.dev = device.NewDevice(tdev, conn.NewDefaultBind(), &device.Logger{
		Verbosef: e.logf(false),
		Errorf:   e.logf(true),
	})

	f, err := ipc.UAPIOpen(name)
	if err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("open UAPI socket %s: %w", socketPath(name), err)
	}
	e.uapi, err = ipc.UAPIListen(name, f)
	// UAPIListen works on a duplicate of f's descriptor.
	f.Close()
	if err != nil {
		e.dev.Close()
		os.Remove(socketPath(name))
		return nil, fmt.Errorf("listen on UAPI socket %s: %w", socketPath(name), err)
	}
	e.closeUAPI = sync.OnceFunc(func() { e.uapi.Close() })

	e.wg.Add(1)
	go e.serve()
	go func() {
		// wireguard-go closes the device itself when its TUN goes away;
		// the socket must not outlive it.
		select {
		case <-e.dev.Wait():
			e.closeUAPI()
		case <-e.done:
		}
	}()
	return e, nil
}

// serve accepts UAPI connections until the listener fails or is closed.
func (e *embedded) serve() {
	defer e.wg.Done()
	for {
		c, err := e.uapi.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		if e.closing {
			e.mu.Unlock()
			c.Close()
			continue
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go func() {
			defer e.wg.Done()
			e.dev.IpcHandle(c) // closes c
			e.mu.Lock()
			delete(e.conns, c)
			e.mu.Unlock()
		}()
	}
}

// close stops serving the UAPI socket, which removes it, and closes the
// device, which removes the TUN.
func (e *embedded) close() {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return
	}
	e.closing = true
	close(e.done)
	e.closeUAPI()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.dev.Close()
	e.wg.Wait()
}

// setLog sets the logger for the device's messages; nil discards them.
func (e *embedded) setLog(log *slog.Logger) {
	e.log.Store(log)
}

// logf returns a printf-style function that logs wireguard-go's messages
// at debug level, marking its error messages.
func (e *embedded) logf(isError bool) func(format string, args ...any) {
	return func(format string, args ...any) {
		l := e.log.Load()
		if l == nil || !l.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		msg := fmt.Sprintf(format, args...)
		if isError {
			l.Debug(msg, "wireguard_go_error", true)
		} else {
			l.Debug(msg)
		}
	}
}
