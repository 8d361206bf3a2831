package config

import (
	"fmt"
	"log/slog"
	"strings"
)

// Checker collects validation errors for one file, each placed at a key
// path. Keys and indexes make child checkers: c.Key("zones").Index(0).
type Checker struct {
	file string
	path string
	pos  map[string]Pos
	site *Site
	list *Errors
}

func (c *Checker) errs() *Errors {
	if c.list == nil {
		c.list = new(Errors)
	}
	return c.list
}

// Site is the file's site section, for checks that resolve names.
func (c *Checker) Site() *Site { return c.site }

// Key returns a checker for the child key.
func (c *Checker) Key(name string) *Checker {
	return c.at(joinPath(c.path, name))
}

// Path returns a checker for a relative key path such as
// "zones[0].records[2]", for errors found by code that names paths itself.
func (c *Checker) Path(rel string) *Checker {
	if strings.HasPrefix(rel, "[") {
		return c.at(c.path + rel)
	}
	return c.at(joinPath(c.path, rel))
}

// Index returns a checker for the i-th list item.
func (c *Checker) Index(i int) *Checker {
	return c.at(fmt.Sprintf("%s[%d]", c.path, i))
}

func (c *Checker) at(path string) *Checker {
	c.errs()
	return &Checker{file: c.file, path: path, pos: c.pos, site: c.site, list: c.list}
}

// Errorf records an error at c's path. The line is where the key was set,
// or where its nearest parent was when the key was left to its default.
func (c *Checker) Errorf(format string, args ...any) {
	e := &Error{File: c.file, Path: c.path, Msg: fmt.Sprintf(format, args...)}
	e.Line, e.Column = locate(c.pos, c.path)
	*c.errs() = append(*c.errs(), e)
}

// locate returns where path was set, or where its nearest parent was when
// the key was left to its default; 0, 0 when neither was.
func locate(pos map[string]Pos, path string) (line, column int) {
	for p := path; ; {
		if at, ok := pos[p]; ok {
			return at.Line, at.Column
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return 0, 0
		}
		p = p[:i]
	}
}

// Failed reports whether any error was recorded so far.
func (c *Checker) Failed() bool { return len(*c.errs()) > 0 }

// ParseLevel reads a log level name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q; use debug, info, warn or error", s)
}

// checkDomain checks a DNS name written in the config. Non-ASCII names must
// be written in their punycode (xn--) form.
func checkDomain(c *Checker, name string, optional bool) {
	if name == "" {
		if !optional {
			c.Errorf("required")
		}
		return
	}
	if err := CheckDomainName(name); err != nil {
		c.Errorf("%v", err)
	}
}

// CheckDomainName reports what is wrong with a DNS name, or nil.
func CheckDomainName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return fmt.Errorf("empty domain name")
	}
	if len(n) > 253 {
		return fmt.Errorf("domain name %q is longer than 253 characters", name)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" {
			return fmt.Errorf("domain name %q has an empty label", name)
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q of %q is longer than 63 characters", label, name)
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			switch {
			case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '_':
			case ch == '-':
				if i == 0 || i == len(label)-1 {
					return fmt.Errorf("label %q of %q starts or ends with '-'", label, name)
				}
			case ch >= 0x80:
				return fmt.Errorf("domain name %q is not ASCII; write it in punycode (xn--...)", name)
			default:
				return fmt.Errorf("domain name %q has the character %q; use letters, digits and '-'", name, ch)
			}
		}
	}
	return nil
}

func checkIfName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("interface name %q must be 1 to 15 characters", name)
	}
	if strings.ContainsAny(name, "/: \t\n") || name == "." || name == ".." {
		return fmt.Errorf("invalid interface name %q", name)
	}
	return nil
}

// ValidName reports whether s is a name as the config writes them (of
// networks, zones, rules): lowercase letters, digits, - and _, starting
// with a letter.
func ValidName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

func validGroupName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return false
		}
	}
	return true
}
