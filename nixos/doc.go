// Package nixos holds the NixOS modules of the edge daemons and the tests that check them.
package nixos
