package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/engine"
)

// workspaceFor loads the workspace declaration (engine.WorkspaceFile) that
// applies to the playbook paths: the one in a directory argument, or in
// the directory of a file argument. Without one it is nil (no checks).
// Paths from two directories with different declarations are refused
// rather than checked against one of them.
func workspaceFor(paths []string) (*engine.Workspace, error) {
	found := ""
	for _, p := range paths {
		dir := p
		if info, err := os.Stat(p); err == nil && !info.IsDir() {
			dir = filepath.Dir(p)
		}
		ws := filepath.Join(dir, engine.WorkspaceFile)
		if _, err := os.Stat(ws); err != nil {
			continue
		}
		if found != "" && filepath.Clean(found) != filepath.Clean(ws) {
			return nil, fmt.Errorf("playbooks of two workspaces (%s and %s); check them separately", found, ws)
		}
		found = ws
	}
	if found == "" {
		return nil, nil
	}
	return engine.LoadWorkspace(filepath.Dir(found))
}

// compileFileIn compiles one playbook against the workspace of its
// directory, as validate does.
func compileFileIn(path string) (*engine.Plan, error) {
	ws, err := workspaceFor([]string{path})
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read playbook: %w", err)
	}
	return engine.CompileIn(ws, path, src)
}

// reloadWorkspace reads serve's --workspace file into live; an empty path
// leaves no declaration. A file that does not parse is an error and live
// keeps what it had.
func reloadWorkspace(path string, live *api.LiveWorkspace) error {
	if path == "" {
		return nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--workspace: %w", err)
	}
	ws, err := engine.ParseWorkspace(path, src)
	if err != nil {
		return fmt.Errorf("--workspace %s:\n%w", path, err)
	}
	live.Set(ws)
	return nil
}
