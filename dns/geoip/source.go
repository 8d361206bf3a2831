package geoip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// kind is what a database is used for.
type kind uint8

const (
	kindCountry kind = iota
	kindASN
)

func (k kind) String() string {
	if k == kindASN {
		return "asn"
	}
	return "country"
}

// accepts reports whether a file of database_type typ can serve as k. The
// names are matched loosely because vendors spell them differently
// ("GeoLite2-City", "GeoIP2-Enterprise", "DBIP-Country-Lite",
// "DBIP-ASN-Lite (compat=GeoLite2-ASN)"); probe then checks that the
// records really carry the fields.
func (k kind) accepts(typ string) bool {
	t := strings.ToLower(typ)
	if k == kindASN {
		return strings.Contains(t, "asn") || strings.Contains(t, "isp")
	}
	return strings.Contains(t, "country") || strings.Contains(t, "city") || strings.Contains(t, "enterprise")
}

// noun names what a k database is, with its article.
func (k kind) noun() string {
	if k == kindASN {
		return "an ASN"
	}
	return "a country or city"
}

func (k kind) wants() string {
	if k == kindASN {
		return "use an ASN database such as GeoLite2-ASN or DBIP-ASN-Lite"
	}
	return "use a country or city database such as GeoLite2-Country, GeoLite2-City or DBIP-Country-Lite"
}

// maxFileSize bounds what is read into memory. The largest commercial city
// databases are a few hundred MiB.
const maxFileSize = 2 << 30

// source is one configured database file.
type source struct {
	kind kind
	path string
	// cur is the database lookups use. A database never changes once
	// stored; a reload stores a new one.
	cur atomic.Pointer[database]
	// decodeErrors counts records that could not be decoded.
	decodeErrors prometheus.Counter

	// mu guards the failure state below. It is written by checks, which
	// also hold DB.reloadMu, and read by Status.
	mu        sync.Mutex
	failed    bool
	failID    fileID // the file that failed; zero if it could not be stat'ed
	failErr   string
	lastErr   string
	lastErrAt time.Time
}

// wrap names the database and file in err.
func (s *source) wrap(err error) error {
	return fmt.Errorf("geoip %s database %s: %w", s.kind, s.path, err)
}

// recordFailure notes a failed load of the file id and reports whether it
// is a new failure (another file or another error) worth logging and
// counting.
func (s *source) recordFailure(id fileID, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := err.Error()
	if s.failed && s.failID == id && s.failErr == msg {
		return false
	}
	s.failed, s.failID, s.failErr = true, id, msg
	s.lastErr, s.lastErrAt = msg, time.Now()
	return true
}

// unchangedFailure returns the last error if the file id is the one that
// failed last.
func (s *source) unchangedFailure(id fileID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed && s.failID == id {
		return errors.New(s.failErr)
	}
	return nil
}

func (s *source) clearFailure() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed, s.failID, s.failErr = false, fileID{}, ""
	s.lastErr, s.lastErrAt = "", time.Time{}
}

// lookup finds addr (valid, unmapped, without zone) in the current
// database.
func (s *source) lookup(addr netip.Addr) (record, netip.Prefix) {
	d := s.cur.Load()
	if d.ipv4Only && addr.Is6() {
		return record{}, netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	res := d.reader.Lookup(addr)
	if res.Err() != nil {
		// A broken search tree, which Verify (when it ran) rules out.
		s.decodeErrors.Inc()
		return record{}, netip.Prefix{}
	}
	p := res.Prefix()
	if addr.Is4() && !p.Addr().Is4() {
		// The IPv4 subtree of an IPv6 database is empty: the answer
		// holds for all of IPv4.
		p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	if !res.Found() {
		return record{}, p
	}
	off := res.Offset()
	if e := d.cache.get(off); e != nil {
		return e.rec, p
	}
	// Decoding into the new entry itself makes a miss cost one
	// allocation.
	e := &cacheEntry{off: off}
	if err := decode(res, s.kind, &e.rec); err != nil {
		// Cached as unknown too, so a bad record costs one decode.
		s.decodeErrors.Inc()
	}
	d.cache.put(e)
	return e.rec, p
}

// fileID tells whether a file changed: geoipupdate and most tools replace
// a file by rename (a new inode); an in-place rewrite changes size or
// mtime.
type fileID struct {
	size     int64
	mtime    int64
	dev, ino uint64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	id.dev, id.ino = devIno(fi)
	return id
}

func statFile(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, osErr(err)
	}
	return idOf(fi), nil
}

// osErr drops the path an *fs.PathError repeats: the caller names it.
func osErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadFile reads path whole and opens it as a k database. The id is that
// of the file read, also on error, so a failure is remembered against the
// right version of the file.
func loadFile(path string, k kind) (*database, fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileID{}, osErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileID{}, osErr(err)
	}
	id := idOf(fi)
	if !fi.Mode().IsRegular() {
		return nil, id, fmt.Errorf("not a regular file")
	}
	if fi.Size() > maxFileSize {
		return nil, id, fmt.Errorf("file is %d bytes; at most %d are read", fi.Size(), int64(maxFileSize))
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, id, fmt.Errorf("read: %v (the file shrank while it was read)", osErr(err))
	}
	d, err := openBytes(data, k)
	if err != nil {
		return nil, id, err
	}
	d.id = id
	return d, id, nil
}

