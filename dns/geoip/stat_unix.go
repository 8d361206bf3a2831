//go:build unix

package geoip

import (
	"io/fs"
	"syscall"
)

// devIno returns the device and inode of a file, which change when a file
// is replaced by rename even if size and mtime happen to match.
func devIno(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
