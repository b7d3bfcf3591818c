package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rapport-crm/rapport/rules"
)

// Diagnostic is one problem in a playbook, located at a 1-based line and
// column (in characters) of the YAML file, so editors and CI logs can jump
// straight to it.
type Diagnostic struct {
	File string
	Line int
	Col  int
	Msg  string
}

// String formats the diagnostic the way compilers do: "file:line:col: msg".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Col, d.Msg)
}

// Diagnostics is every problem found in one playbook. It is an error so
// Compile can return all of them at once instead of stopping at the first.
type Diagnostics []Diagnostic

// Error lists every diagnostic, one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// sortDiagnostics orders by position and drops exact duplicates (the same
// problem can be reached through two paths, e.g. an alias).
func sortDiagnostics(ds Diagnostics) Diagnostics {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Col < ds[j].Col
	})
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// suggest and didYouMean share the rule language's typo suggestions, so a
// misspelt key and a misspelt field get the same kind of hint.
func suggest(word string, candidates []string) string { return rules.Suggest(word, candidates) }

func didYouMean(word string, candidates []string) string { return rules.DidYouMean(word, candidates) }
