// Package config loads the suite's single config file (YAML or JSON) into
// typed values, strictly: an unknown key, a wrong type or an invalid value
// is an error that names the file, line and key path. Every daemon reads the
// shared parts (version, site, admin, state_dir, log) and its own section.
package config

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/homeedge/edge/internal/suite"
	"gopkg.in/yaml.v3"
)

// Version is the config file format this build reads.
const Version = 1

// DefaultShutdownTimeout bounds a graceful stop unless a section says
// otherwise.
const DefaultShutdownTimeout = Duration(10 * time.Second)

// DefaultPath is where daemons look for the config without -config.
const DefaultPath = "/etc/edge/edge.yaml"

// Sections are the daemon sections of the file. A daemon decodes its own
// section strictly and leaves the others to their owners.
var Sections = suite.Daemons

// Shared is the part of the file that every daemon reads.
type Shared struct {
	Version  int    `yaml:"version"`
	Site     Site   `yaml:"site"`
	Admin    Admin  `yaml:"admin"`
	StateDir string `yaml:"state_dir"`
	Log      Log    `yaml:"log"`
}

// Site describes the network the suite serves; its names are the contract
// between the daemons, the NixOS modules and the fleet generator.
type Site struct {
	// Domain is the public zone served authoritatively, such as example.net.
	Domain string `yaml:"domain"`
	// LocalDomain holds inside-only names, such as home.arpa.
	LocalDomain string `yaml:"local_domain"`
	// Interfaces maps roles (wan, lan, ...) to interface names.
	Interfaces map[string]string `yaml:"interfaces"`
	// Networks names prefixes that the rest of the file refers to.
	Networks map[string][]netip.Prefix `yaml:"networks"`
}

// Admin configures the admin sockets.
type Admin struct {
	SocketDir string `yaml:"socket_dir"`
	// Group owns the sockets; its members may change things.
	Group string `yaml:"group"`
	// WorldReadable makes the sockets 0666 instead of 0660, so that every
	// local user may read status; changes still need root or Group.
	WorldReadable bool `yaml:"world_readable"`
}

// SocketMode is the file mode of the admin sockets.
func (a Admin) SocketMode() os.FileMode {
	if a.WorldReadable {
		return 0o666
	}
	return 0o660
}

// Log configures logging for every daemon.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Common is embedded (`yaml:",inline"`) in every daemon section for the
// settings the daemon runner itself uses.
type Common struct {
	Metrics Metrics `yaml:"metrics"`
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// CommonConfig returns c, so that any section embedding Common satisfies
// HasCommon.
func (c *Common) CommonConfig() *Common { return c }

// HasCommon is implemented by daemon sections that embed Common.
type HasCommon interface {
	CommonConfig() *Common
}

// Metrics configures a daemon's metrics and health listener.
type Metrics struct {
	// Listen is a TCP address such as 127.0.0.1:9710; "off" disables it.
	Listen string `yaml:"listen"`
}

// Validator is implemented by a daemon's section type. Validate reports
// every problem through c, naming the key path relative to the section.
type Validator interface {
	Validate(c *Checker)
}

// File is a loaded config: the shared part and one daemon's section.
type File[T any] struct {
	Shared
	// Section is the daemon's own section.
	Section T
	// Name is the daemon section's key, such as "dns".
	Name string
	// Path is the file it was read from.
	Path string
	// Pos maps key paths to where they were set in the file.
	Pos map[string]Pos
}

// SetDefaults fills in the shared defaults.
func (s *Shared) SetDefaults() {
	s.Admin = Admin{SocketDir: "/run/edge", Group: "edge"}
	s.StateDir = "/var/lib/edge"
	s.Log = Log{Level: "info", Format: "text"}
}

// Load reads path and decodes the shared part and the section named
// section into a new File. def, when non-nil, returns the section's
// defaults. The error, if any, is an Errors listing every problem found.
func Load[T any](path, section string, def func() T) (*File[T], error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("read config: %v", osErrText(err))}}
	}
	return Parse(data, path, section, def)
}

// Parse is Load for data already read; name is used in error messages.
func Parse[T any](data []byte, name, section string, def func() T) (*File[T], error) {
	f := &File[T]{Name: section, Path: name}
	f.Shared.SetDefaults()
	if def != nil {
		f.Section = def()
	}
	if hc, ok := any(&f.Section).(HasCommon); ok && hc.CommonConfig().ShutdownTimeout == 0 {
		hc.CommonConfig().ShutdownTimeout = DefaultShutdownTimeout
	}
	d := newDecoder(filepath.Base(name))
	top, err := readDocument(data, d.file)
	if err != nil {
		return nil, err
	}
	for top.Kind == yaml.AliasNode {
		top = top.Alias
	}
	if top.Kind != yaml.MappingNode {
		return nil, Errors{{File: d.file, Line: top.Line, Column: top.Column, Msg: "the config must be a mapping with version: 1 at the top"}}
	}

	sharedFields := structFields(reflect.TypeFor[Shared]())
	known := append(append([]string(nil), sharedFields.names...), Sections...)
	if !contains(known, section) {
		known = append(known, section)
	}
	sort.Strings(known)
	var versionNode *yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key := k.Value
		if line, dup := seen[key]; dup {
			d.errorf(k, key, "duplicate key (first set on line %d)", line)
			continue
		}
		seen[key] = k.Line
		switch {
		case key == section:
			d.decode(v, reflect.ValueOf(&f.Section).Elem(), key)
		case sharedFields.byName[key] != nil:
			if key == "version" {
				versionNode = v
			}
			d.decode(v, reflect.ValueOf(&f.Shared).Elem().FieldByIndex(sharedFields.byName[key]), key)
		case contains(Sections, key):
			// Another daemon's section: its owner checks it. It must
			// still be a mapping, so that a stray scalar is caught.
			if v.Kind != yaml.MappingNode && !isNull(v) {
				d.errorf(v, key, "expected a mapping, got %s", describeNode(v))
			}
		default:
			d.errorf(k, key, "unknown key %q%s", key, suggest(key, known))
		}
	}
	switch {
	case versionNode == nil:
		d.errorf(top, "version", "missing; put \"version: %d\" at the top of the file", Version)
	case f.Version != Version && len(d.errs) == 0:
		d.errorf(versionNode, "version", "unsupported version %d; this build reads version %d", f.Version, Version)
	}
	f.Pos = d.pos
	if len(d.errs) > 0 {
		return nil, d.errs
	}

	c := &Checker{file: d.file, pos: d.pos, site: &f.Site}
	f.Shared.validate(c)
	for _, r := range d.refs {
		if err := r.ref.check(&f.Site); err != nil {
			c.at(r.path).Errorf("%v", err)
		}
	}
	if v, ok := any(&f.Section).(Validator); ok {
		v.Validate(c.Key(section))
	}
	if hc, ok := any(&f.Section).(HasCommon); ok {
		hc.CommonConfig().validate(c.Key(section))
	}
	if len(*c.errs()) > 0 {
		errs := *c.errs()
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return f, nil
}

