// Command mkmmdb writes a small GeoLite2-shaped MaxMind DB from a text
// file, so that benchmark and demo scripts can give Knot, PowerDNS and
// edge-dns the very same database.
//
//	mkmmdb -type country -o country.mmdb nets.txt
//	mkmmdb -type asn -o asn.mmdb < asns.txt
//
// Input lines (blank lines and # comments are skipped):
//
//	country, city:  PREFIX COUNTRY [CONTINENT]     198.51.100.0/24 DE EU
//	asn:            PREFIX ASN [ORGANIZATION...]   198.51.100.0/24 64501 Example-Org
//
// PREFIX may be a single address; COUNTRY may be "-" for a network with a
// continent only; ASN may be written AS64501. Later lines win where
// networks overlap.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/homeedge/edge/dns/geoip/geoiptest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkmmdb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "country", "database to write: country, city or asn")
	out := fs.String("o", "", "output `file` (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mkmmdb [-type country|city|asn] -o OUT.mmdb [INPUT]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	in, name := stdin, "stdin"
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "mkmmdb: %v\n", err)
			return 1
		}
		defer f.Close()
		in, name = f, fs.Arg(0)
	}
	if err := write(*typ, *out, in); err != nil {
		fmt.Fprintf(stderr, "mkmmdb: %s: %v\n", name, err)
		return 1
	}
	return 0
}

// write reads the entries of a typ database from in and writes it to out.
func write(typ, out string, in io.Reader) error {
	switch typ {
	case "country", "city":
		entries, err := parse(in, parseCountry)
		if err != nil {
			return err
		}
		if typ == "city" {
			return geoiptest.WriteCity(out, entries)
		}
		return geoiptest.WriteCountry(out, entries)
	case "asn":
		entries, err := parse(in, parseASN)
		if err != nil {
			return err
		}
		return geoiptest.WriteASN(out, entries)
	}
	return fmt.Errorf("unknown -type %q; use country, city or asn", typ)
}

// parse reads in line by line with parseLine, naming the line of an error.
func parse[E any](in io.Reader, parseLine func(prefix netip.Prefix, fields []string) (E, error)) ([]E, error) {
	var entries []E
	sc := bufio.NewScanner(in)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		p, err := parsePrefix(fields[0])
		if err == nil {
			var e E
			if e, err = parseLine(p, fields[1:]); err == nil {
				entries = append(entries, e)
				continue
			}
		}
		return nil, fmt.Errorf("line %d: %v", n, err)
	}
	return entries, sc.Err()
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix or address", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix or address", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set; did you mean %s?", p, p.Masked())
	}
	return p, nil
}

func parseCountry(p netip.Prefix, fields []string) (geoiptest.CountryEntry, error) {
	e := geoiptest.CountryEntry{Prefix: p}
	if len(fields) < 1 || len(fields) > 2 {
		return e, errors.New("want PREFIX COUNTRY [CONTINENT], such as 198.51.100.0/24 DE EU")
	}
	if fields[0] != "-" {
		if !isCode(fields[0]) {
			return e, fmt.Errorf("country %q: use two upper-case letters (DE, US) or -", fields[0])
		}
		e.Country = fields[0]
	}
	if len(fields) == 2 {
		if !isCode(fields[1]) {
			return e, fmt.Errorf("continent %q: use two upper-case letters (EU, NA, AS, SA, AF, OC, AN)", fields[1])
		}
		e.Continent = fields[1]
	}
	if e.Country == "" && e.Continent == "" {
		return e, errors.New("give a country or a continent")
	}
	return e, nil
}

func parseASN(p netip.Prefix, fields []string) (geoiptest.ASNEntry, error) {
	e := geoiptest.ASNEntry{Prefix: p}
	if len(fields) < 1 {
		return e, errors.New("want PREFIX ASN [ORGANIZATION], such as 198.51.100.0/24 64501 Example-Org")
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(fields[0]), "AS"), 10, 32)
	if err != nil || n == 0 {
		return e, fmt.Errorf("ASN %q: use a number from 1 to 4294967295, such as 64501 or AS64501", fields[0])
	}
	e.ASN = uint32(n)
	e.Org = strings.Join(fields[1:], " ")
	return e, nil
}

func isCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
