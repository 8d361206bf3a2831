// Package identity makes the identity material of a fleet host: machine-id
// and hostId, SSH host key, WireGuard keys, Nebula certificates and overlay
// or LAN addresses. It also encrypts private material with age in the
// format agenix reads, to SSH ed25519/RSA keys and age X25519 recipients.
package identity

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// MachineID returns a random machine-id: the 32 lowercase hex digits of a
// version-4 UUID without hyphens, the format of /etc/machine-id.
func MachineID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("machine-id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:]), nil
}

// HostID returns the first 8 hex digits of machineID, the value of NixOS
// networking.hostId (/etc/hostid). machineID must pass ValidMachineID.
func HostID(machineID string) (string, error) {
	if !ValidMachineID(machineID) {
		return "", fmt.Errorf("hostId: machine-id %q is not 32 lowercase hex digits (or is all zero)", machineID)
	}
	return machineID[:8], nil
}

// ValidMachineID reports whether s is 32 lowercase hex digits and not all
// zero, as systemd requires of /etc/machine-id.
func ValidMachineID(s string) bool {
	if len(s) != 32 {
		return false
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '0':
		case '1' <= c && c <= '9', 'a' <= c && c <= 'f':
			zero = false
		default:
			return false
		}
	}
	return !zero
}
