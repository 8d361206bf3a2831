package geoip

import (
	"math"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// record is the part of a database record that Lookup returns.
type record struct {
	country, continent string
	asn                uint32
}

// countryRecord and asnRecord decode a record straight from the database
// into a record (mmdbdata.CursorUnmarshaler), reading only the fields
// Lookup returns and skipping the rest (names, city, location, ...). Unlike
// reflection, this decodes into memory the caller already has: the cache
// entry.
type (
	countryRecord record
	asnRecord     record
)

// maxCodeLen bounds the code strings read, so that a hostile file cannot
// make a lookup copy megabytes.
const maxCodeLen = 16

// UnmarshalMaxMindDBCursor reads country.iso_code,
// registered_country.iso_code (used when there is no country) and
// continent.code.
func (r *countryRecord) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	var country, registered, continent string
	entries, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[countryRecord](err)
	}
	var next mmdbdata.Cursor
	for {
		key, value, ok := entries.Next(next)
		if !ok {
			break
		}
		switch string(key) {
		case "country":
			country, next, err = readField(value, "iso_code")
		case "registered_country":
			registered, next, err = readField(value, "iso_code")
		case "continent":
			continent, next, err = readField(value, "code")
		default:
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	if country == "" {
		country = registered
	}
	*r = countryRecord{country: code(country), continent: code(continent)}
	return entries.End()
}

// readField reads the string field name of the map at c.
func readField(c mmdbdata.Cursor, name string) (string, mmdbdata.Cursor, error) {
	entries, err := c.Map()
	if err != nil {
		return "", mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[map[string]string](err)
	}
	var out string
	var next mmdbdata.Cursor
	for {
		key, value, ok := entries.Next(next)
		if !ok {
			break
		}
		if string(key) == name {
			out, next, err = value.ReadStringMaxSize(maxCodeLen)
			if err != nil {
				err = mmdbdata.NormalizeUnmarshalError[string](err)
			}
		} else {
			next, err = value.Skip()
		}
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
	}
	next, err = entries.End()
	return out, next, err
}

// UnmarshalMaxMindDBCursor reads autonomous_system_number.
func (r *asnRecord) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	var asn uint32
	entries, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[asnRecord](err)
	}
	var next mmdbdata.Cursor
	for {
		key, value, ok := entries.Next(next)
		if !ok {
			break
		}
		if string(key) == "autonomous_system_number" {
			var v uint64
			var signed bool
			v, signed, next, err = value.ReadInteger()
			switch {
			case err != nil:
				err = mmdbdata.NormalizeUnmarshalError[uint32](err)
			case signed && int64(v) < 0, v > math.MaxUint32:
				err = mmdbdata.NewUnmarshalTypeError[uint32](v)
			default:
				asn = uint32(v)
			}
		} else {
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	*r = asnRecord{asn: asn}
	return entries.End()
}

// decode reads the record res points to into rec; on error rec is left
// zero (unknown).
func decode(res maxminddb.Result, k kind, rec *record) error {
	var err error
	if k == kindASN {
		err = res.Decode((*asnRecord)(rec))
	} else {
		err = res.Decode((*countryRecord)(rec))
	}
	if err != nil {
		*rec = record{}
	}
	return err
}

// code returns s in upper case if it is a two-letter code, else "", so
// that callers can compare codes without normalizing them.
func code(s string) string {
	if len(s) != 2 {
		return ""
	}
	a, b := upper(s[0]), upper(s[1])
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return ""
	}
	if a == s[0] && b == s[1] {
		return s
	}
	return string([]byte{a, b})
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// cacheBits sizes the record cache: 8192 slots, 64 KiB of pointers per
// database. A country database has a few thousand distinct records, so
// nearly every lookup hits; ASN and city databases have tens of thousands,
// and real traffic, concentrated on few networks, still mostly hits.
const cacheBits = 13

// recordCache maps record offsets to decoded records. It is two-way set
// associative and lock-free: a slot holds one immutable entry, replaced
// whole, so readers never wait. Two racing misses at worst evict each
// other, which costs a decode, never a wrong answer. Offsets are only
// meaningful within one file, so each database has its own cache and a
// reload starts cold.
type recordCache [1 << cacheBits]atomic.Pointer[cacheEntry]

type cacheEntry struct {
	off uintptr
	rec record
}

// get returns the entry for off, or nil.
func (c *recordCache) get(off uintptr) *cacheEntry {
	i := cacheSet(off)
	if e := c[i].Load(); e != nil && e.off == off {
		return e
	}
	if e := c[i+1].Load(); e != nil && e.off == off {
		return e
	}
	return nil
}

// put adds e as the newest entry of its set, keeping the previous newest
// and dropping the oldest, so two hot records that share a set both stay.
func (c *recordCache) put(e *cacheEntry) {
	i := cacheSet(e.off)
	if prev := c[i].Load(); prev != nil {
		c[i+1].Store(prev)
	}
	c[i].Store(e)
}

// cacheSet returns the first slot of off's set. It spreads offsets with
// Fibonacci hashing: record offsets step by similar record sizes, so their
// low bits alone would crowd some sets.
func cacheSet(off uintptr) uint64 {
	return (uint64(off) * 0x9E3779B97F4A7C15) >> (64 - cacheBits) &^ 1
}
