package workflows

import (
	"os"
	"testing"
)

// TestMain does what editiontest.Main does for the other packages, which
// this package's tests cannot import (editiontest imports workflows).
func TestMain(m *testing.M) {
	os.Unsetenv(EditionEnv)
	os.Exit(m.Run())
}
