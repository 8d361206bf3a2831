package config

import (
	"strings"
	"testing"
)

func TestDocument(t *testing.T) {
	type host struct {
		System string   `yaml:"system"`
		Roles  []string `yaml:"roles"`
	}
	type inv struct {
		Version int             `yaml:"version"`
		Hosts   map[string]host `yaml:"hosts"`
	}
	var v inv
	c, err := Document([]byte("version: 1\nhosts:\n  a: {system: x86_64-linux, roles: [server]}\n"), "fleet.yaml", &v)
	if err != nil || v.Hosts["a"].Roles[0] != "server" {
		t.Fatalf("Document = %+v, %v", v, err)
	}
	if c.Err() != nil {
		t.Errorf("Err() = %v before any check", c.Err())
	}
	c.Key("hosts").Key("a").Key("system").Errorf("unknown system")
	if err := c.Err(); err == nil || err.Error() != "fleet.yaml:3:15: hosts.a.system: unknown system" {
		t.Errorf("Err() = %v", err)
	}
	_, err = Document([]byte("version: 1\nhosts:\n  a: {sytem: x, roles: server}\n"), "fleet.yaml", &v)
	for _, want := range []string{`fleet.yaml:3:7: hosts.a.sytem: unknown key "sytem" (did you mean "system"?)`, "hosts.a.roles"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
