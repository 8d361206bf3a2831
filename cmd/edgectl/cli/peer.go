package cli

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/homeedge/edge/internal/ctlapi"
)

const peerUsage = "usage: edgectl peer add NAME [--pubkey KEY] [--full-tunnel] [--expires 30d] [--psk] [--interface IF] [--group G] [--access NET]... [--qr | --qr-png FILE] | ls | show NAME | config NAME [--qr | --qr-png FILE] | rm NAME | enable NAME [--expires 30d] | disable NAME | rename NAME NEW"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// peer manages edge-vpn's WireGuard peers.
func (e *env) peer(args []string) int {
	if len(args) == 0 {
		return e.usageError(peerUsage)
	}
	if e.opts.output == "conf" && args[0] != "add" && args[0] != "config" {
		return e.usageError("-o conf is for peer add and peer config")
	}
	rest := args[1:]
	switch args[0] {
	case "add":
		return e.peerAdd(rest)
	case "ls", "list":
		if len(rest) > 0 {
			return e.usageError("usage: edgectl peer ls")
		}
		return e.peerList()
	case "show":
		if len(rest) != 1 {
			return e.usageError("usage: edgectl peer show NAME")
		}
		return e.peerShow(rest[0])
	case "config":
		return e.peerConfig(rest)
	case "rm", "remove":
		if len(rest) != 1 {
			return e.usageError("usage: edgectl peer rm NAME")
		}
		var p ctlapi.VPNPeer
		if code, done := e.call("vpn", http.MethodDelete, ctlapi.PathVPNPeers, ctlapi.VPNPeerRef{Name: rest[0]}, &p); done {
			return code
		}
		fmt.Fprintf(e.stdout, "removed %s (%s)\n", p.Name, strings.Join(p.Addresses, ", "))
		return ExitOK
	case "enable", "disable":
		fs := flag.NewFlagSet("peer "+args[0], flag.ContinueOnError)
		expires := fs.String("expires", "", "new expiry from now (30d), or never")
		pos, err := parseInterleaved(fs, rest)
		if err != nil || len(pos) != 1 || args[0] == "disable" && *expires != "" {
			return e.usageError("usage: edgectl peer enable NAME [--expires 30d|never] | disable NAME")
		}
		on := args[0] == "enable"
		return e.peerUpdate(ctlapi.VPNPeerUpdate{Name: pos[0], Enabled: &on, Expires: *expires})
	case "rename":
		if len(rest) != 2 {
			return e.usageError("usage: edgectl peer rename NAME NEW")
		}
		return e.peerUpdate(ctlapi.VPNPeerUpdate{Name: rest[0], Rename: rest[1]})
	}
	return e.usageError("unknown peer command %q; use add, ls, show, config, rm, enable, disable or rename", args[0])
}

func (e *env) peerAdd(args []string) int {
	fs := flag.NewFlagSet("peer add", flag.ContinueOnError)
	req := ctlapi.VPNPeerAdd{}
	fs.StringVar(&req.PublicKey, "pubkey", "", "the client's public key (it keeps its private key)")
	fs.BoolVar(&req.FullTunnel, "full-tunnel", false, "send all the client's traffic through the tunnel")
	fs.StringVar(&req.Expires, "expires", "", "how long the peer may connect (30d)")
	fs.BoolVar(&req.PresharedKey, "psk", false, "add a preshared key")
	fs.StringVar(&req.Interface, "interface", "", "the WireGuard interface (default the first)")
	fs.StringVar(&req.Group, "group", "", "the access group")
	var access listFlag
	fs.Var(&access, "access", "limit where the peer may go (a destination and optional services; repeatable)")
	qr := fs.Bool("qr", false, "print the config as a QR code")
	png := fs.String("qr-png", "", "write the config as a QR code PNG to FILE")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 || *qr && *png != "" {
		return e.usageError(peerUsage)
	}
	req.Name, req.Access = pos[0], access
	req.QR = qrKind(*qr, *png)
	// The PNG file is opened before the peer exists: a generated private
	// key is shown only once, so nowhere to put it must stop the add.
	out, code := openPNG(e, *png)
	if code != ExitOK {
		return code
	}
	var res ctlapi.VPNPeerConfig
	if code, done := e.callQuiet("vpn", http.MethodPost, ctlapi.PathVPNPeers, req, &res); done {
		out.discard()
		return code
	}
	p := res.Peer
	if e.opts.output != "conf" && e.opts.output != "json" {
		fmt.Fprintf(e.stderr, "added peer %s on %s: %s", p.Name, p.Interface, strings.Join(p.Addresses, ", "))
		if p.DNSName != "" {
			fmt.Fprintf(e.stderr, " (%s)", p.DNSName)
		}
		fmt.Fprintln(e.stderr)
		if res.PrivateKey {
			fmt.Fprintln(e.stderr, "the config holds the peer's private key; edge-vpn does not keep it, so this is the only time it is shown")
		}
	}
	return e.writeConfig(res, *qr, out)
}

// pngOut is the QR PNG file, opened before the request, or nil.
type pngOut struct {
	path string
	f    *os.File
}

