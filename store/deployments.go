package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file keeps the deployed playbook versions (table playbook_versions)
// for `rapport deploy`, the worker and the scan workflow. A version is the
// content hash of the playbook source, so storing the same file twice
// writes nothing.

// DeployedPlaybook is one stored playbook version.
type DeployedPlaybook struct {
	Name       string
	Version    string
	Source     []byte
	DeployedAt time.Time
	Active     bool
}

// DeployResult says what DeployPlaybook changed.
type DeployResult struct {
	// Stored is true when this version was not in the table before.
	Stored bool
	// Activated is true when the version was not already the active one.
	Activated bool
	// Previous is the version that was active before, "" if none.
	Previous string
}

// DeployPlaybook stores a compiled version (if new) and makes it the
// active version of its playbook, in one transaction: the playbook row is
// locked, so concurrent deploys of one playbook serialise and the
// one-active-version index always holds.
func (s *Store) DeployPlaybook(ctx context.Context, name, version string, source []byte) (DeployResult, error) {
	var res DeployResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('rapport-deploy/' || $1))`, name); err != nil {
			return fmt.Errorf("lock playbook: %w", err)
		}
		err := tx.QueryRow(ctx, `SELECT version FROM playbook_versions WHERE name = $1 AND active`, name).Scan(&res.Previous)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read active version: %w", err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO playbook_versions (name, version, source) VALUES ($1, $2, $3)
			ON CONFLICT (name, version) DO NOTHING`, name, version, string(source))
		if err != nil {
			return fmt.Errorf("store version: %w", err)
		}
		res.Stored = tag.RowsAffected() == 1
		if res.Previous == version {
			return nil
		}
		res.Activated = true
		if _, err := tx.Exec(ctx, `UPDATE playbook_versions SET active = false WHERE name = $1 AND active`, name); err != nil {
			return fmt.Errorf("deactivate %s: %w", res.Previous, err)
		}
		_, err = tx.Exec(ctx, `UPDATE playbook_versions SET active = true, deployed_at = now() WHERE name = $1 AND version = $2`, name, version)
		if err != nil {
			return fmt.Errorf("activate: %w", err)
		}
		return nil
	})
	if err != nil {
		return DeployResult{}, fmt.Errorf("deploy playbook %s@%s: %w", name, version, err)
	}
	return res, nil
}

// UndeployPlaybook marks the playbook's active version inactive; it
// reports whether there was one. Stored versions stay, so in-flight
// enrollments (which carry their source) and reports are unaffected.
func (s *Store) UndeployPlaybook(ctx context.Context, name string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE playbook_versions SET active = false WHERE name = $1 AND active`, name)
	if err != nil {
		return false, fmt.Errorf("undeploy playbook %s: %w", name, err)
	}
	return tag.RowsAffected() > 0, nil
}

// DeployedPlaybooks lists the active version of every deployed playbook,
// by name.
func (s *Store) DeployedPlaybooks(ctx context.Context) ([]DeployedPlaybook, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, version, source, COALESCE(deployed_at, compiled_at), active
		FROM playbook_versions WHERE active ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list deployed playbooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDeployed)
	if err != nil {
		return nil, fmt.Errorf("list deployed playbooks: %w", err)
	}
	return out, nil
}

// ActivePlaybook returns the active version of name; ok is false when the
// playbook is not deployed (or was undeployed).
func (s *Store) ActivePlaybook(ctx context.Context, name string) (p DeployedPlaybook, ok bool, err error) {
	rows, err := s.pool.Query(ctx, `SELECT name, version, source, COALESCE(deployed_at, compiled_at), active
		FROM playbook_versions WHERE name = $1 AND active`, name)
	if err != nil {
		return p, false, fmt.Errorf("read active playbook %s: %w", name, err)
	}
	p, err = pgx.CollectExactlyOneRow(rows, scanDeployed)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read active playbook %s: %w", name, err)
	}
	return p, true, nil
}

func scanDeployed(row pgx.CollectableRow) (DeployedPlaybook, error) {
	var p DeployedPlaybook
	var src string
	err := row.Scan(&p.Name, &p.Version, &src, &p.DeployedAt, &p.Active)
	p.Source = []byte(src)
	return p, err
}
