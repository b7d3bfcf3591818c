package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
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

// postmasterPID is the process id of the PostgreSQL server at dbBase,
// which must run on this machine: the parent of the backend serving a
// connection to it.
func postmasterPID(ctx context.Context, dbBase string) (int, error) {
	conn, err := pgx.Connect(ctx, dbBase+"/postgres?sslmode=disable")
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0, err
	}
	for _, p := range procs(isPostgres) {
		if p.pid == backend {
			return p.ppid, nil
		}
	}
	return 0, fmt.Errorf("its backend %d is no process of this machine: -server-cpus needs PostgreSQL on this machine", backend)
}

// pinPostgres moves the postmaster and every process it started to set;
// backends it starts later inherit its CPUs. A process that exits on
// the way is passed over; a failure to move one does not stop the
// others, and the first is returned.
func pinPostgres(postmaster int, set unix.CPUSet) (int, error) {
	parent := strconv.Itoa(postmaster)
	var firstErr error
	moved := 0
	for _, pid := range append([]int{postmaster}, pids(procs(func(_, ppid string) bool { return ppid == parent }))...) {
		err := pinPID(pid, set)
		switch {
		case err == nil:
			moved++
		case errors.Is(err, fs.ErrNotExist):
		case firstErr == nil && errors.Is(err, unix.EPERM):
			firstErr = fmt.Errorf("move PostgreSQL process %d to CPUs %s: %w (moving another user's processes needs root or CAP_SYS_NICE)", pid, cpuList(set), err)
		case firstErr == nil:
			firstErr = fmt.Errorf("move PostgreSQL process %d to CPUs %s: %w", pid, cpuList(set), err)
		}
	}
	return moved, firstErr
}

// pids are the process ids of ps.
func pids(ps []proc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.pid
	}
	return out
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

// pinBench moves PostgreSQL's processes (the server at dbBase) and then
// this process to s.rest for the run, and says so; restore gives
// PostgreSQL's processes every CPU this process could use at its start.
func (s cpuSplit) pinBench(ctx context.Context, dbBase string) (restore func(), err error) {
	postmaster, err := postmasterPID(ctx, dbBase)
	if err != nil {
		return nil, fmt.Errorf("-server-cpus: find PostgreSQL's processes: %w", err)
	}
	restore = func() {
		if _, err := pinPostgres(postmaster, s.all); err != nil {
			fmt.Fprintf(os.Stderr, "bench: -server-cpus: give PostgreSQL back CPUs %s: %v\n", cpuList(s.all), err)
		}
	}
	n, err := pinPostgres(postmaster, s.rest)
	if err == nil {
		err = s.pinSelf()
	}
	if err != nil {
		restore()
		return nil, fmt.Errorf("-server-cpus: %w", err)
	}
	printMachine()
	fmt.Printf("pinned:  this process and PostgreSQL's %d processes on CPUs %s; the dev server goes to CPUs %s\n",
		n, cpuList(s.rest), cpuList(s.server))
	return restore, nil
}

// pinServer moves the dev server the bench started, process pid, to
// s.server and says so.
func (s cpuSplit) pinServer(pid int) error {
	if err := pinPID(pid, s.server); err != nil {
		return fmt.Errorf("-server-cpus: move the dev server to CPUs %s: %w", cpuList(s.server), err)
	}
	fmt.Printf("pinned:  the dev server on CPUs %s\n", cpuList(s.server))
	return nil
}