// openPNG creates path (0600: the config may hold a private key) unless
// it is empty.
func openPNG(e *env, path string) (*pngOut, int) {
	if path == "" {
		return nil, ExitOK
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(e.stderr, "edgectl: cannot write the QR code to %s, so nothing was done: %v\n", path, err)
		return nil, ExitFailure
	}
	return &pngOut{path: path, f: f}, ExitOK
}

// discard removes the file when the request failed.
func (o *pngOut) discard() {
	if o != nil {
		o.f.Close()
		os.Remove(o.path)
	}
}

func qrKind(terminal bool, png string) string {
	switch {
	case terminal:
		return "terminal"
	case png != "":
		return "png"
	}
	return ""
}

// writeConfig prints a client config: as JSON (-o json), as a terminal
// QR code, or as text; with a PNG file it writes the QR code there too.
// When the PNG cannot be written the config is printed all the same, so a
// private key shown only once is never lost.
func (e *env) writeConfig(res ctlapi.VPNPeerConfig, qr bool, png *pngOut) int {
	code := ExitOK
	if png != nil {
		_, err := png.f.Write(res.QRPNG)
		if cerr := png.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "edgectl: write %s: %v; the config follows here instead\n", png.path, err)
			code = ExitFailure
		} else if e.opts.output != "json" {
			fmt.Fprintf(e.stderr, "wrote the QR code of %s's config to %s\n", res.Peer.Name, png.path)
		}
	}
	switch {
	case e.opts.output == "json":
		e.writeJSON(res)
	case qr:
		fmt.Fprint(e.stdout, res.QRText)
	default:
		fmt.Fprint(e.stdout, res.Config)
	}
	return code
}

func (e *env) peerConfig(args []string) int {
	fs := flag.NewFlagSet("peer config", flag.ContinueOnError)
	qr := fs.Bool("qr", false, "print the config as a QR code")
	png := fs.String("qr-png", "", "write the config as a QR code PNG to FILE")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 || *qr && *png != "" {
		return e.usageError("usage: edgectl peer config NAME [--qr | --qr-png FILE]")
	}
	path := ctlapi.PathVPNPeerConfig + "?name=" + url.QueryEscape(pos[0])
	if k := qrKind(*qr, *png); k != "" {
		path += "&qr=" + k
	}
	out, code := openPNG(e, *png)
	if code != ExitOK {
		return code
	}
	var res ctlapi.VPNPeerConfig
	if code, done := e.callQuiet("vpn", http.MethodGet, path, nil, &res); done {
		out.discard()
		return code
	}
	return e.writeConfig(res, *qr, out)
}

func (e *env) peerUpdate(req ctlapi.VPNPeerUpdate) int {
	var p ctlapi.VPNPeer
	if code, done := e.call("vpn", http.MethodPost, ctlapi.PathVPNPeer, req, &p); done {
		return code
	}
	fmt.Fprintf(e.stdout, "%s: %s%s\n", p.Name, p.State, expiresNote(p.Expires))
	return ExitOK
}

func expiresNote(t *time.Time) string {
	if t == nil {
		return ""
	}
	return ", expires " + t.Local().Format(time.DateTime)
}

func (e *env) peerList() int {
	var peers []ctlapi.VPNPeer
	if code, done := e.call("vpn", http.MethodGet, ctlapi.PathVPNPeers, nil, &peers); done {
		return code
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINTERFACE\tADDRESSES\tSTATE\tHANDSHAKE\tENDPOINT\tRX\tTX\tEXPIRES")
	for _, p := range peers {
		exp := "-"
		if p.Expires != nil {
			exp = p.Expires.Local().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Interface, strings.Join(p.Addresses, ","), p.State,
			handshakeAge(p.LastHandshake), dash(p.Endpoint), byteSize(p.RxBytes), byteSize(p.TxBytes), exp)
	}
	tw.Flush()
	return ExitOK
}

func (e *env) peerShow(name string) int {
	var p ctlapi.VPNPeer
	if code, done := e.call("vpn", http.MethodGet, ctlapi.PathVPNPeer+"?name="+url.QueryEscape(name), nil, &p); done {
		return code
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("name", p.Name)
	line("interface", p.Interface)
	line("public key", p.PublicKey)
	line("addresses", strings.Join(p.Addresses, ", "))
	line("allowed ips", strings.Join(p.AllowedIPs, ", "))
	line("dns name", dash(p.DNSName))
	line("state", p.State+map[bool]string{true: " (" + p.Disabled + ")"}[p.Disabled != ""])
	line("tunnel", map[bool]string{true: "full", false: "split"}[p.FullTunnel])
	line("preshared key", yesNo(p.PresharedKey))
	line("access", dash(strings.Join(p.Access, "; ")))
	line("group", dash(p.Group))
	line("expires", dash(strings.TrimPrefix(expiresNote(p.Expires), ", expires ")))
	line("handshake", handshakeAge(p.LastHandshake))
	line("endpoint", dash(p.Endpoint))
	line("transfer", fmt.Sprintf("%s received, %s sent", byteSize(p.RxBytes), byteSize(p.TxBytes)))
	line("created", p.Created.Local().Format(time.DateTime)+" by "+dash(p.By))
	tw.Flush()
	return ExitOK
}

func handshakeAge(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}

func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
