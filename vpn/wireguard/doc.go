// Package wireguard creates and configures the WireGuard interfaces of
// edge-vpn: a kernel WireGuard link where the kernel has WireGuard, and an
// embedded wireguard-go device over TUN otherwise. A kernel link is
// configured and read through wgctrl; an embedded device in this process,
// in the configuration protocol's text (uapi.go). The embedded device also
// serves the usual UAPI socket, in a directory of the caller's
// (Options.SocketDir) and linked from /var/run/wireguard while the name is
// free there, so wg(8) works on it too. Every operation acts on the
// calling process's current network namespace.
package wireguard
