package identity

import (
	"net/netip"
	"testing"
	"time"

	"filippo.io/age"
)

// hostIdentity makes one host's full set, as the fleet generator does.
func hostIdentity(b testing.TB, ca NebulaCA, nebulaAddr netip.Prefix, admin string) {
	id, err := MachineID()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := HostID(id); err != nil {
		b.Fatal(err)
	}
	ssh, err := NewSSHHostKey("root@host")
	if err != nil {
		b.Fatal(err)
	}
	wg, err := NewWireGuardKeys()
	if err != nil {
		b.Fatal(err)
	}
	neb, err := SignNebulaHost(ca, "host", nebulaAddr, []string{"servers"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	to := []string{ssh.Public, admin}
	for _, secret := range [][]byte{ssh.PrivatePEM, []byte(wg.Private), neb.KeyPEM} {
		if _, err := Encrypt(secret, to); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHostIdentity(b *testing.B) {
	ca, err := NewNebulaCA("fleet", 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	admin, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	adminKey, err := NewSSHHostKey("admin")
	if err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParsePrefix("10.200.0.5/16")
	b.Run("admin=age", func(b *testing.B) {
		for b.Loop() {
			hostIdentity(b, ca, addr, admin.Recipient().String())
		}
	})
	b.Run("admin=ssh", func(b *testing.B) {
		for b.Loop() {
			hostIdentity(b, ca, addr, adminKey.Public)
		}
	})
}
