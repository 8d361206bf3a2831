package ctlapi

import "time"

// Paths of edge-dns's admin API.
const (
	// PathDNSRecords lists (GET), adds (POST) and removes (DELETE)
	// run-time records.
	PathDNSRecords = "/v1/dns/records"
)

// DNSRecord is one record as the admin API shows it.
type DNSRecord struct {
	// Name is the owner name, fully qualified.
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	// Value is the record data in zone-file syntax.
	Value string `json:"value"`
	// Zone is the zone holding the name.
	Zone string `json:"zone"`
	// Source is "config", "file" or "dynamic" (added at run time).
	Source string `json:"source,omitempty"`
}

// DNSRecordChange is the body of POST and DELETE on PathDNSRecords. For
// DELETE, an empty Type removes every run-time record of the name, and an
// empty Value every record of the type.
type DNSRecordChange struct {
	Name  string `json:"name"`
	Type  string `json:"type,omitempty"`
	TTL   uint32 `json:"ttl,omitempty"`
	Value string `json:"value,omitempty"`
}

// DNSRecordResult answers a change: what was added or removed, and the
// zone's new serial.
type DNSRecordResult struct {
	Records []DNSRecord `json:"records"`
	Serial  uint32      `json:"serial"`
}

// DNSStatus is edge-dns's status detail. Its fields are in the order of
// their JSON names, which is how edge-dns has always written them.
type DNSStatus struct {
	// Generation is the config generation being served.
	Generation int64 `json:"generation"`
	// GeoIP describes the databases, country first; absent without
	// dns.geoip.
	GeoIP []DNSGeoIPDB `json:"geoip,omitempty"`
	// Health are the health-checked addresses, sorted by key.
	Health []HealthTarget `json:"health"`
	// Resolver is absent without upstreams.
	Resolver *DNSResolver `json:"resolver,omitempty"`
	// Views are the views' names in match order; null without views.
	Views []string `json:"views"`
	// Zones are the zones served, sorted by name; null without zones.
	Zones []DNSZone `json:"zones"`
}

// DNSZone is one zone served.
type DNSZone struct {
	Name   string `json:"name"`
	Serial uint32 `json:"serial"`
	// Inside zones are answered to inside clients only.
	Inside bool `json:"inside,omitempty"`
	// Reverse zones are generated for the inside networks.
	Reverse bool `json:"reverse,omitempty"`
}

// DNSGeoIPDB is one GeoIP database.
type DNSGeoIPDB struct {
	// DB is "country" or "asn".
	DB string `json:"db"`
	// Path is the file as configured.
	Path string `json:"path"`
	// Type is the database_type of the loaded file, such as
	// "GeoLite2-Country".
	Type string `json:"type"`
	// BuildTime is when the loaded file was built, from its metadata.
	BuildTime time.Time `json:"build_time"`
	// LoadedAt is when the loaded file was read.
	LoadedAt time.Time `json:"loaded_at"`
	// LastError says why the file on disk is not the one answering.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// DNSResolver is the resolver for inside clients.
type DNSResolver struct {
	// Policy is failover, race or round_robin.
	Policy    string        `json:"policy"`
	Upstreams []DNSUpstream `json:"upstreams"`
	Cache     DNSCacheStats `json:"cache"`
}

// DNSUpstream is one upstream resolver.
type DNSUpstream struct {
	Name string `json:"name"`
	// Protocol is dns, tls or https.
	Protocol   string `json:"protocol"`
	Address    string `json:"address"`
	ServerName string `json:"server_name,omitempty"`
	URL        string `json:"url,omitempty"`
	Up         bool   `json:"up"`
	// ConsecutiveFailures counts failures since the last good answer.
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastError           string    `json:"last_error,omitempty"`
	LastErrorTime       time.Time `json:"last_error_time,omitzero"`
	// LatencyMS is the smoothed time to a good answer, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	Queries   uint64  `json:"queries"`
	Failures  uint64  `json:"failures"`
}

// DNSCacheStats are the resolver cache's counters.
type DNSCacheStats struct {
	Entries    int    `json:"entries"`
	Size       int    `json:"size"`
	Hits       uint64 `json:"hits"`
	Misses     uint64 `json:"misses"`
	Stale      uint64 `json:"stale"`
	Prefetches uint64 `json:"prefetches"`
	Evictions  uint64 `json:"evictions"`
	Coalesced  uint64 `json:"coalesced"`
}
