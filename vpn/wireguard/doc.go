// Package wireguard creates and configures the WireGuard interfaces of
// edge-vpn: a kernel WireGuard link where the kernel has WireGuard, and an
// embedded wireguard-go device over TUN otherwise. Both kinds are
// configured and read through wgctrl (the embedded device serves the usual
// UAPI socket, so wg(8) works on it too), and every operation acts on the
// calling process's current network namespace.
package wireguard