// database is one loaded file. Nothing in it changes after openBytes but
// the cache, whose slots are atomic.
type database struct {
	reader   *maxminddb.Reader
	id       fileID
	typ      string
	built    time.Time
	loadedAt time.Time
	ipv4Only bool
	cache    recordCache
}

// metadataMarker starts the metadata section at the end of every MaxMind
// DB file.
var metadataMarker = []byte("\xAB\xCD\xEFMaxMind.com")

// openBytes checks that data is a sound k database and opens it. data is
// kept, and must not change afterwards.
func openBytes(data []byte, k kind) (*database, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	if !bytes.Contains(data, metadataMarker) {
		return nil, errors.New("not a MaxMind DB file, or a truncated one: it has no metadata section")
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("unreadable MaxMind DB metadata (a truncated file?): %v", err)
	}
	typ := r.Metadata.DatabaseType
	if !k.accepts(typ) {
		return nil, fmt.Errorf("database type %q is not %s database; %s", typ, k.noun(), k.wants())
	}
	// Verify walks the whole tree and every record. A download cut short
	// or a bad disk block is caught here, once per file, instead of
	// producing wrong answers later; the decoder's own checks still
	// guard every lookup. Verify also insists on a metadata description,
	// which readers do not need and some third-party writers leave out:
	// such files get only those per-lookup checks rather than being
	// refused.
	if len(r.Metadata.Description) > 0 {
		if err := r.Verify(); err != nil {
			return nil, fmt.Errorf("corrupt database: %v", err)
		}
	}
	d := &database{
		reader:   r,
		typ:      typ,
		built:    r.Metadata.BuildTime().UTC(),
		loadedAt: time.Now(),
		ipv4Only: r.Metadata.IPVersion == 4,
	}
	if err := d.probe(k, data); err != nil {
		return nil, err
	}
	return d, nil
}

// probeRecords bounds how many records probe decodes looking for one with
// data.
const probeRecords = 1000

// probe finds networks that have data and checks that their records decode
// and carry the fields a k database should have, so that a file of
// another schema is refused rather than answering "unknown" for every
// address. It looks each one up too, to see the lookup path work.
//
// It walks the search tree itself rather than with Reader.Networks: a
// hostile tree whose nodes share children has exponentially many paths,
// and Networks would follow them all, while this walk visits each node
// once.
func (d *database) probe(k kind, data []byte) error {
	md := d.reader.Metadata
	if md.RecordSize != 24 && md.RecordSize != 28 && md.RecordSize != 32 {
		return fmt.Errorf("corrupt database: record size %d is not 24, 28 or 32", md.RecordSize)
	}
	nodeCount := md.NodeCount
	nodeSize := md.RecordSize / 4
	if nodeSize*nodeCount > uint(len(data)) {
		return errors.New("corrupt database: the search tree is larger than the file")
	}
	depth := uint(128)
	if d.ipv4Only {
		depth = 32
	}
	type step struct {
		node, bit uint
		addr      [16]byte
	}
	visited := make([]uint64, (nodeCount+63)/64)
	stack := []step{{}}
	records := 0
	for len(stack) > 0 && records < probeRecords {
		st := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if st.node < nodeCount {
			if visited[st.node/64]&(1<<(st.node%64)) != 0 || st.bit >= depth {
				continue
			}
			visited[st.node/64] |= 1 << (st.node % 64)
			left, right := readNode(data[st.node*nodeSize:], md.RecordSize)
			r := st
			r.node, r.bit = right, st.bit+1
			r.addr[st.bit/8] |= 0x80 >> (st.bit % 8)
			stack = append(stack, r, step{node: left, bit: st.bit + 1, addr: st.addr})
			continue
		}
		if st.node == nodeCount {
			continue // no data
		}
		records++
		addr := netip.AddrFrom16(st.addr)
		if d.ipv4Only {
			addr = netip.AddrFrom4([4]byte(st.addr[:4]))
		}
		res := d.reader.Lookup(addr)
		if err := res.Err(); err != nil {
			return fmt.Errorf("corrupt database: lookup of %s: %v", addr, err)
		}
		var rec record
		if err := decode(res, k, &rec); err != nil {
			return fmt.Errorf("record of %s: %v", res.Prefix(), err)
		}
		if rec != (record{}) {
			return nil
		}
	}
	switch {
	case records == 0:
		return errors.New("the database holds no networks")
	case k == kindASN:
		return fmt.Errorf("no record has an autonomous_system_number; %s", k.wants())
	}
	return fmt.Errorf("no record has a country or continent code; %s", k.wants())
}

// readNode reads the two records of a search tree node at the start of b
// (MaxMind DB spec, "Search Tree Section").
func readNode(b []byte, recordSize uint) (left, right uint) {
	switch recordSize {
	case 24:
		return uint(b[0])<<16 | uint(b[1])<<8 | uint(b[2]), uint(b[3])<<16 | uint(b[4])<<8 | uint(b[5])
	case 28:
		return uint(b[3]>>4)<<24 | uint(b[0])<<16 | uint(b[1])<<8 | uint(b[2]),
			uint(b[3]&0x0f)<<24 | uint(b[4])<<16 | uint(b[5])<<8 | uint(b[6])
	default: // 32; probe checked that there is no other size
		return uint(binary.BigEndian.Uint32(b)), uint(binary.BigEndian.Uint32(b[4:]))
	}
}
