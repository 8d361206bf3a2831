# The edge suite's binaries (the daemons that exist so far and edgectl),
# built from this repository.
#
#   pkgs.callPackage ./package.nix { vendorHash = "sha256-..."; version = "1.0.0"; }
#
# go.mod asks for Go 1.26. Where the nixpkgs default Go is older, pass a
# builder of a newer one: { buildGoModule = pkgs.buildGo126Module; }.
{
  lib,
  buildGoModule,
  # The hash of the Go module dependencies. lib.fakeHash makes the first
  # build stop at the dependencies with "hash mismatch ... got:
  # sha256-..."; put that value here, or pass it as an argument. It
  # changes whenever go.mod or go.sum does.
  vendorHash ? lib.fakeHash,
  # What `edgectl version` and `edge-<daemon> -version` print.
  version ? "0-unstable",
}:

buildGoModule {
  pname = "edge";
  inherit version vendorHash;

  src = lib.cleanSourceWith {
    src = lib.cleanSource ../..;
    # bin/ holds `make build` output, not sources.
    filter = path: type: !(type == "directory" && baseNameOf path == "bin" && dirOf path == toString ../..);
  };

  subPackages = [
    "cmd/edge-dns"
    "cmd/edge-firewall"
    "cmd/edge-vpn"
    "cmd/edgectl"
  ];

  ldflags = [
    "-s"
    "-w"
    "-X github.com/homeedge/edge/internal/suite.Version=${version}"
  ];

  meta = {
    description = "Daemons and CLI that turn a NixOS machine into a home network's router and edge: DNS, firewall, VPN";
    # license: the repository has no license yet; set lib.licenses.<id>
    # here when it gets one.
    platforms = lib.platforms.linux;
    mainProgram = "edgectl";
  };
}
