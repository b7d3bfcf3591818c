package playbooktest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// TestsDir is the directory, beside the playbooks, that holds their tests.
const TestsDir = "tests"

// IsTestFile says whether path is a playbook test file: its name ends in
// _test.yaml or _test.yml, as Go's test files end in _test.go. `rapport
// validate` and `deploy` skip these when they search a directory, so tests
// can live under the playbooks without being taken for playbooks.
func IsTestFile(path string) bool {
	base := filepath.Base(path)
	return strings.HasSuffix(base, "_test.yaml") || strings.HasSuffix(base, "_test.yml")
}

// PlaybookDir is the directory of the playbooks a test file tests: the
// parent of a tests directory (playbooks/tests/x_test.yaml tests
// playbooks/), else the test file's own directory.
func PlaybookDir(testFile string) string {
	dir := filepath.Dir(testFile)
	if filepath.Base(dir) == TestsDir {
		return filepath.Dir(dir)
	}
	return dir
}

// Find expands the arguments of `rapport test` into test files: a test
// file is taken as given; a directory stands for the test files in it and
// in its tests directory. A directory without any is an error, so a typo
// in CI does not pass silently.
func Find(paths []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	for _, p := range paths {
		found, err := findIn(p)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			if key := filepath.Clean(f); !seen[key] {
				seen[key] = true
				files = append(files, f)
			}
		}
	}
	return files, nil
}

func findIn(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("test path: %w", err)
	}
	if !info.IsDir() {
		if !IsTestFile(path) {
			return nil, fmt.Errorf("%s is not a playbook test file (name it <playbook>_test.yaml, in %s beside the playbooks)", path, TestsDir)
		}
		return []string{path}, nil
	}
	var found []string
	for _, dir := range []string{path, filepath.Join(path, TestsDir)} {
		for _, pattern := range []string{"*_test.yaml", "*_test.yml"} {
			m, err := filepath.Glob(filepath.Join(dir, pattern))
			if err != nil {
				return nil, fmt.Errorf("search %s: %w", dir, err)
			}
			found = append(found, m...)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no playbook tests (*_test.yaml) in %s or %s", path, filepath.Join(path, TestsDir))
	}
	sort.Strings(found)
	return found, nil
}
