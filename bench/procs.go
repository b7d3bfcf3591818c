package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// proc is a running process as /proc/PID/stat describes it.
type proc struct {
	pid   int
	ticks int64 // CPU time used so far (user and system), in USER_HZ ticks
}

// procs lists, from /proc, the running processes match accepts by command
// name and parent pid; none where there is no /proc.
func procs(match func(comm, ppid string) bool) []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime stime: fields 4, 14 and 15, counted
		// after the command name, which may hold spaces.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 13 || !match(string(b[open+1:end]), f[1]) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		out = append(out, proc{pid: pid, ticks: u + s})
	}
	return out
}

// procCPUTime sums the CPU time of the running processes match accepts.
func procCPUTime(match func(comm, ppid string) bool) time.Duration {
	var ticks int64
	for _, p := range procs(match) {
		ticks += p.ticks
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// childCPUTime is the CPU time used so far by the running processes this
// process started (the Temporal dev server, when the bench started one);
// 0 where there is no /proc.
func childCPUTime() time.Duration {
	me := strconv.Itoa(os.Getpid())
	return procCPUTime(func(_, ppid string) bool { return ppid == me })
}

// isPostgres picks the processes of the PostgreSQL server on this machine
// (postmaster, backends, background workers).
func isPostgres(comm, _ string) bool { return comm == "postgres" }

// postgresCPUTime is the CPU time used so far by the PostgreSQL server,
// which shares the cores with the bench and the dev server.
func postgresCPUTime() time.Duration { return procCPUTime(isPostgres) }

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
