package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// WorkspaceFile is the name of the workspace declaration in a directory of
// playbooks. It declares the custom data playbooks read, so that a typo or a
// comparison of the wrong kind is found when a playbook is validated rather
// than when a journey runs; it is not a playbook.
const WorkspaceFile = "rapport.yaml"

// Workspace is a parsed workspace declaration:
//
//	attrs:
//	  balance: number
//	  favourite_category: text
//	events:
//	  purchase: { props: { sku: text, quantity: number } }
//	  survey_answered: {}
//
// A part that is not declared keeps the behaviour of a workspace without
// the file: Attrs nil allows any customer.attrs name, Events nil any event
// name and any event.props name.
type Workspace struct {
	File   string
	Attrs  map[string]rules.Type
	Events map[string]map[string]rules.Type
}

// workspaceKeys are the top-level keys of a workspace file.
var workspaceKeys = []string{"attrs", "events"}

// attrNameRe is a name a rule can read as customer.attrs.<name> or
// event.props.<name>; Segment traits are often camelCase (firstName).
var attrNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// LoadWorkspace reads the workspace file of the playbook directory dir. It
// returns nil and no error when there is none.
func LoadWorkspace(dir string) (*Workspace, error) {
	path := filepath.Join(dir, WorkspaceFile)
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read workspace file: %w", err)
	}
	return ParseWorkspace(path, src)
}

// IsWorkspaceFile reports whether path names a workspace file, which
// commands reading a directory of playbooks must not compile as one.
func IsWorkspaceFile(path string) bool { return filepath.Base(path) == WorkspaceFile }

// ParseWorkspace parses a workspace declaration; file is used in
// diagnostics. The error is Diagnostics, as Compile's.
func ParseWorkspace(file string, src []byte) (ws *Workspace, err error) {
	c := &compiler{file: file, lines: strings.Split(string(src), "\n")}
	defer func() {
		if r := recover(); r != nil {
			ws, err = nil, Diagnostics{{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("internal error reading the workspace file: %v", r)}}
		}
	}()
	ws = &Workspace{File: file}
	var doc yaml.Node
	switch {
	case len(src) > MaxSourceSize:
		c.errorAt(1, 1, fmt.Sprintf("workspace file is %d bytes; the limit is %d", len(src), MaxSourceSize))
	case yaml.Unmarshal(src, &doc) == nil && len(doc.Content) == 0:
		return ws, nil // an empty file (or only comments) declares nothing
	default:
		if root, ok := c.parseYAML(src); ok {
			c.workspace(ws, root)
		}
	}
	if len(c.diags) > 0 {
		return nil, sortDiagnostics(c.diags)
	}
	return ws, nil
}

// workspace reads the top level: attrs and events.
func (c *compiler) workspace(ws *Workspace, root *yaml.Node) {
	top, ok := c.mapping(root, "workspace file", "")
	if !ok {
		return
	}
	for name, f := range top {
		if !slices.Contains(workspaceKeys, name) {
			c.errorf(f.key, "unknown key %q in the workspace file; it declares attrs and events%s", name, didYouMean(name, workspaceKeys))
		}
	}
	if f, ok := top["attrs"]; ok {
		ws.Attrs = c.declaredTypes(f, "attrs")
	}
	if f, ok := top["events"]; ok {
		ws.Events = c.declaredEvents(f)
	}
}

// declaredTypes reads a mapping of name: type (attrs, or an event's props).
func (c *compiler) declaredTypes(f field, what string) map[string]rules.Type {
	out := map[string]rules.Type{}
	if n := c.deref(f.val); n != nil && n.ShortTag() == "!!null" {
		return out // attrs: with nothing under it declares none
	}
	m, ok := c.mapping(f.val, what, "")
	if !ok {
		return out
	}
	for name, tf := range m {
		if !attrNameRe.MatchString(name) {
			c.errorf(tf.key, "%s: %q is not a name a rule can read; use letters, digits and _ (like favourite_category)", what, truncate(name, 40))
			continue
		}
		if t, ok := c.enum(tf, rules.Types); ok {
			out[name] = rules.Type(t)
		}
	}
	return out
}

// declaredEvents reads events: name: { props: { … } }.
func (c *compiler) declaredEvents(f field) map[string]map[string]rules.Type {
	out := map[string]map[string]rules.Type{}
	if n := c.deref(f.val); n != nil && n.ShortTag() == "!!null" {
		return out
	}
	m, ok := c.mapping(f.val, "events", "")
	if !ok {
		return out
	}
	for name, ef := range m {
		if !wordRe.MatchString(name) {
			c.errorf(ef.key, "events: %s", notAnEventName(name))
			continue
		}
		out[name] = map[string]rules.Type{}
		if n := c.deref(ef.val); n == nil || n.ShortTag() == "!!null" {
			continue
		}
		em, ok := c.mapping(ef.val, "event "+name, "")
		if !ok {
			continue
		}
		for k, kf := range em {
			if k != "props" {
				c.errorf(kf.key, "unknown key %q in event %s; an event declares its props%s", k, name, didYouMean(k, []string{"props"}))
				continue
			}
			out[name] = c.declaredTypes(kf, "props")
		}
	}
	return out
}
