package simulate

import (
	"os/exec"
	"strings"
	"testing"
)

// The simulator links the Temporal SDK's test suite; that is why it is a
// package of its own. The packages the worker and the API are built from
// must not link go.temporal.io/sdk/testsuite, and no Rapport package they
// link may import testify or gomock. (The SDK's internal package, which
// every user of its client and workflow packages links, imports
// testify/mock and gomock itself for its test environment, and tally
// imports gomock's model; those edges are the libraries', not ours.)
func TestProductionPackagesDoNotLinkTheTestSuite(t *testing.T) {
	mocks := []string{"github.com/stretchr/testify", "go.uber.org/mock", "github.com/golang/mock"}
	for _, pkg := range []string{"../worker", "../api", "../workflows", "../store", "../scan", "../activities"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 10 {
			t.Fatalf("go list -deps %s listed only %q", pkg, out)
		}
		for _, line := range lines {
			path, imports, _ := strings.Cut(line, "\t")
			if path == "go.temporal.io/sdk/testsuite" {
				t.Errorf("%s links go.temporal.io/sdk/testsuite: keep the SDK's test suite in package simulate", pkg)
			}
			if !strings.HasPrefix(path, "github.com/rapport-crm/rapport/") {
				continue // the SDK's and other libraries' own edges
			}
			for _, imp := range strings.Fields(imports) {
				if hasPrefix(imp, mocks) {
					t.Errorf("%s links %s through %s", pkg, imp, path)
				}
			}
		}
	}
}

func hasPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}
