package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// proc is a running process as /proc/PID/stat describes it.
type proc struct {
	pid, ppid int
	ticks     int64 // CPU time used so far (user and system), in USER_HZ ticks
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
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, proc{pid: pid, ppid: ppid, ticks: u + s})
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
