package fleet

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/identity"
)

// CheckOptions tune Check.
type CheckOptions struct {
	Dir string
	// Identity, an admin's SSH private key, lets Check decrypt every
	// secret: each host's own key with it, and each host's other secrets
	// with the host's key (proving the host can).
	Identity []byte
	// Nix runs nix-instantiate on every .nix file and facts.json; off
	// where Nix is not installed.
	Nix bool
}

// Check validates the generated tree against the inventory: facts
// complete and consistent (hostId from machine-id, unique hostIds and
// addresses, addresses inside their networks), every secret present,
// every .nix file parsing, every facts.json evaluating, and with an
// identity every secret decrypting for its recipients. It returns every
// problem found.
func Check(inv *Inventory, opts CheckOptions) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	hostIDs := map[string]string{}
	addrs := map[string]string{}
	for _, h := range slices.Sorted(maps.Keys(inv.Hosts)) {
		var f Facts
		ok, err := readJSON(factsPath(opts.Dir, h), &f)
		if err != nil || !ok {
			bad("host %s: machines/%s/facts.json: missing or unreadable (%v); run edge-fleet gen", h, h, err)
			continue
		}
		if !identity.ValidMachineID(f.MachineID) {
			bad("host %s: machine_id %q is not 32 lowercase hex digits", h, f.MachineID)
		} else if id, _ := identity.HostID(f.MachineID); id != f.HostID {
			bad("host %s: host_id %q is not the first 8 hex digits of machine_id", h, f.HostID)
		}
		if other, dup := hostIDs[f.HostID]; dup {
			bad("host %s: host_id %s is also %s's", h, f.HostID, other)
		}
		hostIDs[f.HostID] = h
		for n, a := range f.Addresses {
			ad, err := netip.ParseAddr(a)
			base := strings.TrimSuffix(n, "6")
			net, known := inv.Networks[base]
			switch {
			case err != nil:
				bad("host %s: address %s %q is not an address", h, n, a)
			case !known:
				bad("host %s: address in unknown network %s", h, n)
			case ad.Is4() && !net.Prefix.Contains(ad), ad.Is6() && !net.IPv6.Contains(ad):
				bad("host %s: address %s is not in network %s", h, a, base)
			}
			if other, dup := addrs[a]; dup {
				bad("host %s: address %s is also %s's", h, a, other)
			}
			addrs[a] = h
		}
		for _, n := range inv.Hosts[h].Networks {
			if f.Addresses[n] == "" {
				bad("host %s: no address in network %s; run edge-fleet gen", h, n)
			}
		}
		secrets := []string{"ssh_host_ed25519_key"}
		if f.WireGuardPub != "" {
			secrets = append(secrets, "wireguard.key")
		}
		if f.NebulaCert != "" {
			secrets = append(secrets, "nebula.key")
		}
		var hostKey []byte
		for i, s := range secrets {
			path := filepath.Join(opts.Dir, secretPath(h, s))
			enc, err := os.ReadFile(path)
			if err != nil {
				bad("host %s: secret %s: %v", h, secretPath(h, s), err)
				continue
			}
			// Without decrypting: the file must name the host's key and
			// every admin's among its recipients.
			if missing := missingRecipients(enc, append([]string{f.SSHHostEd25519Pub}, adminKeysOf(inv)...)); len(missing) > 0 {
				bad("host %s: secret %s is not encrypted to %s; run edge-fleet rotate %s", h, secretPath(h, s), strings.Join(missing, ", "), h)
			}
			if len(opts.Identity) == 0 {
				continue
			}
			plain, err := identity.Decrypt(enc, opts.Identity)
			if err != nil {
				bad("host %s: secret %s does not decrypt with the admin's key: %v", h, secretPath(h, s), err)
				continue
			}
			if i == 0 {
				hostKey = plain
				key, err := identity.ParseSSHHostKey(plain)
				if err != nil || !samePub(key.Public, f.SSHHostEd25519Pub) {
					bad("host %s: the encrypted host key does not match ssh_host_ed25519_pub", h)
				}
				continue
			}
			if hostKey != nil {
				plain, err := identity.Decrypt(enc, hostKey)
				if err != nil {
					bad("host %s: secret %s does not decrypt with the host's own key: %v", h, secretPath(h, s), err)
				} else if s == "nebula.key" {
					ca, _ := os.ReadFile(filepath.Join(opts.Dir, "nebula", "ca.crt"))
					if err := identity.VerifyNebulaHost(ca, identity.NebulaHost{CertPEM: []byte(f.NebulaCert), KeyPEM: plain}, time.Now()); err != nil {
						bad("host %s: %v", h, err)
					}
				}
			}
		}
	}
	if _, ok := inv.Networks["nebula"]; ok {
		errs = append(errs, checkNebula(inv, opts.Dir)...)
	}
	if opts.Nix {
		errs = append(errs, nixChecks(opts.Dir)...)
	}
	return errors.Join(errs...)
}

// samePub compares two authorized_keys lines by type and key.
func samePub(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return len(fa) >= 2 && len(fb) >= 2 && fa[0] == fb[0] && fa[1] == fb[1]
}

