//go:build !faults

package faults

// fullTag is false without -tags faults; RAPPORT_FAULTS=full also selects
// the full run.
const fullTag = false
