# edge-lb: L4 TCP/UDP load balancing with health checks, in userspace or
# on an nftables DNAT fast path (table inet edge_lb).
#
# The suite does not build edge-lb yet; the module has the same shape as
# the others so that enabling it works once it does. Until then, enabling
# it fails the build with a message naming the missing binary.
{ config, lib, pkgs, ... }:
let
  edge = config.services.edge;
  cfg = edge.lb;
  unit = import ./unit.nix { inherit lib pkgs; };
in
{
  imports = [ ./common.nix ];

  options.services.edge.lb = unit.options "lb" "edge-lb, the L4 load balancer";

  config = lib.mkIf cfg.enable {
    systemd.services.edge-lb = lib.mkMerge [
      (unit.service edge "lb")
      {
        description = "edge L4 load balancer";
        # Backends are reached over the network, and health checks start
        # at once.
        after = [ "network-online.target" ];
        wants = [ "network-online.target" ];

        serviceConfig = {
          # CAP_NET_ADMIN: the fast path's DNAT maps in table inet edge_lb.
          # CAP_NET_BIND_SERVICE: listeners below 1024. A userspace-only
          # config uses only the second; the unit does not tell them apart.
          CapabilityBoundingSet = [ "CAP_NET_ADMIN" "CAP_NET_BIND_SERVICE" ];
          AmbientCapabilities = [ "CAP_NET_ADMIN" "CAP_NET_BIND_SERVICE" ];
          # AF_NETLINK: nftables. AF_UNIX: the admin socket and sd_notify.
          # AF_INET, AF_INET6: listeners, backends, health checks, metrics.
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
          PrivateDevices = true;
        };
      }
    ];
  };
}
