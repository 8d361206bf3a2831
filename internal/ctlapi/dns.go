package ctlapi

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
