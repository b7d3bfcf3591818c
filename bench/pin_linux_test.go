package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPinPIDMovesEveryThread starts a process, pins it to one CPU, and
// reads back every thread's CPUs, as -server-cpus does to the dev server.
func TestPinPIDMovesEveryThread(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	first := -1
	for n := 0; first < 0; n++ {
		if all.IsSet(n) {
			first = n
		}
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	me := strconv.Itoa(os.Getpid())
	found := procs(func(comm, ppid string) bool { return ppid == me && comm == "sleep" })
	if len(found) != 1 || found[0].pid != cmd.Process.Pid {
		t.Fatalf("procs found %+v among this process's children, want the sleep, pid %d", found, cmd.Process.Pid)
	}
	var one unix.CPUSet
	one.Set(first)
	if err := pinPID(cmd.Process.Pid, one); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &got); err != nil {
			t.Fatal(err)
		}
		if got != one {
			t.Errorf("thread %d runs on CPUs %s after pinning, want %d", tid, cpuList(got), first)
		}
	}
}

func TestParseServerCPUs(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	cpus := strings.Split(cpuList(all), ",")
	if _, err := parseServerCPUs(strings.Join(cpus, ",")); err == nil || !strings.Contains(err.Error(), "leaves no CPU") {
		t.Errorf("every CPU for the server: err %v, want one saying none is left", err)
	}
	for _, bad := range []string{"x", "-1", "4096", ""} {
		if _, err := parseServerCPUs(bad); err == nil || !strings.Contains(err.Error(), "want numbers of the CPUs") {
			t.Errorf("%q: err %v, want one naming what is expected", bad, err)
		}
	}
	if len(cpus) < 2 {
		t.Skip("one CPU: nothing to split")
	}
	s, err := parseServerCPUs(cpus[0])
	if err != nil {
		t.Fatal(err)
	}
	if cpuList(s.server) != cpus[0] || cpuList(s.rest) != strings.Join(cpus[1:], ",") || s.all != all {
		t.Errorf("split of %s: server %s, rest %s; want %s and %s", cpus[0], cpuList(s.server), cpuList(s.rest), cpus[0], strings.Join(cpus[1:], ","))
	}
}

// TestPostmasterPID finds the local server's postmaster, the process
// -server-cpus moves with its children.
func TestPostmasterPID(t *testing.T) {
	base := envOr("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
	pid, err := postmasterPID(context.Background(), base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	parent := strconv.Itoa(pid)
	self := procs(func(comm, _ string) bool { return comm == "postgres" })
	var isPostmaster bool
	for _, p := range self {
		isPostmaster = isPostmaster || p.pid == pid
	}
	children := procs(func(comm, ppid string) bool { return comm == "postgres" && ppid == parent })
	if !isPostmaster || len(children) == 0 {
		t.Errorf("postmaster %d: a postgres process %v with %d postgres children, want one with its background workers", pid, isPostmaster, len(children))
	}
}
