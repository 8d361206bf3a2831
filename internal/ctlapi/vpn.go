package ctlapi

import "time"

// Paths of edge-vpn's admin API.
const (
	// PathVPNPeers lists peers (GET, answers []VPNPeer), adds one (POST
	// VPNPeerAdd, answers VPNPeerConfig) and removes one (DELETE
	// VPNPeerRef, answers VPNPeer).
	PathVPNPeers = "/v1/vpn/peers"
	// PathVPNPeer shows one peer (GET ?name=, answers VPNPeer) and
	// changes it (POST VPNPeerUpdate, answers VPNPeer).
	PathVPNPeer = "/v1/vpn/peer"
	// PathVPNPeerConfig prints a peer's client config again (GET ?name=
	// [&qr=terminal|png], answers VPNPeerConfig), without the private key
	// when edge-vpn no longer has it (it never keeps one).
	PathVPNPeerConfig = "/v1/vpn/peer/config"
)

// VPNPeer is a WireGuard peer as the admin API shows it.
type VPNPeer struct {
	Name      string   `json:"name"`
	Interface string   `json:"interface"`
	PublicKey string   `json:"public_key"`
	Addresses []string `json:"addresses"`
	// AllowedIPs are what the router routes to the peer.
	AllowedIPs []string `json:"allowed_ips"`
	// DNSName is <name>.vpn.<local_domain>, when names are published.
	DNSName      string `json:"dns_name,omitempty"`
	FullTunnel   bool   `json:"full_tunnel"`
	PresharedKey bool   `json:"preshared_key"`
	Group        string `json:"group,omitempty"`
	// Access is where the peer may go through the router (empty: no limit
	// of edge-vpn's).
	Access  []string `json:"access,omitempty"`
	Enabled bool     `json:"enabled"`
	// State is "active" (on the device), "disabled" or "expired".
	State string `json:"state"`
	// Disabled says why the peer is off.
	Disabled string     `json:"disabled,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
	Created  time.Time  `json:"created"`
	By       string     `json:"by,omitempty"`
	// Static peers come from the config.
	Static bool `json:"static,omitempty"`
	// From the device:
	Endpoint      string     `json:"endpoint,omitempty"`
	LastHandshake *time.Time `json:"last_handshake,omitempty"`
	RxBytes       int64      `json:"rx_bytes"`
	TxBytes       int64      `json:"tx_bytes"`
}

// VPNPeerAdd is the body of POST PathVPNPeers.
type VPNPeerAdd struct {
	Name string `json:"name"`
	// Interface; default the only (or first) one.
	Interface string `json:"interface,omitempty"`
	// PublicKey is the client's own (it keeps its private key). Empty:
	// edge-vpn makes a key pair and returns the private key once, in the
	// config.
	PublicKey  string `json:"public_key,omitempty"`
	FullTunnel bool   `json:"full_tunnel,omitempty"`
	// PresharedKey asks for a preshared key.
	PresharedKey bool `json:"preshared_key,omitempty"`
	// Expires is how long the peer may connect ("30d"); empty: no end.
	Expires string `json:"expires,omitempty"`
	Group   string `json:"group,omitempty"`
	// Access limits where the peer may go: networks or prefixes.
	Access []string `json:"access,omitempty"`
	// QR asks for the config as a QR code too: "terminal" or "png".
	QR string `json:"qr,omitempty"`
}

// VPNPeerRef names a peer.
type VPNPeerRef struct {
	Name string `json:"name"`
}

// VPNPeerUpdate is the body of POST PathVPNPeer; fields left out stay.
type VPNPeerUpdate struct {
	Name    string `json:"name"`
	Enabled *bool  `json:"enabled,omitempty"`
	Rename  string `json:"rename,omitempty"`
	// Expires is a new length from now ("30d"), or "never".
	Expires string `json:"expires,omitempty"`
}

// VPNPeerConfig is a peer with its client config.
type VPNPeerConfig struct {
	Peer VPNPeer `json:"peer"`
	// Config is the wg-quick config.
	Config string `json:"config"`
	// PrivateKey says the config holds the client's private key (only in
	// the answer to the add that made it; it is not kept).
	PrivateKey bool `json:"private_key"`
	// QRText is the config as a terminal QR code; QRPNG as a PNG image.
	QRText string `json:"qr_text,omitempty"`
	QRPNG  []byte `json:"qr_png,omitempty"`
}

// VPNStatus is edge-vpn's status detail.
type VPNStatus struct {
	// Generation is the config generation the service runs: the one the
	// runner committed last.
	Generation int64          `json:"generation"`
	Interfaces []VPNInterface `json:"interfaces"`
}

// VPNInterface is one WireGuard interface's state.
type VPNInterface struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Fallback   string `json:"fallback,omitempty"`
	PublicKey  string `json:"public_key"`
	ListenPort int    `json:"listen_port"`
	Peers      int    `json:"peers"`
	Active     int    `json:"active"`
}
