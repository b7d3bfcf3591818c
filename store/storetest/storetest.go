// Package storetest gives each test its own freshly migrated PostgreSQL
// database, so store tests run in parallel without seeing each other's
// rows. The database is dropped when the test ends.
//
// The server is DATABASE_URL (default postgres://postgres@127.0.0.1:5432).
// When it cannot be reached the test is skipped with a message saying so,
// except under CI=true, where a missing database is a failure: CI must
// never pass by skipping the database tests.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/store"
)

// Secret is the unsubscribe secret of Config.
var Secret = []byte("storetest-unsubscribe-secret")

// PublicURL is the public URL of Config.
const PublicURL = "https://rapport.test"

// Config is a store configuration for tests: the default global cap (3 per
// 7 days).
func Config() store.Config {
	return store.DefaultConfig()
}

// Delivery is a delivery configuration for tests: every channel writing
// to a discarded log, a fixed unsubscribe secret and PublicURL. Each call
// returns a new channel set, so a test may replace a channel in it.
func Delivery() delivery.Config {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := delivery.Config{Channels: channels.Set{}, UnsubscribeSecret: Secret, PublicURL: PublicURL}
	for _, name := range []string{"email", "sms", "webhook"} {
		cfg.Channels[name] = &channels.Log{Name: name, Logger: log}
	}
	return cfg
}

// Activities are st's journey activities with Delivery's channels, as a
// worker registers them.
func Activities(st *store.Store) activities.All {
	return delivery.Activities(st, Delivery())
}

// New returns a Store with Config over a fresh database.
func New(t testing.TB) *store.Store {
	return NewWithConfig(t, Config())
}

// NewWithConfig returns a Store with cfg over a fresh database.
func NewWithConfig(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	dbURL := NewDB(t)
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	pc.MaxConns = 12 // enough for the concurrency tests' goroutines
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatalf("storetest: connect: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the database is dropped (LIFO)
	return store.New(pool, cfg)
}

// NewDB creates an empty database, applies the migrations and returns its
// URL; the database is dropped in t.Cleanup.
func NewDB(t testing.TB) string {
	t.Helper()
	dbURL := EmptyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("storetest: migrate: %v", err)
	}
	return dbURL
}

// EmptyDB creates an empty database (no migrations, for migration tests)
// and returns its URL; the database is dropped in t.Cleanup.
func EmptyDB(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := serverURL(t, "postgres")
	conn, err := connect(ctx, admin)
	if err != nil {
		unreachable(t, admin, err)
	}
	defer conn.Close(ctx)
	name := "rapport_test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		c, err := connect(context.Background(), admin)
		if err == nil {
			_, err = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
		if err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	return serverURL(t, name)
}

func connect(ctx context.Context, u string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.Connect(ctx, u)
}

// unreachable skips the test, or fails it under CI.
func unreachable(t testing.TB, u string, err error) {
	t.Helper()
	msg := "PostgreSQL is not reachable at " + redact(u) + " (set DATABASE_URL): " + err.Error()
	if os.Getenv("CI") == "true" {
		t.Fatal("storetest: " + msg + "; CI=true requires the database tests to run")
	}
	t.Skip("storetest: skipping: " + msg)
}

// serverURL is DATABASE_URL (or the default) pointing at database db.
func serverURL(t testing.TB, db string) string {
	t.Helper()
	raw := os.Getenv("DATABASE_URL")
	if raw == "" {
		raw = store.DefaultDatabaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("storetest: DATABASE_URL is not a URL: %v", err)
	}
	u.Path = "/" + db
	if u.Query().Get("sslmode") == "" {
		q := u.Query()
		q.Set("sslmode", "disable")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "DATABASE_URL"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
