package wireguard

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// embedded is a wireguard-go device over TUN. This process configures it
// directly (Device, ConfigureDevice); it also serves the device's UAPI
// socket, so that wg(8) and other tools can show and set it like any
// userspace WireGuard device.
type embedded struct {
	name      string
	dev       *device.Device
	uapi      net.Listener
	closeUAPI func() // closes uapi once: a second Close would close a reused descriptor
	log       atomic.Pointer[slog.Logger]
	// socket is the UAPI socket's path; wgLink is the link to it in
	// /var/run/wireguard this device made for wg(8), "" when it made
	// none, and unlisted says why it made none ("" when the socket is in
	// /var/run/wireguard itself).
	socket, wgLink, unlisted string

	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup // the accept loop and the UAPI handlers
	done    chan struct{}
}

var _ wgClient = (*embedded)(nil)

// startEmbedded creates the TUN name with mtu, starts a wireguard-go device
// on it and serves the device's UAPI socket in socketDir (wgSocketDir
// when empty). The link stays down.
func startEmbedded(name string, mtu int, socketDir string, log *slog.Logger) (*embedded, error) {
	dir := socketDir
	if dir == "" {
		dir = wgSocketDir
	}
	path := filepath.Join(dir, name+".sock")
	if err := prepareSocketDir(dir, socketDir == ""); err != nil {
		return nil, fmt.Errorf("UAPI socket %s: %w", path, err)
	}
	tdev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("create TUN: %w", err)
	}
	e := &embedded{name: name, socket: path, conns: make(map[net.Conn]struct{}), done: make(chan struct{})}
	e.setLog(log)
	e.dev = device.NewDevice(tdev, conn.NewDefaultBind(), &device.Logger{
		Verbosef: e.logf(false),
		Errorf:   e.logf(true),
	})

	e.uapi, err = listenUAPI(path)
	if err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("UAPI socket %s: %w", path, err)
	}
	e.closeUAPI = sync.OnceFunc(func() {
		e.uapi.Close() // removes the socket
		e.unlinkWG()
	})
	if socketDir != "" {
		e.linkWG()
	}

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

// Device implements wgClient: the device's configuration, read in this
// process.
func (e *embedded) Device(name string) (*wgtypes.Device, error) {
	text, err := e.dev.IpcGet()
	if err != nil {
		return nil, err
	}
	return uapiDevice(name, text)
}

// ConfigureDevice implements wgClient: cfg applied in this process.
func (e *embedded) ConfigureDevice(name string, cfg wgtypes.Config) error {
	return e.dev.IpcSet(uapiSet(cfg))
}

// Close implements wgClient; the device itself is closed by close.
func (e *embedded) Close() error { return nil }

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
