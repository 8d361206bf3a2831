package repotest

import (
	"strings"
	"testing"
)

func TestNoEnvInDomainPackages(t *testing.T) {
	files, err := GoFiles(root(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range CheckNoEnv(files) {
		t.Error(v)
	}
}

func TestNoEnvCatchesViolations(t *testing.T) {
	files := map[string][]byte{
		"firewall/service.go":    []byte("package firewall\nimport \"os\"\nvar off = os.Getenv(\"X\") == \"1\"\n"),
		"vpn/renamed.go":         []byte("package vpn\nimport sys \"os\"\nfunc f() { _, _ = sys.LookupEnv(\"Y\") }\n"),
		"dns/fine_test.go":       []byte("package dns\nimport \"os\"\nvar _ = os.Getenv(\"Z\")\n"),
		"cmd/edge-dns/main.go":   []byte("package main\nimport \"os\"\nvar _ = os.Getenv(\"Z\")\n"),
		"internal/sdnotify/s.go": []byte("package sdnotify\nimport \"os\"\nvar _ = os.Getenv(\"NOTIFY_SOCKET\")\n"),
		"lb/other.go":            []byte("package lb\nimport \"example.org/os\"\nvar _ = os.Getenv(\"W\")\n"),
		"lb/shadow.go":           []byte("package lb\nvar _ = struct{ Getenv func(string) string }{}.Getenv\n"),
	}
	got := CheckNoEnv(files)
	if len(got) != 2 || !strings.HasPrefix(got[0], "firewall/service.go:3:11: os.Getenv") || !strings.HasPrefix(got[1], "vpn/renamed.go:3:19: os.LookupEnv") {
		t.Errorf("CheckNoEnv(planted) = %q, want the firewall's Getenv and the vpn's LookupEnv only", got)
	}
}
