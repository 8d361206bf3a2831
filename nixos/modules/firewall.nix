# edge-firewall: the router's nftables firewall and NAT, table inet edge
# (docs/firewall.md).
#
# At boot, edge-firewall-boot.service loads the ruleset that
# `edge-firewall -render` printed at build time, before network-pre.target,
# so the router is never open between boot and the daemon's start. The
# daemon then applies the same ruleset with the run-time bans.
#
# When the daemon stops or dies, its last ruleset stays loaded, so nothing
# here runs `edge-firewall -cleanup`; removing table inet edge is a manual
# step: `edge-firewall -cleanup -config /etc/edge/edge.yaml`.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  edge = config.services.edge;
  cfg = edge.firewall;
  unit = import ./unit.nix { inherit lib pkgs; };
  json = pkgs.formats.json { };

  nft = "${pkgs.nftables}/bin/nft";
  render = "${edge.package}/bin/edge-firewall -render -config";

  # The config the boot ruleset is rendered from.
  renderConfig =
    if cfg.bootSettings == null then edge.configFile
    else pkgs.writeText "edge-firewall-boot.json" (builtins.toJSON (unit.document edge // { firewall = cfg.bootSettings; }));

  # edge.nft keeps flow offload; edge-no-offload.nft leaves it out. The
  # flowtable names devices, and nft refuses it when the kernel has no
  # flowtables or a device does not exist yet, which early in boot it may
  # not.
  bootRuleset = pkgs.runCommand "edge-firewall-boot-ruleset" { } ''
    mkdir $out
    ${lib.optionalString cfg.bootOffload ''
      ${render} ${renderConfig} > $out/edge.nft
    ''}
    EDGE_FIREWALL_NO_OFFLOAD=1 ${render} ${renderConfig} > $out/edge-no-offload.nft
  '';

  loadBootRuleset =
    if cfg.bootOffload then
      pkgs.writeShellScript "edge-firewall-boot" ''
        if ! ${nft} -f ${bootRuleset}/edge.nft; then
          echo "edge-firewall-boot: the ruleset with flow offload did not load; loading it without" >&2
          exec ${nft} -f ${bootRuleset}/edge-no-offload.nft
        fi
      ''
    else "${nft} -f ${bootRuleset}/edge-no-offload.nft";
in
{
  imports = [ ./common.nix ];

  options.services.edge.firewall = unit.options "firewall" "edge-firewall, the nftables firewall and NAT" // {
    bootOffload = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether the boot-time ruleset keeps flow offload. When it does and
        nft refuses it (a kernel without flowtables, or a device not there
        yet), edge-firewall-boot loads the same ruleset without offload.
        false renders only that one (EDGE_FIREWALL_NO_OFFLOAD=1). The
        daemon decides for itself once it runs.
      '';
    };

    bootSettings = mkOption {
      type = types.nullOr json.type;
      default = null;
      description = ''
        The firewall section the boot-time ruleset is rendered from; null
        (the default) means services.edge.firewall.settings. The render
        runs at build time, where files outside the Nix store cannot be
        read: when settings name a set file such as a blocklist under
        /var/lib, give here the same section without that file (or with a
        store path) so the boot ruleset still protects everything else.
      '';
    };

    bootRuleset = mkOption {
      type = types.package;
      readOnly = true;
      description = ''
        The boot-time ruleset as rendered at build time: edge.nft (with
        flow offload, when bootOffload is set) and edge-no-offload.nft.
        Build it to read what the router loads at boot.
      '';
    };
  };

  config = lib.mkMerge [
    { services.edge.firewall.bootRuleset = bootRuleset; }

    (lib.mkIf cfg.enable {
      assertions = [
        {
          assertion = !config.networking.firewall.enable;
          message = ''
            services.edge.firewall and networking.firewall are both enabled: the NixOS firewall's own
            iptables or nftables rules would fight edge-firewall's table inet edge. Set
            networking.firewall.enable = false (services.edge.firewall makes it the default, so something
            set it to true) and move its rules into services.edge.firewall.settings.
          '';
        }
        {
          assertion = !(config.networking.nftables.enable && (config.networking.nftables.flushRuleset or true));
          message = ''
            networking.nftables.flushRuleset flushes every nftables table, edge-firewall's table inet edge
            included, whenever nftables.service starts or reloads, which leaves the router open until
            edge-firewall applies again. Set networking.nftables.flushRuleset = false, or disable
            networking.nftables.
          '';
        }
      ];

      networking.firewall.enable = lib.mkDefault false;

      systemd.services.edge-firewall-boot = {
        description = "edge firewall: boot-time ruleset";
        wantedBy = [ "sysinit.target" ];
        wants = [ "network-pre.target" ];
        before = [ "network-pre.target" "shutdown.target" ];
        after = [ "systemd-modules-load.service" ];
        conflicts = [ "shutdown.target" ];
        unitConfig.DefaultDependencies = false;
        # Once the daemon runs, table inet edge is its own: a switch to a new
        # configuration must not replace its ruleset, and the run-time bans
        # in it, with the boot one. The daemon applies the new config itself.
        restartIfChanged = false;

        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = loadBootRuleset;
          # No ExecStop: stopping this unit leaves the ruleset loaded.

          # nft talks netlink and needs CAP_NET_ADMIN, nothing else. The
          # unit runs before local file systems, so no mount namespacing.
          CapabilityBoundingSet = [ "CAP_NET_ADMIN" ];
          NoNewPrivileges = true;
          RestrictAddressFamilies = [ "AF_NETLINK" "AF_UNIX" ];
          SystemCallArchitectures = "native";
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          RestrictRealtime = true;
        };
      };

      systemd.services.edge-firewall = lib.mkMerge [
        (unit.service edge "firewall")
        {
          description = "edge firewall";
          # Bans and the ruleset of this config are in place before any
          # interface comes up.
          after = [ "edge-firewall-boot.service" ];
          wants = [ "edge-firewall-boot.service" "network-pre.target" ];
          before = [ "network-pre.target" ];

          serviceConfig = {
            # nftables over netlink (table inet edge, set updates, counters)
            # and the NFLOG groups of the packet log need CAP_NET_ADMIN; the
            # daemon listens on no privileged port. No ExecStopPost with
            # -cleanup: the last ruleset stays when the daemon stops.
            CapabilityBoundingSet = [ "CAP_NET_ADMIN" ];
            AmbientCapabilities = [ "CAP_NET_ADMIN" ];
            # AF_NETLINK: nftables and NFLOG. AF_UNIX: the admin socket and
            # sd_notify. AF_INET, AF_INET6: metrics.
            RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
            PrivateDevices = true;
          };
        }
      ];
    })
  ];
}
