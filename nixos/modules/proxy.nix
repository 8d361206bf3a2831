# edge-proxy: the L7 TLS reverse proxy, with ACME certificates and
# host/path routing onto lb pools.
#
# The suite does not build edge-proxy yet; the module has the same shape
# as the others so that enabling it works once it does. Until then,
# enabling it fails the build with a message naming the missing binary.
{ config, lib, pkgs, ... }:
let
  edge = config.services.edge;
  cfg = edge.proxy;
  unit = import ./unit.nix { inherit lib pkgs; };
in
{
  imports = [ ./common.nix ];

  options.services.edge.proxy = unit.options "proxy" "edge-proxy, the TLS reverse proxy";

  config = lib.mkIf cfg.enable {
    systemd.services.edge-proxy = lib.mkMerge [
      (unit.service edge "proxy")
      {
        description = "edge reverse proxy";
        # ACME needs the network; DNS-01 challenges go to edge-dns over
        # RFC 2136 when it runs here.
        after = [ "network-online.target" ] ++ lib.optional (lib.elem "dns" (unit.enabled edge)) "edge-dns.service";
        wants = [ "network-online.target" ];

        serviceConfig = {
          # Ports 80 and 443 are below 1024. No kernel state.
          CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
          AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
          # AF_UNIX: the admin socket and sd_notify. AF_INET, AF_INET6:
          # clients, backends, ACME, metrics.
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
          PrivateDevices = true;
        };
      }
    ];
  };
}
