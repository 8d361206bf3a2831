//go:build !linux

package ctlsock

import (
	"errors"
	"net"
)

func peerCred(net.Conn) (Caller, error) {
	return Caller{}, errors.New("peer credentials are only supported on Linux")
}

func supplementaryGroups(int) ([]int, error) { return nil, errors.New("unsupported") }
