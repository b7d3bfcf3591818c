//go:build !linux

package main

import (
	"context"
	"errors"
)

// cpuSplit is -server-cpus, which needs Linux (sched_setaffinity).
type cpuSplit struct{}

var errPinLinux = errors.New("needs Linux")

func parseServerCPUs(string) (cpuSplit, error) { return cpuSplit{}, errPinLinux }
func (cpuSplit) pinBench(context.Context, string) (restore func(), err error) {
	return nil, errPinLinux
}
func (cpuSplit) pinServer(int) error { return errPinLinux }
