package wireguard

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The embedded wireguard-go device is configured in this process, in the
// text of WireGuard's cross-platform configuration protocol
// (https://www.wireguard.com/xplatform/#configuration-protocol), the same
// text its UAPI socket speaks. wgctrl would reach it only through the
// socket, and only in /var/run/wireguard, which every network namespace
// shares: there a device of the same name in another namespace could
// answer in its place.

// uapiSet is the set operation's text for cfg, without the "set=1" line
// and the empty line that end it on the socket.
func uapiSet(cfg wgtypes.Config) string {
	var b strings.Builder
	line := func(k, v string) { b.WriteString(k + "=" + v + "\n") }
	if cfg.PrivateKey != nil {
		line("private_key", hex.EncodeToString(cfg.PrivateKey[:]))
	}
	if cfg.ListenPort != nil {
		line("listen_port", strconv.Itoa(*cfg.ListenPort))
	}
	if cfg.FirewallMark != nil {
		line("fwmark", strconv.Itoa(*cfg.FirewallMark))
	}
	if cfg.ReplacePeers {
		line("replace_peers", "true")
	}
	for _, p := range cfg.Peers {
		line("public_key", hex.EncodeToString(p.PublicKey[:]))
		if p.Remove {
			line("remove", "true")
			continue
		}
		if p.UpdateOnly {
			line("update_only", "true")
		}
		if p.PresharedKey != nil {
			line("preshared_key", hex.EncodeToString(p.PresharedKey[:]))
		}
		if p.Endpoint != nil {
			line("endpoint", p.Endpoint.String())
		}
		if p.PersistentKeepaliveInterval != nil {
			line("persistent_keepalive_interval", strconv.Itoa(int(*p.PersistentKeepaliveInterval/time.Second)))
		}
		if p.ReplaceAllowedIPs {
			line("replace_allowed_ips", "true")
		}
		for _, n := range p.AllowedIPs {
			line("allowed_ip", n.String())
		}
	}
	return b.String()
}

// uapiDevice reads the get operation's text into the device name.
func uapiDevice(name, text string) (*wgtypes.Device, error) {
	d := &wgtypes.Device{Name: name, Type: wgtypes.Userspace}
	var peer *wgtypes.Peer
	var hsSec, hsNsec int64
	endPeer := func() {
		if peer != nil && (hsSec != 0 || hsNsec != 0) {
			peer.LastHandshakeTime = time.Unix(hsSec, hsNsec)
		}
		hsSec, hsNsec = 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			return nil, fmt.Errorf("device %s: line %q is not key=value", name, sc.Text())
		}
		var err error
		switch {
		case k == "public_key":
			endPeer()
			d.Peers = append(d.Peers, wgtypes.Peer{})
			peer = &d.Peers[len(d.Peers)-1]
			peer.PublicKey, err = uapiKey(v)
		case peer == nil:
			err = uapiDeviceKey(d, k, v)
		default:
			err = uapiPeerKey(peer, k, v, &hsSec, &hsNsec)
		}
		if err != nil {
			return nil, fmt.Errorf("device %s: %s=%s: %w", name, k, v, err)
		}
	}
	endPeer()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if d.PrivateKey != (wgtypes.Key{}) {
		d.PublicKey = d.PrivateKey.PublicKey()
	}
	return d, nil
}

func uapiDeviceKey(d *wgtypes.Device, k, v string) error {
	var err error
	switch k {
	case "private_key":
		d.PrivateKey, err = uapiKey(v)
	case "listen_port":
		d.ListenPort, err = uapiInt(v, 16)
	case "fwmark":
		d.FirewallMark, err = uapiInt(v, 32)
	case "errno":
		if v != "0" {
			err = fmt.Errorf("the device answered errno %s", v)
		}
	}
	// Keys this package does not read (newer protocol versions may add
	// some) are skipped.
	return err
}

func uapiPeerKey(p *wgtypes.Peer, k, v string, hsSec, hsNsec *int64) error {
	var err error
	switch k {
	case "preshared_key":
		p.PresharedKey, err = uapiKey(v)
	case "endpoint":
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(v); err == nil {
			p.Endpoint = net.UDPAddrFromAddrPort(ap)
		}
	case "last_handshake_time_sec":
		*hsSec, err = strconv.ParseInt(v, 10, 64)
	case "last_handshake_time_nsec":
		*hsNsec, err = strconv.ParseInt(v, 10, 64)
	case "tx_bytes":
		p.TransmitBytes, err = strconv.ParseInt(v, 10, 64)
	case "rx_bytes":
		p.ReceiveBytes, err = strconv.ParseInt(v, 10, 64)
	case "persistent_keepalive_interval":
		var n int
		n, err = uapiInt(v, 16)
		p.PersistentKeepaliveInterval = time.Duration(n) * time.Second
	case "protocol_version":
		p.ProtocolVersion, err = uapiInt(v, 32)
	case "allowed_ip":
		var pfx netip.Prefix
		if pfx, err = netip.ParsePrefix(v); err == nil {
			p.AllowedIPs = append(p.AllowedIPs, ipNet(pfx))
		}
	}
	return err
}

func uapiKey(v string) (wgtypes.Key, error) {
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != wgtypes.KeyLen {
		return wgtypes.Key{}, fmt.Errorf("not a hex key of %d bytes", wgtypes.KeyLen)
	}
	return wgtypes.Key(b), nil
}

func uapiInt(v string, bits int) (int, error) {
	n, err := strconv.ParseUint(v, 10, bits)
	return int(n), err
}
