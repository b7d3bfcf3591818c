package engine

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// checkNames makes every playbook whose name an earlier one among plans
// already has an error naming both files and lines: a playbook is deployed,
// enrolled into and reported on by its name, so two files with one name
// would replace each other. The later file's plan is dropped.
func checkNames(files []string, plans []*Plan, errs []error) {
	first := map[string]int{}
	for i, p := range plans {
		if p == nil || errs[i] != nil {
			continue
		}
		j, dup := first[p.Name]
		if !dup {
			first[p.Name] = i
			continue
		}
		line, col := namePos(p.Source)
		otherLine, otherCol := namePos(plans[j].Source)
		errs[i] = Diagnostics{{
			File: files[i], Line: line, Col: col,
			Msg: fmt.Sprintf("playbook: the name %q is already used by %s:%d:%d; give each playbook its own name", p.Name, files[j], otherLine, otherCol),
		}}
		plans[i] = nil
	}
}

// namePos is the position of the value of the top-level playbook: key of a
// playbook that compiled (so it has one), or 1:1 if it cannot be found.
func namePos(src []byte) (int, int) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) == 0 {
		return 1, 1
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "playbook" {
			v := root.Content[i+1]
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return max(v.Line, 1), max(v.Column, 1)
		}
	}
	return 1, 1
}
