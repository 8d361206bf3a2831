# edge-vpn: WireGuard ingress (kernel interfaces, or the embedded
# wireguard-go over TUN) and the Nebula lighthouse (docs/vpn.md).
#
# It opens no port itself: edge-firewall decides what reaches the router
# (the `wireguard` and `nebula` services of a zone). Its interfaces and
# table inet edge_vpn stay when it stops, and the next start adopts them;
# `edge-vpn -cleanup -config /etc/edge/edge.yaml` removes them by hand.
{ config, lib, pkgs, ... }:
let
  edge = config.services.edge;
  cfg = edge.vpn;
  unit = import ./unit.nix { inherit lib pkgs; };
  # edge-vpn's runtime directory: <admin.socket_dir>/vpn, where the
  # embedded wireguard-go serves its UAPI sockets (docs/vpn.md).
  runtimeDir = "${edge.settings.admin.socket_dir}/vpn";
in
{
  imports = [ ./common.nix ];

  options.services.edge.vpn = unit.options "vpn" "edge-vpn, the WireGuard and Nebula ingress";

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "/run/" runtimeDir;
        message = ''
          services.edge.settings.admin.socket_dir is ${edge.settings.admin.socket_dir}, but edge-vpn keeps the
          UAPI sockets of its embedded WireGuard devices in <socket_dir>/vpn, which its unit makes with
          systemd's RuntimeDirectory=, and that is always below /run. Keep socket_dir under /run (the
          default is /run/edge).
        '';
      }
    ];

    # Peers reach the lan and the internet through the router. With IPv6
    # forwarding on, the kernel ignores router advertisements on an
    # interface unless its accept_ra is 2: set that on a WAN that gets its
    # address by SLAAC.
    boot.kernel.sysctl = {
      "net.ipv4.ip_forward" = lib.mkDefault 1;
      "net.ipv6.conf.all.forwarding" = lib.mkDefault 1;
    };

    systemd.services.edge-vpn = lib.mkMerge [
      (unit.service edge "vpn")
      {
        description = "edge VPN";
        # Endpoints and DNS names of peers are published once the network
        # is up, through edge-dns when it runs here.
        after = [ "network-online.target" ] ++ lib.optional (lib.elem "dns" (unit.enabled edge)) "edge-dns.service";
        wants = [ "network-online.target" ];

        serviceConfig = {
          # Interfaces, addresses and routes over rtnetlink, WireGuard
          # devices through wgctrl, TUN devices for the embedded
          # wireguard-go and table inet edge_vpn: all CAP_NET_ADMIN. Its
          # ports (51820, 4242) are above 1024: no CAP_NET_BIND_SERVICE.
          CapabilityBoundingSet = [ "CAP_NET_ADMIN" ];
          AmbientCapabilities = [ "CAP_NET_ADMIN" ];
          # AF_NETLINK: rtnetlink, generic netlink (WireGuard), nftables.
          # AF_UNIX: the admin socket, sd_notify and wireguard-go's UAPI
          # sockets. AF_INET, AF_INET6: the tunnels, names over RFC 2136,
          # metrics.
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
          # The embedded wireguard-go and Nebula open TUN devices; no other
          # device. (PrivateDevices would hide /dev/net/tun.)
          DeviceAllow = [ "/dev/net/tun rw" ];
          DevicePolicy = "closed";
          # The embedded wireguard-go serves its UAPI sockets in edge-vpn's
          # runtime directory, <admin.socket_dir>/vpn, not in
          # /run/wireguard, which every network namespace and other
          # programs share (a unit owning it would remove their sockets on
          # stop and hand them to its own uid on start). The sockets go
          # with the process, so the directory goes with the unit: systemd
          # makes it for each run's dynamic user, inside the tmpfiles-made
          # socket directory, and removes it on stop. wg(8) looks in
          # /run/wireguard only, which this unit cannot write
          # (ProtectSystem=strict): docs/vpn.md says how to run wg show.
          RuntimeDirectory = lib.removePrefix "/run/" runtimeDir;
          RuntimeDirectoryMode = "0700";
        };
      }
    ];
  };
}
