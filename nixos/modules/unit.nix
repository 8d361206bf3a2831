# What the edge daemon modules share: their common options, the config
# document, and the systemd settings every daemon unit has. This file is
# not a module; common.nix and the daemon modules import it as a function.
{ lib, pkgs }:
let
  inherit (lib) mkOption mkEnableOption types;
  json = pkgs.formats.json { };
in
rec {
  # The daemons, in the order of suite.Daemons.
  daemons = [ "dns" "firewall" "vpn" "lb" "proxy" ];

  # enabled lists the daemons whose modules are loaded and enabled.
  enabled = edge: lib.filter (d: edge ? ${d} && edge.${d}.enable) daemons;

  # document is the suite's config file as an attribute set: version 1,
  # the shared settings, and the section of every enabled daemon.
  document = edge:
    { version = 1; } // edge.settings // lib.genAttrs (enabled edge) (d: edge.${d}.settings);

  # options are the options every daemon module has under
  # services.edge.<name>.
  options = name: description: {
    enable = mkEnableOption description;

    settings = mkOption {
      type = json.type;
      default = { };
      description = ''
        The `${name}` section of /etc/edge/edge.yaml, with the keys the
        suite's docs give (docs/config.md and the daemon's page). It is
        written as JSON and checked at build time with
        `edge-${name} -check`, so a config the daemon would refuse fails
        the build, not the boot.
      '';
    };

    credentials = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { tsig = "/run/secrets/edge-tsig"; };
      description = ''
        Secret files for edge-${name}, handed over with systemd's
        LoadCredential: `NAME = "/path"` makes the file readable to the
        daemon alone, as /run/credentials/edge-${name}.service/NAME; use
        that path in settings (`secret_file`, `private_key_file`). The
        daemons run as dynamic users, which cannot own files elsewhere.
        Give paths outside the Nix store: the store is world-readable.
      '';
    };
  };

  # service is the part of systemd.services.edge-<name> that every daemon
  # shares. Each daemon module adds its ordering, its capabilities, its
  # address families and its devices, with the reasons.
  service = edge: name: {
    wantedBy = [ "multi-user.target" ];

    # The daemon reads the shared sections and its own: a change to
    # another daemon's section does not restart it.
    restartTriggers = [
      (builtins.hashString "sha256" (builtins.toJSON ({ version = 1; } // edge.settings // { ${name} = edge.${name}.settings; })))
    ];

    serviceConfig = {
      # The runtime contract (docs/architecture.md): READY=1 once serving,
      # RELOADING=1/READY=1 around a reload, STOPPING=1, and WATCHDOG=1 at
      # half of WatchdogSec. SIGHUP reloads and keeps the old config when
      # the new one fails.
      Type = "notify";
      NotifyAccess = "main";
      ExecStart = "${edge.package}/bin/edge-${name} -config /etc/edge/edge.yaml";
      ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
      WatchdogSec = "30s";
      Restart = "on-failure";
      RestartSec = "5s";
      # 78 (EX_CONFIG) is a config that does not load: restarting cannot
      # fix it.
      RestartPreventExitStatus = 78;

      # A dynamic user: nothing the daemon owns outlives it as files
      # outside its state directory, and the kernel objects it manages
      # (nftables tables, links) carry no owner, so the next run, under
      # whatever uid it gets, takes them over.
      DynamicUser = true;
      # The admin group: the daemon gives its admin socket this group, and
      # it must hold the group to do so.
      SupplementaryGroups = [ edge.group ];
      # <state_dir>/<name>; with DynamicUser, systemd keeps it under
      # /var/lib/private and hands it to each run's uid.
      StateDirectory = "edge/${name}";
      StateDirectoryMode = "0700";
      # The shared socket directory, made by common.nix (systemd.tmpfiles).
      # It is not this unit's RuntimeDirectory: with DynamicUser, a
      # preserved RuntimeDirectory moves under /run/private, which only
      # root can enter, and every unit's start would hand the whole
      # directory, the other daemons' sockets included, to its own uid.
      ReadWritePaths = [ edge.settings.admin.socket_dir ];
      LoadCredential = lib.mapAttrsToList (n: path: "${n}:${path}") edge.${name}.credentials;
      UMask = "0077";

      ProtectSystem = "strict";
      ProtectHome = true;
      PrivateTmp = true;
      NoNewPrivileges = true;
      ProtectKernelTunables = true;
      ProtectKernelModules = true;
      ProtectKernelLogs = true;
      ProtectControlGroups = true;
      ProtectClock = true;
      ProtectHostname = true;
      # No ProtectProc=invisible: the admin API reads a caller's
      # /proc/<pid>/status to see whether it holds the admin group.
      RestrictNamespaces = true;
      RestrictRealtime = true;
      RestrictSUIDSGID = true;
      LockPersonality = true;
      MemoryDenyWriteExecute = true;
      SystemCallArchitectures = "native";
      SystemCallFilter = [ "@system-service" ];
      SystemCallErrorNumber = "EPERM";
    };
  };
}
