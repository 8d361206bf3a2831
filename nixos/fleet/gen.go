package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homeedge/edge/identity"
)

// Options tune a generation.
type Options struct {
	// Dir is where the tree goes (fleet.yaml's folder).
	Dir string
	// Identity is an admin's SSH private key, needed only to sign Nebula
	// certs for new hosts once the fleet CA exists (its key is kept
	// encrypted to the admins).
	Identity []byte
	// Rotate names items to replace on purpose: "HOST/ITEM" with ITEM one
	// of machine-id, ssh, wireguard, nebula.
	Rotate []string
	// Rekey encrypts every existing secret again to its current
	// recipients (after an admin joined or left), decrypting with
	// Identity. The keys themselves do not change.
	Rekey bool
}

// Result says what a generation wrote.
type Result struct {
	Written   []string
	Unchanged int
}

// Items edge-fleet rotate accepts.
var Items = []string{"machine-id", "ssh", "wireguard", "nebula"}

// nebulaValid is how long the fleet CA and host certs are valid.
const nebulaValid = 10 * 365 * 24 * time.Hour

type generator struct {
	inv   *Inventory
	opts  Options
	facts map[string]*Facts
	alloc Allocations
	files map[string][]byte
	// secrets are new encrypted files to write (never rewritten once
	// there: age output differs on every run).
	secrets map[string][]byte
	caKey   []byte
	// newHostKeys are the hosts whose SSH host key this run replaced:
	// their other secrets are encrypted again to the new key.
	newHostKeys []string
}

// Generate makes what is missing of the fleet's identities and writes
// the tree: machines/<host>/{facts.json,default.nix,
// hardware-configuration.nix}, secrets/<host>/*.age, secrets.nix,
// fleet.nix, flake.nix, allocations.json, nebula/ca.crt and the router's
// edge.yaml. Files whose content is unchanged are not touched, so a
// second run writes nothing.
func Generate(inv *Inventory, opts Options) (*Result, error) {
	g := &generator{inv: inv, opts: opts, facts: map[string]*Facts{}, alloc: Allocations{},
		files: map[string][]byte{}, secrets: map[string][]byte{}}
	for _, r := range opts.Rotate {
		host, item, ok := cutItem(r)
		if !ok || inv.Hosts[host].System == "" || !slices.Contains(Items, item) {
			return nil, fmt.Errorf("rotate %q: want HOST/ITEM with a host of the inventory and ITEM one of %v", r, Items)
		}
		if why := inv.lacks(host, item); why != "" {
			return nil, fmt.Errorf("rotate %s %s: %s has no %s key (%s)", host, item, host, item, why)
		}
	}
	if _, err := readJSON(filepath.Join(opts.Dir, allocationsFile), &g.alloc); err != nil {
		return nil, err
	}
	for _, h := range slices.Sorted(maps.Keys(inv.Hosts)) {
		f := &Facts{}
		if _, err := readJSON(factsPath(opts.Dir, h), f); err != nil {
			return nil, err
		}
		host := inv.Hosts[h]
		f.Hostname, f.System, f.Roles = h, host.System, slices.Clone(host.Roles)
		if f.Addresses == nil {
			f.Addresses = map[string]string{}
		}
		for n := range f.Addresses {
			base := n
			if len(n) > 1 && n[len(n)-1] == '6' {
				base = n[:len(n)-1]
			}
			if !slices.Contains(host.Networks, base) {
				delete(f.Addresses, n)
			}
		}
		g.facts[h] = f
	}
	if err := g.allocate(); err != nil {
		return nil, err
	}
	for _, h := range slices.Sorted(maps.Keys(inv.Hosts)) {
		if err := g.identities(h); err != nil {
			return nil, fmt.Errorf("host %s: %w", h, err)
		}
	}
	if err := g.nebula(); err != nil {
		return nil, err
	}
	switch {
	case opts.Rekey:
		if err := g.rekey(nil); err != nil {
			return nil, err
		}
	case len(g.newHostKeys) > 0:
		if err := g.rekey(g.newHostKeys); err != nil {
			return nil, err
		}
	}
	if err := g.render(); err != nil {
		return nil, err
	}
	return g.write()
}

