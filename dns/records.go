package dns

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/dns/zone"
	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
	"github.com/homeedge/edge/internal/store"
)

// storedRecord is a run-time record in the state store.
type storedRecord struct {
	// RR is the record in zone-file syntax, fully qualified.
	RR string `json:"rr"`
	// Source says who added it: "api" or "update" (RFC 2136).
	Source  string    `json:"source"`
	Created time.Time `json:"created"`
}

// recordKey is the store name of a record: owner, type and a hash of the
// data, so the same record is stored once.
func recordKey(rr mdns.RR) string {
	h := rr.Header()
	data := strings.TrimPrefix(rr.String(), h.String())
	sum := fnv.New64a()
	sum.Write([]byte(data))
	return fmt.Sprintf("%s %s %016x", h.Name, mdns.TypeToString[h.Rrtype], sum.Sum64())
}

// Routes implements daemon.Router.
func (s *Server) Routes() []ctlsock.Route {
	return []ctlsock.Route{
		{Method: http.MethodGet, Path: ctlapi.PathDNSRecords, Handle: s.listRecords},
		{Method: http.MethodPost, Path: ctlapi.PathDNSRecords, Write: true, Handle: s.addRecord},
		{Method: http.MethodDelete, Path: ctlapi.PathDNSRecords, Write: true, Handle: s.removeRecord},
	}
}

func (s *Server) listRecords(r *http.Request) (any, error) {
	rt := s.rt.Load()
	want := r.URL.Query().Get("zone")
	out := []ctlapi.DNSRecord{}
	found := want == ""
	for _, z := range rt.set.Zones() {
		if want != "" && z.Origin != zone.Fqdn(want) {
			continue
		}
		found = true
		for _, e := range z.Entries() {
			out = append(out, apiRecord(e.RR, z.Origin, e.Source))
		}
	}
	if !found {
		return nil, ctlapi.Errorf(http.StatusNotFound, "no zone %s", want)
	}
	return out, nil
}

func (s *Server) addRecord(r *http.Request) (any, error) {
	var req ctlapi.DNSRecordChange
	if err := ctlsock.DecodeBody(r, &req); err != nil {
		return nil, err
	}
	rr, z, err := s.parseChange(req)
	if err != nil {
		return nil, err
	}
	if err := s.addRecords(r.Context(), []mdns.RR{rr}, "api"); err != nil {
		return nil, err
	}
	s.metrics.records.WithLabelValues("add").Inc()
	return ctlapi.DNSRecordResult{Records: []ctlapi.DNSRecord{apiRecord(rr, z.Origin, "dynamic")}, Serial: s.serialOf(z.Origin)}, nil
}

// parseChange checks an admin API record against the current zones.
func (s *Server) parseChange(req ctlapi.DNSRecordChange) (mdns.RR, *zone.Zone, error) {
	rt := s.rt.Load()
	if req.Name == "" || req.Type == "" || req.Value == "" {
		return nil, nil, ctlapi.Errorf(http.StatusBadRequest, "name, type and value are required")
	}
	name := zone.Fqdn(req.Name)
	z := zoneOf(rt, name)
	if z == nil {
		return nil, nil, ctlapi.Errorf(http.StatusUnprocessableEntity, "%s is in no zone served here; zones: %s", name, zoneList(rt))
	}
	if z.Generated {
		return nil, nil, ctlapi.Errorf(http.StatusUnprocessableEntity, "%s is in the generated reverse zone %s; PTR records follow the A and AAAA records", name, z.Origin)
	}
	typ := strings.ToUpper(req.Type)
	if !slices.Contains(zone.SupportedTypes, typ) {
		return nil, nil, ctlapi.Errorf(http.StatusBadRequest, "unknown type %q; use one of %s", req.Type, strings.Join(zone.SupportedTypes, ", "))
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = z.SOA.Hdr.Ttl
	}
	rr, err := zone.ParseRR(z.Origin, name, typ, ttl, req.Value)
	if err != nil {
		return nil, nil, ctlapi.Errorf(http.StatusBadRequest, "%v", err)
	}
	if src := z.Source(name, rr.Header().Rrtype); src == "config" || src == "file" {
		return nil, nil, ctlapi.Errorf(http.StatusConflict, "%s %s is declared %s; change it there", name, typ, declaredAt(z, name, rr.Header().Rrtype, src))
	}
	return rr, z, nil
}

// addRecords stores records and commits the runtime they make, so
// queries see them at once.
func (s *Server) addRecords(ctx context.Context, rrs []mdns.RR, source string) error {
	now := time.Now().UTC()
	return s.changeRecords(ctx, func([]store.Item[storedRecord]) (recordEdit, error) {
		e := recordEdit{put: map[string]storedRecord{}}
		for _, rr := range rrs {
			e.put[recordKey(rr)] = storedRecord{RR: rr.String(), Source: source, Created: now}
		}
		return e, nil
	})
}

