// Package postgres is the store.Store driver for PostgreSQL, through pgx
// v5's database/sql adapter. Gantry uses it when started with
// --database-url postgres://...; several Gantry processes may share one
// database, since job claims and migrations take a transaction-level
// advisory lock.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/sqlstore"
)

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	*sqlstore.DB
}

var _ store.Store = (*Store)(nil)

// maxConns bounds the connection pool.
const maxConns = 16

// Open connects to the database at url (postgres://user@host:port/db?...;
// a search_path parameter selects the schema) and applies any pending
// migrations. The caller closes the Store.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s@%s:%d/%s: %w", cfg.User, cfg.Host, cfg.Port, cfg.Database, err)
	}
	s, err := sqlstore.New(ctx, db, db, dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	return &Store{DB: s}, nil
}

var dialect = sqlstore.Dialect{
	Name:     "postgres",
	Numbered: true,
	Classify: classify,
	// One lock per schema, so stores in different schemas of one
	// database (tests) do not wait for each other.
	LockClaims: `SELECT pg_advisory_xact_lock(hashtext('gantry:' || current_schema()))`,
}

// SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func classify(err error) error {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code {
	case uniqueViolation:
		return store.ErrConflict
	case foreignKeyViolation:
		return store.ErrNotFound
	}
	return nil
}
