package identity

import (
	"strings"
	"testing"
)

func TestMachineID(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id, err := MachineID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 32 || strings.ToLower(id) != id || !ValidMachineID(id) {
			t.Fatalf("MachineID() = %q, want 32 lowercase hex digits", id)
		}
		if id[12] != '4' {
			t.Errorf("MachineID() = %q: version nibble %c, want 4", id, id[12])
		}
		if !strings.ContainsRune("89ab", rune(id[16])) {
			t.Errorf("MachineID() = %q: variant nibble %c, want one of 8 9 a b", id, id[16])
		}
		if seen[id] {
			t.Fatalf("MachineID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestHostID(t *testing.T) {
	got, err := HostID("8425e349a1b2c3d4e5f60718293a4b5c")
	if err != nil || got != "8425e349" {
		t.Errorf("HostID = %q, %v; want 8425e349", got, err)
	}
	for _, bad := range []string{"", "8425e349", "8425E349A1B2C3D4E5F60718293A4B5C", "00000000000000000000000000000000", "8425e349-a1b2-c3d4-e5f6-0718293a4b5c"} {
		if got, err := HostID(bad); err == nil {
			t.Errorf("HostID(%q) = %q, want an error", bad, got)
		}
	}
}

func TestValidMachineID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"8425e349a1b2c3d4e5f60718293a4b5c", true},
		{"00000000000000000000000000000001", true},
		{"ffffffffffffffffffffffffffffffff", true},
		{"00000000000000000000000000000000", false},
		{"8425E349A1B2C3D4E5F60718293A4B5C", false},
		{"8425e349a1b2c3d4e5f60718293a4b5", false},
		{"8425e349a1b2c3d4e5f60718293a4b5c0", false},
		{"8425e349a1b2c3d4e5f60718293a4b5g", false},
		{"8425e349-a1b2-c3d4-e5f6-0718293a", false},
		{"8425e349a1b2c3d4e5f60718293a4b5c\n", false},
		{"", false},
	} {
		if got := ValidMachineID(tc.in); got != tc.want {
			t.Errorf("ValidMachineID(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
