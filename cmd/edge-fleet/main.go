// Command edge-fleet generates the home fleet's NixOS flake from
// fleet.yaml: identities, encrypted secrets, machine configs and the
// fleet-wide wiring.
//
//	edge-fleet gen [-f fleet.yaml] [-o DIR] [--identity KEY]
//	edge-fleet check [-f fleet.yaml] [-o DIR] [--identity KEY] [--no-nix]
//	edge-fleet rotate HOST ITEM [...]      (ITEM: machine-id, ssh, wireguard, nebula)
//	edge-fleet rekey --identity KEY        (after admins changed)
//	edge-fleet bundle HOST DIR --identity KEY
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/homeedge/edge/internal/suite"
	"github.com/homeedge/edge/nixos/fleet"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: edge-fleet COMMAND [flags]

  gen                 make what is missing and write the tree
  check               validate the inventory and the generated tree
  rotate HOST ITEM    replace one identity item on purpose (machine-id, ssh, wireguard, nebula)
  rekey               encrypt every secret again to its recipients (after admins changed)
  bundle HOST DIR     lay out HOST's SSH host key for nixos-anywhere --extra-files
  version

flags: -f fleet.yaml (default ./fleet.yaml), -o DIR (default: fleet.yaml's folder),
       --identity FILE (an admin's SSH private key), --no-nix (check: skip nix-instantiate)
exit codes: 0 ok, 1 failure, 2 usage, 78 inventory errors
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("edge-fleet "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "fleet.yaml", "the inventory")
	out := fs.String("o", "", "where the tree is (default: the inventory's folder)")
	idPath := fs.String("identity", "", "an admin's SSH private key")
	noNix := fs.Bool("no-nix", false, "check: do not run nix-instantiate")
	var pos []string
	rest := args[1:]
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	if cmd == "version" {
		fmt.Fprintf(stdout, "edge-fleet %s\n", suite.BuildVersion())
		return 0
	}
	inv, err := fleet.LoadInventory(*file)
	if err != nil {
		fmt.Fprintf(stderr, "%v\nedge-fleet: %s has errors\n", err, *file)
		return 78
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(*file)
	}
	var identity []byte
	if *idPath != "" {
		if identity, err = os.ReadFile(*idPath); err != nil {
			fmt.Fprintf(stderr, "edge-fleet: %v\n", err)
			return 1
		}
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "edge-fleet: %v\n", err)
		return 1
	}
	switch cmd {
	case "gen", "rotate", "rekey":
		opts := fleet.Options{Dir: dir, Identity: identity, Rekey: cmd == "rekey"}
		if cmd == "rotate" {
			if len(pos) < 2 {
				fmt.Fprint(stderr, "usage: edge-fleet rotate HOST ITEM [ITEM...]\n")
				return 2
			}
			for _, item := range pos[1:] {
				opts.Rotate = append(opts.Rotate, pos[0]+"/"+item)
			}
		} else if len(pos) > 0 || cmd == "rekey" && identity == nil {
			fmt.Fprint(stderr, usage)
			return 2
		}
		res, err := fleet.Generate(inv, opts)
		if err != nil {
			return fail(err)
		}
		for _, w := range res.Written {
			fmt.Fprintf(stdout, "wrote %s\n", w)
		}
		fmt.Fprintf(stdout, "%d files written, %d unchanged\n", len(res.Written), res.Unchanged)
		return 0
	case "check":
		nix := !*noNix
		if _, err := exec.LookPath("nix-instantiate"); nix && err != nil {
			return fail(errors.New("nix-instantiate is not installed; install nix, or pass --no-nix"))
		}
		if err := fleet.Check(inv, fleet.CheckOptions{Dir: dir, Identity: identity, Nix: nix}); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%d hosts: facts, addresses and secrets check out\n", len(inv.Hosts))
		return 0
	case "bundle":
		if len(pos) != 2 || identity == nil {
			fmt.Fprint(stderr, "usage: edge-fleet bundle HOST DIR --identity ADMIN_SSH_KEY\n")
			return 2
		}
		if err := fleet.Bundle(inv, dir, pos[0], identity, pos[1]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "wrote %s/etc/ssh/ssh_host_ed25519_key: pass %s to nixos-anywhere --extra-files\n", pos[1], pos[1])
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}
