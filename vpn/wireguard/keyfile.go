package wireguard

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ReadPrivateKeyFile reads a base64 private key, as written by wg genkey
// or WritePrivateKeyFile, from path. It refuses a file that group or other
// may access (mode & 0o077 != 0). Surrounding whitespace is ignored.
func ReadPrivateKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("read private key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("read private key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("read private key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Key{}, fmt.Errorf("read private key %s: mode %04o gives group or other access, want 0600 or stricter", path, perm)
	}
	// A key file is 44 characters and a newline; anything much longer is
	// not a key file.
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return Key{}, fmt.Errorf("read private key %s: %w", path, err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("read private key %s: %w", path, err)
	}
	return k, nil
}

// WritePrivateKeyFile writes k in base64 with a trailing newline to path,
// with mode 0600. It writes a temporary file in the same directory, syncs
// it and renames it over path, so path holds either the old or the new
// key, never a partial one.
func WritePrivateKeyFile(path string, k Key) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it independent of that.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	if _, err := f.WriteString(k.String() + "\n"); err != nil {
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	// Sync the directory so the rename itself survives a crash.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
