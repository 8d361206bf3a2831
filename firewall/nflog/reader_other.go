//go:build !linux

package nflog

import "errors"

// errUnsupported is what Open and Read return off Linux.
var errUnsupported = errors.New("nflog: NFLOG needs Linux")

// Reader receives the packets of one NFLOG group (Linux only).
type Reader struct{}

// Open fails off Linux.
func Open(netnsFd int, group uint16, copyRange uint32) (*Reader, error) {
	return nil, errUnsupported
}

// Read fails off Linux.
func (r *Reader) Read() (Entry, error) { return Entry{}, errUnsupported }

// Close does nothing off Linux.
func (r *Reader) Close() error { return nil }

// Dropped returns 0 off Linux.
func (r *Reader) Dropped() uint64 { return 0 }
