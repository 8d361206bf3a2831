//go:build !linux

package wireguard

import (
	"errors"
	"runtime"
)

var errUnsupported = errors.New("wireguard: not supported on " + runtime.GOOS)

// Device is an open WireGuard interface. It exists only on Linux; on other
// systems Open always fails.
type Device struct{}

// Open returns an error: this package supports only Linux.
func Open(opts Options) (*Device, error) { return nil, errUnsupported }

// Name returns "".
func (d *Device) Name() string { return "" }

// Present fails off Linux.
func (d *Device) Present() bool { return false }

// Kind returns "".
func (d *Device) Kind() string { return "" }

// Fallback returns "".
func (d *Device) Fallback() string { return "" }

// Socket returns "".
func (d *Device) Socket() string { return "" }

// Unlisted returns "".
func (d *Device) Unlisted() string { return "" }

// Adopted returns false.
func (d *Device) Adopted() bool { return false }

// PublicKey returns the zero key.
func (d *Device) PublicKey() Key { return Key{} }

// ListenPort returns 0.
func (d *Device) ListenPort() int { return 0 }

// Reconfigure returns an error: this package supports only Linux.
func (d *Device) Reconfigure(opts Options) error { return errUnsupported }

// SetPeers returns an error: this package supports only Linux.
func (d *Device) SetPeers(peers []Peer) (Changes, error) { return Changes{}, errUnsupported }

// Peers returns an error: this package supports only Linux.
func (d *Device) Peers() ([]PeerStatus, error) { return nil, errUnsupported }

// Close returns an error: this package supports only Linux.
func (d *Device) Close() error { return errUnsupported }

// Detach returns an error: this package supports only Linux.
func (d *Device) Detach() error { return errUnsupported }

// Remove returns an error: this package supports only Linux.
func Remove(name, socketDir string) error { return errUnsupported }
