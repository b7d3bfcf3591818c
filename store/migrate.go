package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationFiles are the schema migrations, applied in file-name order by
// goose. A migration, once released, is never edited: add a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationState is one migration and whether it is applied.
type MigrationState struct {
	Version   int64
	File      string
	Applied   bool
	AppliedAt time.Time
}

// Migrate applies every pending migration to the database at databaseURL.
// Concurrent callers (several workers starting at once) are serialised by
// a PostgreSQL advisory lock, so each migration runs once.
func Migrate(ctx context.Context, databaseURL string) error {
	return withMigrations(ctx, databaseURL, func(p *goose.Provider) error {
		_, err := p.Up(ctx)
		return err
	})
}

// MigrateDB is Migrate for an already open *sql.DB (pgx stdlib driver).
func MigrateDB(ctx context.Context, db *sql.DB) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back the most recent applied migration.
func MigrateDown(ctx context.Context, databaseURL string) error {
	return withMigrations(ctx, databaseURL, func(p *goose.Provider) error {
		_, err := p.Down(ctx)
		return err
	})
}

// MigrateDownTo rolls back every applied migration above version, so a
// test of one migration does not depend on how many came after it.
func MigrateDownTo(ctx context.Context, databaseURL string, version int64) error {
	return withMigrations(ctx, databaseURL, func(p *goose.Provider) error {
		_, err := p.DownTo(ctx, version)
		return err
	})
}

// MigrationStatus lists every known migration and whether it is applied.
func MigrationStatus(ctx context.Context, databaseURL string) ([]MigrationState, error) {
	var out []MigrationState
	err := withMigrations(ctx, databaseURL, func(p *goose.Provider) error {
		st, err := p.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			out = append(out, MigrationState{
				Version:   s.Source.Version,
				File:      s.Source.Path,
				Applied:   s.State == goose.StateApplied,
				AppliedAt: s.AppliedAt,
			})
		}
		return nil
	})
	return out, err
}

func withMigrations(ctx context.Context, databaseURL string, fn func(*goose.Provider) error) error {
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return fmt.Errorf("migrate: open database: %w", err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("migrate: connect to database: %w", err)
	}
	p, err := provider(db)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := fn(p); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func provider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrate: load migrations: %w", err)
	}
	return p, nil
}

// The pgx stdlib driver registers itself as "pgx"; referencing the package
// keeps the import explicit.
var _ = stdlib.GetDefaultDriver
