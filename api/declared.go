package api

import (
	"sync/atomic"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Incoming custom data is checked against the workspace declaration
// (engine.Workspace), the same one validate checks rules against: a
// declared trait or property must hold a value of its declared type, or
// the call is refused with 400 naming the field, before anything of it (or
// of its batch) is stored. A number sent as text ("120.5") is stored as a
// number. Traits, properties and events the declaration does not name are
// stored as before: sources send more than playbooks read, and a rule
// cannot read an undeclared one anyway (validate refuses it).

// LiveWorkspace is the declaration the server checks calls against; serve
// replaces it when it reloads. Its zero value holds none.
type LiveWorkspace struct {
	ws atomic.Pointer[engine.Workspace]
}

// Set replaces the declaration (nil: none).
func (l *LiveWorkspace) Set(ws *engine.Workspace) { l.ws.Store(ws) }

// Get is the current declaration, nil when there is none.
func (l *LiveWorkspace) Get() *engine.Workspace {
	if l == nil {
		return nil
	}
	return l.ws.Load()
}

// declaredValues returns values with each declared one read as its type
// (rules.ParseDeclared); decl nil or a null value leaves it as sent. path
// names the object in errors (batch[2].traits).
func declaredValues(decl map[string]rules.Type, values map[string]any, path string) (map[string]any, error) {
	if decl == nil || len(values) == 0 {
		return values, nil
	}
	out := make(map[string]any, len(values))
	for _, k := range sortedKeys(values) {
		v := values[k]
		if t, ok := decl[k]; ok && v != nil {
			got, err := rules.ParseDeclared(t, v)
			if err != nil {
				return nil, fieldErr(join(path, k), "%v", err)
			}
			v = got
		}
		out[k] = v
	}
	return out, nil
}

// declaredProps is the declared props of event name, nil when events or
// this event are not declared.
func declaredProps(ws *engine.Workspace, name string) map[string]rules.Type {
	if ws == nil || ws.Events == nil {
		return nil
	}
	return ws.Events[name]
}

// declaredAttrs is the declared attrs, nil when none are.
func declaredAttrs(ws *engine.Workspace) map[string]rules.Type {
	if ws == nil {
		return nil
	}
	return ws.Attrs
}
