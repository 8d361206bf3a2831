package ctlsock

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// peerCred returns the uid, gid and pid of the process at the other end
// of a unix socket connection.
func peerCred(c net.Conn) (Caller, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Caller{}, fmt.Errorf("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Caller{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Caller{}, err
	}
	if credErr != nil {
		return Caller{}, credErr
	}
	return Caller{UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid), Known: true}, nil
}

// supplementaryGroups reads the groups of a live process from
// /proc/<pid>/status: the groups it holds now, not what /etc/group says.
func supplementaryGroups(pid int) ([]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "Groups:")
		if !ok {
			continue
		}
		var gids []int
		for _, g := range strings.Fields(rest) {
			n, err := strconv.Atoi(g)
			if err == nil {
				gids = append(gids, n)
			}
		}
		return gids, nil
	}
	return nil, s.Err()
}