func cutItem(s string) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// lacks says why host has no key of item (the roles or networks that
// would give it one), or "" when it has one.
func (inv *Inventory) lacks(host, item string) string {
	h := inv.Hosts[host]
	switch item {
	case "wireguard":
		if !slices.Contains(h.Roles, "router") && !slices.Contains(h.Roles, "laptop") {
			return "only routers and laptops have one"
		}
	case "nebula":
		if !slices.Contains(h.Networks, "nebula") {
			return "it is not in network nebula"
		}
	}
	return ""
}

func (g *generator) rotating(host, item string) bool {
	return slices.Contains(g.opts.Rotate, host+"/"+item)
}

// recipients are who may decrypt a host's secrets: the host itself and
// every admin.
func (g *generator) recipients(host string) []string {
	r := []string{g.facts[host].SSHHostEd25519Pub}
	return append(r, g.adminKeys()...)
}

func (g *generator) adminKeys() []string {
	var out []string
	for _, a := range g.inv.Admins {
		out = append(out, a.SSH...)
	}
	return out
}

func secretPath(host, name string) string {
	return filepath.Join("secrets", host, name+".age")
}

// identities makes the host's machine-id, SSH host key and WireGuard key
// pair when they are missing (or rotated).
func (g *generator) identities(h string) error {
	f := g.facts[h]
	host := g.inv.Hosts[h]
	if !identity.ValidMachineID(f.MachineID) || g.rotating(h, "machine-id") {
		id, err := identity.MachineID()
		if err != nil {
			return err
		}
		f.MachineID = id
	}
	hid, err := identity.HostID(f.MachineID)
	if err != nil {
		return err
	}
	f.HostID = hid
	sshSecret := secretPath(h, "ssh_host_ed25519_key")
	if f.SSHHostEd25519Pub == "" || g.rotating(h, "ssh") {
		key, err := identity.NewSSHHostKey("root@" + h)
		if err != nil {
			return err
		}
		f.SSHHostEd25519Pub = key.Public
		enc, err := identity.Encrypt(key.PrivatePEM, g.recipients(h))
		if err != nil {
			return fmt.Errorf("encrypt the SSH host key: %w", err)
		}
		g.secrets[sshSecret] = enc
		// A new host key means new recipients for the host's other
		// secrets: they are encrypted again (rekey), their keys stay.
		if f.WireGuardPub != "" || f.NebulaCert != "" {
			g.newHostKeys = append(g.newHostKeys, h)
		}
	} else if _, err := os.Stat(filepath.Join(g.opts.Dir, sshSecret)); err != nil {
		return fmt.Errorf("%s is missing while facts.json has the host key; run edge-fleet rotate %s ssh", sshSecret, h)
	}
	wantWG := slices.Contains(host.Roles, "router") || slices.Contains(host.Roles, "laptop")
	switch {
	case !wantWG:
		f.WireGuardPub = ""
	case f.WireGuardPub == "" || g.rotating(h, "wireguard"):
		k, err := identity.NewWireGuardKeys()
		if err != nil {
			return err
		}
		f.WireGuardPub = k.Public
		enc, err := identity.Encrypt([]byte(k.Private+"\n"), g.recipients(h))
		if err != nil {
			return err
		}
		g.secrets[secretPath(h, "wireguard.key")] = enc
	}
	return nil
}

