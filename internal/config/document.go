package config

import (
	"bytes"
	"path/filepath"
	"reflect"
	"sort"

	"gopkg.in/yaml.v3"
)

// Document decodes a whole YAML (or JSON) file into v, a pointer to a
// struct, with the rules of the suite's config: unknown and duplicate keys,
// wrong types and bad values are errors naming the key path and line, all
// of them in one pass, and an alias bomb is stopped. It is for files other
// than edge.yaml, such as edge-fleet's inventory. v should hold its
// defaults already. The returned Checker places the file's own validation
// errors at key paths from the top of the document; Err reports them.
func Document(data []byte, name string, v any) (*Checker, error) {
	d := newDecoder(filepath.Base(name))
	top, err := readDocument(data, d.file)
	if err != nil {
		return nil, err
	}
	d.decode(top, reflect.ValueOf(v).Elem(), "")
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return &Checker{file: d.file, pos: d.pos, site: &Site{}}, nil
}

// Err returns the errors recorded through c and the checkers made from
// it, sorted by line, or nil.
func (c *Checker) Err() error {
	if !c.Failed() {
		return nil
	}
	errs := append(Errors(nil), *c.errs()...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}

// readDocument parses the file's one YAML (or JSON) document and returns
// its top node.
func readDocument(data []byte, file string) (*yaml.Node, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, Errors{syntaxError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Msg: "more than one document in the file; keep one"}}
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) > 0 {
		top = top.Content[0]
	}
	return top, nil
}
