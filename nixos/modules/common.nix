# The options every edge daemon shares, and the suite's one config file.
#
# /etc/edge/edge.yaml is written from services.edge.settings (site, admin,
# state_dir, log) and the settings of each enabled daemon under its
# section key, as JSON: YAML is a superset of JSON, and the daemons read
# both through the same strict parser. The file is checked at build time
# with each enabled daemon's -check, so a config a daemon would refuse
# fails the build instead of the boot.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.edge;
  unit = import ./unit.nix { inherit lib pkgs; };
  json = pkgs.formats.json { };
  enabled = unit.enabled cfg;

  unchecked = pkgs.writeText "edge.json" (builtins.toJSON (unit.document cfg));

  checked = pkgs.runCommand "edge.yaml" { passthru = { inherit unchecked; }; } ''
    # The router's files (a blocklist under /var/lib) are not in the
    # build sandbox: edge-firewall -check takes a missing set file as
    # empty here, and the daemon reads it on the router.
    export EDGE_FIREWALL_IGNORE_MISSING_FILES=1
    ${lib.concatMapStrings (d: ''
      if [ ! -x ${cfg.package}/bin/edge-${d} ]; then
        echo "services.edge.${d} is enabled, but ${cfg.package} has no bin/edge-${d}" >&2
        exit 1
      fi
      echo "checking the config with edge-${d} -check"
      ${cfg.package}/bin/edge-${d} -check -config ${unchecked} > /dev/null
    '') enabled}
    cp ${unchecked} $out
  '';
in
{
  options.services.edge = {
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = ''
        The edge suite: the daemons and edgectl. The default builds this
        repository with a placeholder vendorHash; see package.nix.
      '';
    };

    group = mkOption {
      type = types.str;
      default = "edge";
      description = ''
        The admin group: the daemons' admin sockets belong to it, and its
        members may change things through edgectl. Members read status
        too; everyone else cannot reach the sockets. Written to the config
        as admin.group.
      '';
    };

    settings = mkOption {
      type = types.submodule {
        freeformType = json.type;
        options = {
          state_dir = mkOption {
            type = types.str;
            default = "/var/lib/edge";
            description = ''
              Where the daemons keep run-time state, <state_dir>/<daemon>.
              The units' StateDirectory is /var/lib/edge/<daemon>, so this
              must stay /var/lib/edge.
            '';
          };
          admin = mkOption {
            type = types.submodule {
              freeformType = json.type;
              options = {
                socket_dir = mkOption {
                  type = types.str;
                  default = "/run/edge";
                  description = "The directory of the admin sockets, <socket_dir>/<daemon>.sock.";
                };
                group = mkOption {
                  type = types.str;
                  default = cfg.group;
                  defaultText = lib.literalExpression "config.services.edge.group";
                  description = "The admin sockets' group; set services.edge.group instead.";
                };
              };
            };
            default = { };
            description = "The admin section (docs/config.md).";
          };
        };
      };
      default = { };
      example = lib.literalExpression ''
        {
          site = {
            domain = "example.net";
            local_domain = "home.arpa";
            interfaces = { wan = "eth0"; lan = "br-lan"; };
            networks = { lan = [ "192.168.1.0/24" "fd00:1::/64" ]; vpn = [ "10.100.0.0/24" ]; };
          };
          log.level = "info";
        }
      '';
      description = ''
        The shared sections of /etc/edge/edge.yaml: site, admin,
        state_dir and log (docs/config.md). `version` is set for you; the
        daemons' sections come from services.edge.<daemon>.settings.
      '';
    };

    configFile = mkOption {
      type = types.package;
      readOnly = true;
      description = ''
        The rendered and checked config file, installed as
        /etc/edge/edge.yaml. Its `unchecked` attribute is the same JSON
        before the check.
      '';
    };
  };

  config = lib.mkMerge [
    { services.edge.configFile = checked; }

    (lib.mkIf (enabled != [ ]) {
      assertions = [
        {
          assertion = cfg.settings.state_dir == "/var/lib/edge";
          message = ''
            services.edge.settings.state_dir is ${cfg.settings.state_dir}, but the daemons' units keep their
            state in StateDirectory=edge/<daemon>, which is /var/lib/edge/<daemon>. Leave state_dir unset.
          '';
        }
        {
          assertion = cfg.settings.admin.group == cfg.group;
          message = ''
            services.edge.settings.admin.group is ${cfg.settings.admin.group}, but the units give the daemons
            services.edge.group (${cfg.group}). Set services.edge.group instead.
          '';
        }
      ];

      environment.etc."edge/edge.yaml".source = checked;

      # edgectl, and the daemons for -check, -render and -cleanup by hand.
      environment.systemPackages = [ cfg.package ];

      users.groups.${cfg.group} = { };

      # The admin sockets' directory, shared by all daemons: each creates
      # <socket_dir>/<daemon>.sock in it. Members of the admin group may
      # enter it and reach the sockets; others only with
      # admin.world_readable, which makes the sockets 0666.
      systemd.tmpfiles.rules = [
        "d ${cfg.settings.admin.socket_dir} ${if cfg.settings.admin.world_readable or false then "0771" else "0770"} root ${cfg.group} - -"
      ];
    })
  ];
}