// nebula makes the fleet CA (first run) and a cert for every host in the
// nebula network that has none.
func (g *generator) nebula() error {
	n, ok := g.inv.Networks["nebula"]
	if !ok {
		return nil
	}
	var need []string
	for _, h := range slices.Sorted(maps.Keys(g.inv.Hosts)) {
		f := g.facts[h]
		if !slices.Contains(g.inv.Hosts[h].Networks, "nebula") {
			f.NebulaCert = ""
			continue
		}
		if f.NebulaCert == "" || g.rotating(h, "nebula") {
			need = append(need, h)
		}
	}
	caCertPath := filepath.Join(g.opts.Dir, "nebula", "ca.crt")
	caCert, err := os.ReadFile(caCertPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		ca, err := identity.NewNebulaCA("edge fleet", nebulaValid)
		if err != nil {
			return err
		}
		caCert, g.caKey = ca.CertPEM, ca.KeyPEM
		enc, err := identity.Encrypt(ca.KeyPEM, g.adminKeys())
		if err != nil {
			return err
		}
		g.secrets[filepath.Join("secrets", "fleet", "nebula-ca.key.age")] = enc
	case err != nil:
		return err
	case len(need) > 0:
		if len(g.opts.Identity) == 0 {
			return fmt.Errorf("hosts %v need Nebula certs, signed by the fleet CA, whose key is encrypted to the admins: give an admin's SSH private key (--identity)", need)
		}
		enc, err := os.ReadFile(filepath.Join(g.opts.Dir, "secrets", "fleet", "nebula-ca.key.age"))
		if err != nil {
			return err
		}
		if g.caKey, err = identity.Decrypt(enc, g.opts.Identity); err != nil {
			return fmt.Errorf("decrypt the fleet CA key: %w", err)
		}
	}
	g.files[filepath.Join("nebula", "ca.crt")] = caCert
	ca := identity.NebulaCA{CertPEM: caCert, KeyPEM: g.caKey}
	for _, h := range need {
		a := netip.MustParseAddr(g.facts[h].Addresses["nebula"])
		groups := slices.Clone(g.inv.Hosts[h].Roles)
		host, err := identity.SignNebulaHost(ca, h, netip.PrefixFrom(a, n.Prefix.Bits()), groups, nebulaValid)
		if err != nil {
			return fmt.Errorf("host %s: nebula cert: %w", h, err)
		}
		g.facts[h].NebulaCert = string(host.CertPEM)
		enc, err := identity.Encrypt(host.KeyPEM, g.recipients(h))
		if err != nil {
			return err
		}
		g.secrets[secretPath(h, "nebula.key")] = enc
	}
	return nil
}

// write writes every file whose content changed, and the new secrets.
func (g *generator) write() (*Result, error) {
	res := &Result{}
	put := func(rel string, b []byte, mode os.FileMode) error {
		path := filepath.Join(g.opts.Dir, rel)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
			res.Unchanged++
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		res.Written = append(res.Written, rel)
		return nil
	}
	for _, rel := range slices.Sorted(maps.Keys(g.secrets)) {
		if err := put(rel, g.secrets[rel], 0o644); err != nil {
			return nil, err
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(g.files)) {
		if err := put(rel, g.files[rel], 0o644); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// rekey re-encrypts every secret already in the tree to its recipients as
// the inventory now has them.
func (g *generator) rekey(hosts []string) error {
	if len(g.opts.Identity) == 0 {
		if hosts != nil {
			return fmt.Errorf("a new SSH host key for %s means its other secrets (WireGuard, Nebula) are encrypted again to it, which takes an admin's SSH private key (--identity); their keys stay", strings.Join(hosts, ", "))
		}
		return errors.New("rekey decrypts every secret: give an admin's SSH private key (--identity)")
	}
	type job struct {
		rel        string
		recipients []string
	}
	var jobs []job
	all := hosts == nil
	if all {
		hosts = slices.Sorted(maps.Keys(g.inv.Hosts))
	}
	for _, h := range hosts {
		for _, s := range g.secretNames(h) {
			jobs = append(jobs, job{secretPath(h, s), g.recipients(h)})
		}
	}
	if _, ok := g.inv.Networks["nebula"]; ok && all {
		jobs = append(jobs, job{filepath.Join("secrets", "fleet", "nebula-ca.key.age"), g.adminKeys()})
	}
	for _, j := range jobs {
		if _, fresh := g.secrets[j.rel]; fresh {
			continue // made in this run, to the current recipients
		}
		enc, err := os.ReadFile(filepath.Join(g.opts.Dir, j.rel))
		if err != nil {
			return err
		}
		plain, err := identity.Decrypt(enc, g.opts.Identity)
		if err != nil {
			return fmt.Errorf("rekey %s: %w", j.rel, err)
		}
		if g.secrets[j.rel], err = identity.Encrypt(plain, j.recipients); err != nil {
			return fmt.Errorf("rekey %s: %w", j.rel, err)
		}
	}
	return nil
}
