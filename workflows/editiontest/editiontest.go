// Package editiontest runs a package's tests with journeys started
// without an edition, the product's default, whatever the developer's
// shell sets: the edition changes the history a journey writes, which
// golden files and history checks count (docs/operators.md, "Editions").
package editiontest

import (
	"os"
	"testing"

	"github.com/rapport-crm/rapport/workflows"
)

// Main is a TestMain: it clears workflows.EditionEnv and runs m.
func Main(m *testing.M) {
	os.Unsetenv(workflows.EditionEnv)
	os.Exit(m.Run())
}
