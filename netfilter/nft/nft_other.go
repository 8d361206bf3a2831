//go:build !linux

package nft

import (
	"errors"

	"github.com/homeedge/edge/netfilter/ruleset"
)

// errUnsupported is what every kernel operation returns off Linux.
var errUnsupported = errors.New("nftables needs Linux")

// Conn is a connection to the nftables of one network namespace (Linux
// only).
type Conn struct{}

// Open fails off Linux.
func Open(netnsFd int) (*Conn, error) { return nil, errUnsupported }

// Close does nothing off Linux.
func (c *Conn) Close() error { return nil }

// ApplyOption changes what Apply carries into the new table.
type ApplyOption func()

// WithState carries st into the new table (Linux only).
func WithState(st *State) ApplyOption { return func() {} }

// KeepState carries the live table's state into the new one (Linux only).
func KeepState() ApplyOption { return func() {} }

// Apply fails off Linux.
func Apply(c *Conn, r *ruleset.Ruleset, opts ...ApplyOption) error { return errUnsupported }

// Validate fails off Linux.
func Validate(c *Conn, r *ruleset.Ruleset, opts ...ApplyOption) error { return errUnsupported }

// TableExists fails off Linux.
func TableExists(c *Conn, table string) (bool, error) { return false, errUnsupported }

// ReadRuleIDs fails off Linux.
func ReadRuleIDs(c *Conn, table string) (map[string]int, error) { return nil, errUnsupported }

// ReadCounters fails off Linux.
func ReadCounters(c *Conn, table string) (map[string]Counter, error) { return nil, errUnsupported }

// ReadSetElements fails off Linux.
func ReadSetElements(c *Conn, table, set string) ([]SetElement, error) { return nil, errUnsupported }

// ReadState fails off Linux.
func ReadState(c *Conn, table string) (*State, error) { return nil, errUnsupported }

// Delete fails off Linux.
func Delete(c *Conn, table string) error { return errUnsupported }

// ProbeFlowtable fails off Linux.
func ProbeFlowtable(c *Conn) error { return errUnsupported }

// FlowtableSupported is false off Linux.
func FlowtableSupported(c *Conn) bool { return false }

// UpdateSet fails off Linux.
func UpdateSet(c *Conn, table string, s *ruleset.Set, put, del []ruleset.Element) error {
	return errUnsupported
}