// Normalized renders the loaded file as YAML with every default filled in:
// what -check prints.
func (f *File[T]) Normalized() ([]byte, error) {
	doc := yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v any) error {
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			return fmt.Errorf("render %s: %w", key, err)
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &n)
		return nil
	}
	for _, kv := range []struct {
		k string
		v any
	}{{"version", f.Version}, {"site", f.Site}, {"admin", f.Admin}, {"state_dir", f.StateDir}, {"log", f.Log}, {f.Name, f.Section}} {
		if err := add(kv.k, kv.v); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrorAt returns an error at a key path of the file (such as
// "firewall.sets.blocklist.file"), placed on the line where that key, or
// its nearest parent, was set: for problems found after loading, such as
// a file a key names.
func (f *File[T]) ErrorAt(path, format string, args ...any) *Error {
	e := &Error{File: filepath.Base(f.Path), Path: path, Msg: fmt.Sprintf(format, args...)}
	if f.Path == "" {
		e.File = ""
	}
	e.Line, e.Column = locate(f.Pos, path)
	return e
}

// StateDirFor is the directory of daemon's run-time state.
func (s *Shared) StateDirFor(daemon string) string {
	return filepath.Join(s.StateDir, daemon)
}

// SocketPath is the admin socket of daemon.
func (s *Shared) SocketPath(daemon string) string {
	return filepath.Join(s.Admin.SocketDir, daemon+".sock")
}

func (s *Shared) validate(c *Checker) {
	site := c.Key("site")
	checkDomain(site.Key("domain"), s.Site.Domain, true)
	checkDomain(site.Key("local_domain"), s.Site.LocalDomain, true)
	for role, name := range s.Site.Interfaces {
		if err := checkIfName(name); err != nil {
			site.Key("interfaces").Key(role).Errorf("%v", err)
		}
	}
	type owned struct {
		p    netip.Prefix
		path string
	}
	var all []owned
	for _, name := range slices.Sorted(maps.Keys(s.Site.Networks)) {
		nc := site.Key("networks").Key(name)
		if !ValidName(name) {
			nc.Errorf("network names use lowercase letters, digits, - and _, starting with a letter")
		}
		if len(s.Site.Networks[name]) == 0 {
			nc.Errorf("network has no prefixes")
		}
		for i, p := range s.Site.Networks[name] {
			pc := nc.Index(i)
			if !p.IsValid() {
				pc.Errorf("empty prefix; write one such as 192.168.1.0/24")
				continue
			}
			if p != p.Masked() {
				pc.Errorf("prefix %s has host bits set; did you mean %s?", p, p.Masked())
				continue
			}
			for _, o := range all {
				if o.p.Overlaps(p) {
					pc.Errorf("prefix %s overlaps %s at %s", p, o.p, o.path)
				}
			}
			all = append(all, owned{p, pc.path})
		}
	}
	if !filepath.IsAbs(s.StateDir) {
		c.Key("state_dir").Errorf("must be an absolute path, got %q", s.StateDir)
	}
	if !filepath.IsAbs(s.Admin.SocketDir) {
		c.Key("admin").Key("socket_dir").Errorf("must be an absolute path, got %q", s.Admin.SocketDir)
	}
	if s.Admin.Group != "" && !validGroupName(s.Admin.Group) {
		c.Key("admin").Key("group").Errorf("invalid group name %q", s.Admin.Group)
	}
	if _, err := ParseLevel(s.Log.Level); err != nil {
		c.Key("log").Key("level").Errorf("%v", err)
	}
	if s.Log.Format != "text" && s.Log.Format != "json" {
		c.Key("log").Key("format").Errorf("unknown format %q; use text or json", s.Log.Format)
	}
}

func (m *Common) validate(c *Checker) {
	if l := m.Metrics.Listen; l != "" && l != "off" {
		if _, err := netip.ParseAddrPort(l); err != nil {
			c.Key("metrics").Key("listen").Errorf("invalid address %q; write host:port such as 127.0.0.1:9710, or off", l)
		}
	}
	if m.ShutdownTimeout.D() <= 0 {
		c.Key("shutdown_timeout").Errorf("must be positive")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func osErrText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: ...") into an
// Error with the line filled in.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: file}
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		e.Line, e.Column = line, 1
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	e.Msg = "syntax error: " + msg
	return e
}
