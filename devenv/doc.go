// Package devenv brings the whole of Rapport up on one machine for
// `rapport dev`, the end-to-end tests and the benchmarks: a Temporal dev
// server (reused when one answers, otherwise started from the temporal CLI),
// the PostgreSQL database, an in-process SMTP catcher whose mail can be read
// over HTTP, and demo customers and events.
package devenv
