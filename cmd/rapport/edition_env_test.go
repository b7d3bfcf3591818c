package main

import (
	"testing"

	"github.com/rapport-crm/rapport/workflows/editiontest"
)

// TestMain: see editiontest.
func TestMain(m *testing.M) { editiontest.Main(m) }