func (s *Server) removeRecord(r *http.Request) (any, error) {
	var req ctlapi.DNSRecordChange
	if err := ctlsock.DecodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, ctlapi.Errorf(http.StatusBadRequest, "name is required")
	}
	rt := s.rt.Load()
	name := zone.Fqdn(req.Name)
	z := zoneOf(rt, name)
	if z == nil {
		return nil, ctlapi.Errorf(http.StatusNotFound, "%s is in no zone served here", name)
	}
	var typ uint16
	if req.Type != "" {
		var ok bool
		if typ, ok = mdns.StringToType[strings.ToUpper(req.Type)]; !ok {
			return nil, ctlapi.Errorf(http.StatusBadRequest, "unknown type %q", req.Type)
		}
	}
	var match mdns.RR
	if req.Value != "" {
		if typ == 0 {
			return nil, ctlapi.Errorf(http.StatusBadRequest, "a value needs a type")
		}
		rr, err := zone.ParseRR(z.Origin, name, req.Type, 0, req.Value)
		if err != nil {
			return nil, ctlapi.Errorf(http.StatusBadRequest, "%v", err)
		}
		match = rr
	}
	removed, err := s.removeRecords(r.Context(), name, typ, match)
	if err != nil {
		return nil, err
	}
	if len(removed) == 0 {
		if src := z.Source(name, typ); typ != 0 && (src == "config" || src == "file") {
			return nil, ctlapi.Errorf(http.StatusConflict, "%s %s is declared %s; remove it there", name, req.Type, declaredAt(z, name, typ, src))
		}
		return nil, ctlapi.Errorf(http.StatusNotFound, "no run-time record matches %s %s %s", name, req.Type, req.Value)
	}
	s.metrics.records.WithLabelValues("remove").Inc()
	out := ctlapi.DNSRecordResult{Serial: s.serialOf(z.Origin)}
	for _, rr := range removed {
		out.Records = append(out.Records, apiRecord(rr, z.Origin, "dynamic"))
	}
	return out, nil
}

// removeRecords deletes the stored records of name matching typ (0: any)
// and match (nil: any data), in one transaction, and commits the runtime
// without them.
func (s *Server) removeRecords(ctx context.Context, name string, typ uint16, match mdns.RR) ([]mdns.RR, error) {
	var removed []mdns.RR
	err := s.changeRecords(ctx, func(items []store.Item[storedRecord]) (recordEdit, error) {
		e := recordEdit{del: map[string]int64{}}
		for _, it := range items {
			rr, err := mdns.NewRR(it.Value.RR)
			if err != nil || rr == nil {
				continue
			}
			h := rr.Header()
			if h.Name != name || typ != 0 && h.Rrtype != typ || match != nil && !mdns.IsDuplicate(rr, match) {
				continue
			}
			e.del[it.Name] = it.ModRev
			removed = append(removed, rr)
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// errRecordsChanged answers a change whose records another writer of the
// store changed meanwhile.
var errRecordsChanged = ctlapi.Errorf(http.StatusConflict, "records changed meanwhile; try again")

func (s *Server) serialOf(origin string) uint32 {
	if z := s.rt.Load().set.Zone(origin); z != nil {
		return z.SOA.Serial
	}
	return 0
}

func zoneOf(rt *snapshot, name string) *zone.Zone {
	for _, z := range rt.set.Zones() {
		if mdns.IsSubDomain(z.Origin, name) {
			return z // zones are longest first
		}
	}
	return nil
}

func zoneList(rt *snapshot) string {
	var names []string
	for _, z := range rt.set.Zones() {
		if !z.Generated {
			names = append(names, z.Origin)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func apiRecord(rr mdns.RR, origin, source string) ctlapi.DNSRecord {
	h := rr.Header()
	return ctlapi.DNSRecord{
		Name: h.Name, Type: mdns.TypeToString[h.Rrtype], TTL: h.Ttl,
		Value: strings.TrimPrefix(rr.String(), h.String()), Zone: origin, Source: source,
	}
}

func encodeJSON(v any) ([]byte, error) {
	return json.Marshal(v)
}

// declaredAt says where a config or zone-file record is declared: "in
// the config (edge.yaml:42)", "in zone file /etc/edge/home.zone".
func declaredAt(z *zone.Zone, name string, t uint16, src string) string {
	where := z.Where(name, t)
	switch {
	case src == "file" && where != "":
		return "in zone file " + where
	case where != "":
		return "in the config (" + where + ")"
	}
	return "in the config"
}
