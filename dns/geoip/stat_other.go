//go:build !unix

package geoip

import "io/fs"

// devIno is not known here; size and mtime alone tell a change.
func devIno(fi fs.FileInfo) (dev, ino uint64) { return 0, 0 }
