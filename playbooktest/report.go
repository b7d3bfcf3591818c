package playbooktest

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// WriteCase prints one case as go test does: "--- FAIL: playbook/case
// (0.01s)" and, indented under it, each failed expectation at its line of
// the test file with what was wanted and what happened. A passing case is
// printed only when verbose ("--- PASS: …").
func WriteCase(w io.Writer, r Result, verbose bool) {
	if r.Pass() && !verbose {
		return
	}
	word := "PASS"
	if !r.Pass() {
		word = "FAIL"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s: %s/%s (%.2fs)\n", word, r.Playbook, r.Case, r.Elapsed.Seconds())
	base := filepath.Base(r.File)
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "    %s:%d: %s\n", base, f.Line, f.Msg)
		if f.Context != "" {
			fmt.Fprintf(&b, "        %s\n", f.Context)
		}
	}
	io.WriteString(w, b.String())
}

// WriteSummary prints the closing line of a test file, as go test does
// for a package: "ok  \tpath\t0.52s" or "FAIL\tpath\t0.52s".
func WriteSummary(w io.Writer, path string, results []Result, elapsed time.Duration) {
	word := "ok  "
	for _, r := range results {
		if !r.Pass() {
			word = "FAIL"
		}
	}
	fmt.Fprintf(w, "%s\t%s\t%.2fs\n", word, path, elapsed.Seconds())
}

// WriteSetupFailure prints a test file that could not run (it does not
// parse, or its playbook does not compile): the problems, then
// "FAIL\tpath [setup failed]" as go test prints a package that does not
// build.
func WriteSetupFailure(w io.Writer, path string, err error) {
	fmt.Fprintf(w, "%v\nFAIL\t%s [setup failed]\n", err, path)
}

// jsonCase is the --json form of one case.
type jsonCase struct {
	File     string    `json:"file"`
	Playbook string    `json:"playbook,omitempty"`
	Case     string    `json:"case,omitempty"`
	Line     int       `json:"line,omitempty"`
	Pass     bool      `json:"pass"`
	Elapsed  float64   `json:"elapsed"` // seconds
	Failures []Failure `json:"failures,omitempty"`
	Error    string    `json:"error,omitempty"` // a file that could not run
}

// WriteJSON prints one case as one JSON object on one line.
func WriteJSON(w io.Writer, r Result) error {
	return writeJSONLine(w, jsonCase{File: r.File, Playbook: r.Playbook, Case: r.Case, Line: r.Line,
		Pass: r.Pass(), Elapsed: r.Elapsed.Seconds(), Failures: r.Failures})
}

// WriteJSONSetupFailure prints a test file that could not run as one
// JSON object with its error.
func WriteJSONSetupFailure(w io.Writer, path string, err error) error {
	return writeJSONLine(w, jsonCase{File: path, Error: err.Error()})
}

func writeJSONLine(w io.Writer, v jsonCase) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", v.File, err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
