package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the work one decode may do, so that a file built from
// nested YAML aliases ("billion laughs") is an error, not a hang.
const maxNodes = 1 << 20

// Pos is a place in a config file.
type Pos struct{ Line, Column int }

// Defaulter is implemented by config structs that fill in their defaults.
// The decoder calls SetDefaults on every value it creates (slice elements,
// map values, pointers) before decoding into it; top-level sections are
// defaulted by their owner before Load.
type Defaulter interface {
	SetDefaults()
}

// decoder turns a yaml.Node tree into typed Go values, strictly: unknown
// keys, duplicate keys, wrong types and unparsable values are errors that
// name the key path and line. It keeps going after an error so that one
// pass reports everything.
type decoder struct {
	file  string
	errs  Errors
	pos   map[string]Pos
	refs  []netRefAt
	nodes int
}

type netRefAt struct {
	path string
	ref  NetRef
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	defaulterType       = reflect.TypeFor[Defaulter]()
	netRefType          = reflect.TypeFor[NetRef]()
)

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: make(map[string]Pos)}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// decode decodes n into v (which must be settable) at path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.nodes++
	if d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.errorf(n, path, "document too large or too deeply aliased (more than %d values)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		d.decode(n.Content[0], v, path)
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = Pos{n.Line, n.Column}
	}
	if isNull(n) {
		// An empty value keeps the default; a pointer becomes nil.
		if v.Kind() == reflect.Pointer || v.Kind() == reflect.Map || v.Kind() == reflect.Slice {
			v.Set(reflect.Zero(v.Type()))
		}
		return
	}

	if v.Kind() == reflect.Pointer {
		elem := reflect.New(v.Type().Elem())
		setDefaults(elem)
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
		return
	}

	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected %s, got %s", describeType(v.Type()), describeNode(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "invalid value %q: %v", n.Value, err)
		}
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.errorf(n, path, "expected a string, got %s%s", describeNode(n), quoteHint(n))
			return
		}
		v.SetString(n.Value)
		if v.Type() == netRefType {
			d.refs = append(d.refs, netRefAt{path, NetRef(n.Value)})
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "expected true or false, got %s", describeNode(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n, path, "expected an integer, got %s", describeNode(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.errorf(n, path, "integer %s out of range for this key", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n, path, "expected a non-negative integer, got %s", describeNode(n))
			return
		}
		u, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.errorf(n, path, "integer %s out of range for this key (0 to %d)", n.Value, uint64(math.MaxUint64)>>(64-v.Type().Bits()))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!float" && tag != "!!int") {
			d.errorf(n, path, "expected a number, got %s", describeNode(n))
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, "invalid number %s", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// A config type the decoder cannot fill is a programming error in
		// edge, not the user's; say so plainly.
		d.errorf(n, path, "internal error: cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping (key: value lines), got %s", describeNode(n))
		return
	}
	fields := structFields(v.Type())
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, got %s", describeNode(k))
			continue
		}
		if k.Value == "<<" {
			d.errorf(k, path, "merge keys (<<) are not supported; repeat the keys or use an alias for the whole value")
			continue
		}
		kp := joinPath(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.errorf(k, kp, "duplicate key (first set on line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		f, ok := fields.byName[k.Value]
		if !ok {
			d.errorf(k, kp, "unknown key %q%s", k.Value, suggest(k.Value, fields.names))
			continue
		}
		d.decode(val, v.FieldByIndex(f), kp)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping (name: value lines), got %s", describeNode(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n, path, "internal error: map key type %s", v.Type().Key())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, got %s", describeNode(k))
			continue
		}
		kp := joinPath(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.errorf(k, kp, "duplicate key (first set on line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		elem := reflect.New(v.Type().Elem())
		setDefaults(elem)
		d.decode(val, elem.Elem(), kp)
		key := reflect.New(v.Type().Key()).Elem()
		key.SetString(k.Value)
		v.SetMapIndex(key, elem.Elem())
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", describeNode(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elem := s.Index(i)
		setDefaults(elem.Addr())
		d.decode(item, elem, fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// setDefaults calls SetDefaults on p (a pointer) when its type has it.
func setDefaults(p reflect.Value) {
	if p.Type().Implements(defaulterType) {
		p.Interface().(Defaulter).SetDefaults()
	}
}

type fieldSet struct {
	byName map[string][]int
	names  []string
}

// structFields maps the yaml key names of t's fields, following embedded
// structs marked `yaml:",inline"`.
func structFields(t reflect.Type) fieldSet {
	fs := fieldSet{byName: make(map[string][]int)}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), index...), i)
			if opts == "inline" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			fs.byName[name] = idx
			fs.names = append(fs.names, name)
		}
	}
	walk(t, nil)
	sort.Strings(fs.names)
	return fs
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		case "!!null":
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected value"
}

func quoteHint(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		return fmt.Sprintf(" (write \"%s\" in quotes for text)", n.Value)
	}
	return ""
}

func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return "a duration such as 30s or 7d"
	}
	switch t.String() {
	case "netip.Prefix":
		return "a prefix such as 192.168.1.0/24"
	case "netip.Addr":
		return "an address such as 192.168.1.1"
	case "netip.AddrPort":
		return "an address:port such as 127.0.0.1:9710"
	}
	return "a single value"
}

// DidYouMean is " (did you mean "x"?)" for the known name closest to
// got, or "" when none is close: the hint every error about a name that
// does not exist ends with.
func DidYouMean(got string, known []string) string {
	if best, ok := Closest(got, known); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// suggest returns ` (did you mean "x"?)` for the closest known name, or a
// list of known names when nothing is close.
func suggest(got string, known []string) string {
	if hint := DidYouMean(got, known); hint != "" {
		return hint
	}
	if len(known) == 0 {
		return ""
	}
	return "; known keys: " + strings.Join(known, ", ")
}

// Closest returns the known name a mistyped one most likely meant: within
// two edits, or one that runs into the next ("loglevel" for "log").
func Closest(got string, known []string) (string, bool) {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(got, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		for _, k := range known {
			if len(k) >= 3 && (strings.HasPrefix(got, k) || strings.HasPrefix(k, got) && len(got) >= 3) {
				return k, true
			}
		}
	}
	return best, best != ""
}

// editDistance is the Levenshtein distance, capped for long input (a
// hostile config must not make suggestions quadratic in its size).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func quotedKeys[V any](m map[string]V) string {
	if len(m) == 0 {
		return "no networks"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, strconv.Quote(k))
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
