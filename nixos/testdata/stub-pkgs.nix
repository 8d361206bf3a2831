# A stand-in for the pkgs attributes the edge modules use. A derivation
# here is an attribute set with an outPath (a made-up store path ending in
# its name) and the arguments it was made from, so a test can read a
# runCommand's script or a writeText's text. Nothing is built.
{ lib }:
let
  drv = name: attrs: attrs // {
    inherit name;
    type = "derivation";
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };

  self = {
    writeText = name: text: drv name { inherit text; };
    writeShellScript = name: text: drv name { inherit text; executable = true; };
    # As in nixpkgs, passthru attributes end up on the derivation itself.
    runCommand = name: env: script:
      drv name ((removeAttrs env [ "passthru" ]) // (env.passthru or { }) // { inherit script; });

    coreutils = drv "coreutils" { };
    nftables = drv "nftables" { };

    buildGoModule = args: drv "${args.pname}-${args.version}" args;

    callPackage = fn: overrides:
      let f = if builtins.isFunction fn then fn else import fn;
      in f (builtins.intersectAttrs (builtins.functionArgs f) (self // { inherit lib; }) // overrides);

    formats.json = { }: {
      type = lib.types.anything // { name = "JSON value"; check = lib.isJSON; };
      generate = name: value: self.writeText name (builtins.toJSON value);
    };
  };
in
self
