//go:build faults

package faults

// fullTag selects the full fault run: go test -tags faults ./faults.
const fullTag = true
