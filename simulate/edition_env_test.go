package simulate

import (
	"os"
	"testing"

	"github.com/rapport-crm/rapport/workflows"
)

// TestMain runs the tests with journeys started without an edition, the
// product's default, whatever the developer's shell sets: the edition
// changes the history a journey writes, which golden files and history
// checks count (docs/operators.md, "Editions").
func TestMain(m *testing.M) {
	os.Unsetenv(workflows.EditionEnv)
	os.Exit(m.Run())
}
