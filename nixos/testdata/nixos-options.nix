# The NixOS options outside services.edge that the edge modules read, at
# their nixpkgs defaults. eval.nix gives them option-default priority, so
# the modules' mkDefault and a test's own settings override them as they
# would in a NixOS system.
{
  networking.firewall.enable = true;
  networking.nftables.enable = false;
  networking.nftables.flushRuleset = true;
  services.dnsmasq.enable = false;
  services.dnsmasq.settings = { };
  services.unbound.enable = false;
  services.unbound.settings = { };
}
