package dns

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// keyring signs and verifies TSIG (RFC 8945) with the keys of the current
// snapshot, so a reload that changes keys applies to the next message.
type keyring struct {
	s *Server
}

var _ mdns.TsigProvider = keyring{}

func (k keyring) key(t *mdns.TSIG) (*tsigKey, []byte, error) {
	rt := k.s.rt.Load()
	key := rt.keys[strings.ToLower(t.Hdr.Name)]
	if key == nil || !strings.EqualFold(key.algorithm, t.Algorithm) {
		return nil, nil, mdns.ErrSecret
	}
	secret, err := base64.StdEncoding.DecodeString(key.secret)
	if err != nil {
		return nil, nil, mdns.ErrSecret
	}
	return key, secret, nil
}

// Generate implements mdns.TsigProvider.
func (k keyring) Generate(msg []byte, t *mdns.TSIG) ([]byte, error) {
	_, secret, err := k.key(t)
	if err != nil {
		return nil, err
	}
	var h func() hash.Hash
	switch strings.ToLower(t.Algorithm) {
	case mdns.HmacSHA256:
		h = sha256.New
	case mdns.HmacSHA384:
		h = sha512.New384
	case mdns.HmacSHA512:
		h = sha512.New
	default:
		return nil, mdns.ErrKeyAlg
	}
	m := hmac.New(h, secret)
	m.Write(msg)
	return m.Sum(nil), nil
}

// Verify implements mdns.TsigProvider.
func (k keyring) Verify(msg []byte, t *mdns.TSIG) error {
	mac, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	want, err := hexDecode(t.MAC)
	if err != nil || !hmac.Equal(mac, want) {
		return mdns.ErrSig
	}
	return nil
}

func hexDecode(s string) ([]byte, error) {
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, mdns.ErrSig
		}
		out[i] = hi<<4 | lo
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// signedBy returns the key that validly signed req, or nil.
func signedBy(w mdns.ResponseWriter, req *mdns.Msg, rt *snapshot) *tsigKey {
	t := req.IsTsig()
	if t == nil || w.TsigStatus() != nil {
		return nil
	}
	return rt.keys[strings.ToLower(t.Hdr.Name)]
}

// tsigErrorReply writes resp as the answer to a request whose TSIG failed
// to verify (status): NOTAUTH with an unsigned TSIG record that carries
// the TSIG error, BADKEY, BADSIG or BADTIME, and an empty MAC (RFC 8945
// §5.3.2), so that the client can say what was wrong. It is packed and
// written raw: the connection would otherwise try to sign it with the key
// that failed.
func tsigErrorReply(w mdns.ResponseWriter, req, resp *mdns.Msg, status error) error {
	t := req.IsTsig()
	resp.Rcode = mdns.RcodeNotAuth
	code := uint16(mdns.RcodeBadSig)
	switch status {
	case mdns.ErrSecret, mdns.ErrKeyAlg:
		code = mdns.RcodeBadKey
	case mdns.ErrTime:
		code = mdns.RcodeBadTime
	}
	rr := &mdns.TSIG{
		Hdr:        mdns.RR_Header{Name: t.Hdr.Name, Rrtype: mdns.TypeTSIG, Class: mdns.ClassANY},
		Algorithm:  t.Algorithm,
		TimeSigned: t.TimeSigned,
		Fudge:      t.Fudge,
		OrigId:     req.Id,
		Error:      code,
	}
	if code == mdns.RcodeBadTime {
		// The server's time, so that the client can see the skew.
		now := uint64(time.Now().Unix())
		rr.OtherLen = 6
		rr.OtherData = fmt.Sprintf("%012x", now)
	}
	resp.Extra = append(resp.Extra, rr)
	b, err := resp.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