// nixChecks parses every .nix file and evaluates every facts.json with
// nix-instantiate, checking hostId = the first 8 hex digits of the
// machine-id in Nix itself.
func nixChecks(dir string) []error {
	var errs []error
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".nix"):
			if out, err := exec.Command("nix-instantiate", "--parse", path).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s does not parse: %s", path, strings.TrimSpace(string(out))))
			}
		case filepath.Base(path) == "facts.json":
			expr := fmt.Sprintf(`let f = builtins.fromJSON (builtins.readFile %s); in assert builtins.substring 0 8 f.machine_id == f.host_id; assert builtins.match "[0-9a-f]{32}" f.machine_id != null; f.host_id`, path)
			if out, err := exec.Command("nix-instantiate", "--eval", "--strict", "-E", expr).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s does not evaluate: %s", path, strings.TrimSpace(string(out))))
			}
		}
		return nil
	})
	return errs
}

// Bundle lays out host's SSH host key under dir as nixos-anywhere's
// --extra-files wants it (dir/etc/ssh/ssh_host_ed25519_key, mode 0600),
// decrypted with an admin's key, so the host decrypts its secrets on its
// first boot.
func Bundle(inv *Inventory, genDir, host string, adminIdentity []byte, dir string) error {
	if _, ok := inv.Hosts[host]; !ok {
		return fmt.Errorf("no host %q in the inventory", host)
	}
	var f Facts
	if ok, err := readJSON(factsPath(genDir, host), &f); err != nil || !ok {
		return fmt.Errorf("host %s has no facts yet; run edge-fleet gen", host)
	}
	enc, err := os.ReadFile(filepath.Join(genDir, secretPath(host, "ssh_host_ed25519_key")))
	if err != nil {
		return err
	}
	plain, err := identity.Decrypt(enc, adminIdentity)
	if err != nil {
		return fmt.Errorf("decrypt %s's host key: %w", host, err)
	}
	sshDir := filepath.Join(dir, "etc", "ssh")
	if err := os.MkdirAll(sshDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sshDir, "ssh_host_ed25519_key"), plain, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(sshDir, "ssh_host_ed25519_key.pub"), []byte(f.SSHHostEd25519Pub+"\n"), 0o644)
}

func adminKeysOf(inv *Inventory) []string {
	var out []string
	for _, a := range inv.Admins {
		out = append(out, a.SSH...)
	}
	return out
}

// missingRecipients lists the keys of want that an age file is not
// encrypted to, by their stanza tags.
func missingRecipients(enc []byte, want []string) []string {
	stanzas, err := identity.Recipients(enc)
	if err != nil {
		return []string{"anyone (unreadable header: " + err.Error() + ")"}
	}
	var missing []string
	for _, k := range want {
		tag, err := identity.SSHKeyTag(k)
		if err != nil {
			missing = append(missing, k)
			continue
		}
		if !slices.ContainsFunc(stanzas, func(s identity.RecipientStanza) bool { return s.Tag == tag }) {
			f := strings.Fields(k)
			missing = append(missing, f[len(f)-1])
		}
	}
	return missing
}

// checkNebula verifies every host cert against the fleet CA: signature,
// dates, and the name and address the facts say.
func checkNebula(inv *Inventory, dir string) []error {
	var errs []error
	ca, err := os.ReadFile(filepath.Join(dir, "nebula", "ca.crt"))
	if err != nil {
		return []error{fmt.Errorf("nebula/ca.crt: %v", err)}
	}
	caInfo, err := identity.NebulaCertInfo(ca)
	if err != nil {
		return []error{fmt.Errorf("nebula/ca.crt: %v", err)}
	}
	for _, h := range slices.Sorted(maps.Keys(inv.Hosts)) {
		if !slices.Contains(inv.Hosts[h].Networks, "nebula") {
			continue
		}
		var f Facts
		readJSON(factsPath(dir, h), &f)
		if f.NebulaCert == "" {
			errs = append(errs, fmt.Errorf("host %s: no nebula_cert in its facts; run edge-fleet gen", h))
			continue
		}
		info, err := identity.NebulaCertInfo([]byte(f.NebulaCert))
		if err != nil {
			errs = append(errs, fmt.Errorf("host %s: nebula_cert: %v", h, err))
			continue
		}
		if info.Name != h || info.Network.Addr().String() != f.Addresses["nebula"] {
			errs = append(errs, fmt.Errorf("host %s: its nebula cert is for %s at %s, want %s at %s", h, info.Name, info.Network, h, f.Addresses["nebula"]))
		}
		if info.Issuer != caInfo.Fingerprint {
			errs = append(errs, fmt.Errorf("host %s: its nebula cert is not signed by nebula/ca.crt", h))
		}
		if time.Now().After(info.NotAfter) {
			errs = append(errs, fmt.Errorf("host %s: its nebula cert expired on %s; run edge-fleet rotate %s nebula", h, info.NotAfter.Format(time.DateOnly), h))
		}
	}
	return errs
}
