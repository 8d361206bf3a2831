# edge as a flake: the package and the NixOS modules. The fleet flake that
# edge-fleet writes takes this one as its "edge" input.
{
  description = "edge: the router and network edge of a NixOS home fleet, and the fleet generator";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: {
        # go.mod asks for Go 1.26; see nixos/modules/package.nix.
        default = pkgs.callPackage ./nixos/modules/package.nix { };
      });

      nixosModules.default = { pkgs, lib, ... }: {
        imports = [ ./nixos/modules ];
        services.edge.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
    };
}
