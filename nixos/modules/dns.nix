# edge-dns: authoritative DNS with GeoIP answers and split horizon, and
# the forwarding, caching resolver for inside clients (docs/dns.md).
{ config, lib, pkgs, ... }:
let
  edge = config.services.edge;
  cfg = edge.dns;
  unit = import ./unit.nix { inherit lib pkgs; };

  dnsmasq = config.services.dnsmasq;
  unbound = config.services.unbound;
in
{
  imports = [ ./common.nix ];

  options.services.edge.dns = unit.options "dns" "edge-dns, the DNS server";

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !(dnsmasq.enable && toString (dnsmasq.settings.port or 53) != "0");
        message = ''
          services.edge.dns and services.dnsmasq both serve DNS on port 53. To keep dnsmasq for
          DHCP only, set services.dnsmasq.settings.port = 0; otherwise disable it.
        '';
      }
      {
        assertion = !(unbound.enable && toString (unbound.settings.server.port or 53) == "53");
        message = ''
          services.edge.dns and services.unbound both serve DNS on port 53. edge-dns forwards and
          caches for inside clients itself (dns.upstreams); disable unbound, or move it to another
          port with services.unbound.settings.server.port and name it in dns.upstreams.
        '';
      }
    ];

    systemd.services.edge-dns = lib.mkMerge [
      (unit.service edge "dns")
      {
        description = "edge DNS server";
        # Wildcard listen addresses ("0.0.0.0:53") bind before the
        # interfaces have their addresses; a listen address of one
        # interface may need network-online.target instead.
        after = [ "network.target" ];
        # The router may resolve through itself.
        before = [ "nss-lookup.target" ];
        wants = [ "nss-lookup.target" ];

        serviceConfig = {
          # Port 53 is below 1024. Nothing else: edge-dns programs no
          # kernel state.
          CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
          AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
          # AF_UNIX: the admin socket and sd_notify. AF_INET, AF_INET6:
          # DNS, upstreams, transfers, health checks, metrics. AF_NETLINK:
          # the addresses of interfaces that views and records name.
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
          PrivateDevices = true;
        };
      }
    ];
  };
}
