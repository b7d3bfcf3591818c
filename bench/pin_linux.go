package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cpuSplit is -server-cpus: the CPUs the dev server runs on, and the
// others, where this process (worker, scan, clients) and PostgreSQL run.
// On one box it stands in for a deployment's separate machines: without
// it the three share every core, and each Go runtime's threads and
// PostgreSQL's backends contend for them (bench/README.md, -server-cpus).
type cpuSplit struct {
	server, rest, all unix.CPUSet
}

// parseServerCPUs reads a list of CPU numbers ("0", "0,2") out of those
// this process may run on; every other one of them is left for the rest.
func parseServerCPUs(spec string) (cpuSplit, error) {
	var s cpuSplit
	if err := unix.SchedGetaffinity(0, &s.all); err != nil {
		return s, fmt.Errorf("read this process's CPUs: %w", err)
	}
	s.rest = s.all
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || !s.all.IsSet(n) {
			return s, fmt.Errorf("CPU %q: want numbers of the CPUs this process may use (%s) separated by commas", f, cpuList(s.all))
		}
		s.server.Set(n)
		s.rest.Clear(n)
	}
	if s.rest.Count() == 0 {
		return s, fmt.Errorf("%s leaves no CPU for the bench process and PostgreSQL", spec)
	}
	return s, nil
}

// cpuList names set's CPUs: "0,1".
func cpuList(set unix.CPUSet) string {
	var names []string
	for n := 0; n < len(set)*64; n++ {
		if set.IsSet(n) {
			names = append(names, strconv.Itoa(n))
		}
	}
	return strings.Join(names, ",")
}

// pinSelf moves every thread of this process to s.rest, where the threads
// the runtime starts later inherit it, and sizes GOMAXPROCS to match.
func (s cpuSplit) pinSelf() error {
	if err := pinPID(os.Getpid(), s.rest); err != nil {
		return fmt.Errorf("pin this process to CPUs %s: %w", cpuList(s.rest), err)
	}
	runtime.GOMAXPROCS(s.rest.Count())
	return nil
}

// pinPostgres moves PostgreSQL's processes to set; new backends inherit
// the postmaster's. Moving processes of another user needs root (or
// CAP_SYS_NICE).
func pinPostgres(set unix.CPUSet) (int, error) {
	ps := procs(isPostgres)
	for _, p := range ps {
		if err := pinPID(p.pid, set); err != nil {
			return 0, fmt.Errorf("pin PostgreSQL process %d to CPUs %s (needs root or CAP_SYS_NICE): %w", p.pid, cpuList(set), err)
		}
	}
	return len(ps), nil
}

// pinPID moves every thread of process pid to set. A thread the process
// starts while the threads are being moved may inherit the old set from a
// thread not moved yet, so the threads are walked again until a walk
// finds every one of them moved.
func pinPID(pid int, set unix.CPUSet) error {
	for range 10 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		moved := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err != nil {
				continue // the thread has exited
			}
			if cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return err
			}
			moved++
		}
		if moved == 0 {
			return nil
		}
	}
	return fmt.Errorf("process %d kept starting threads on other CPUs", pid)
}

// pinBench moves this process and PostgreSQL to s.rest for the run and
// says so; restore gives PostgreSQL back every CPU this process could use.
func (s cpuSplit) pinBench() (restore func(), err error) {
	if err := s.pinSelf(); err != nil {
		return nil, err
	}
	n, err := pinPostgres(s.rest)
	restore = func() {
		if _, err := pinPostgres(s.all); err != nil {
			fmt.Fprintf(os.Stderr, "bench: give PostgreSQL back CPUs %s: %v\n", cpuList(s.all), err)
		}
	}
	if err != nil {
		restore()
		return nil, err
	}
	printMachine()
	fmt.Printf("pinned:  this process and PostgreSQL's %d processes on CPUs %s; a dev server the bench starts goes to CPUs %s\n",
		n, cpuList(s.rest), cpuList(s.server))
	return restore, nil
}

// pinServer moves the dev server the bench started, process pid, to
// s.server and says so.
func (s cpuSplit) pinServer(pid int) error {
	if err := pinPID(pid, s.server); err != nil {
		return fmt.Errorf("pin the dev server to CPUs %s: %w", cpuList(s.server), err)
	}
	fmt.Printf("pinned:  the dev server on CPUs %s\n", cpuList(s.server))
	return nil
}
