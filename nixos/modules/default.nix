# The edge suite's NixOS modules: services.edge and one module per daemon.
# Each daemon module imports common.nix, so a single one can be imported
# alone as well.
{
  imports = [
    ./common.nix
    ./dns.nix
    ./firewall.nix
    ./vpn.nix
    ./lb.nix
    ./proxy.nix
  ];
}
