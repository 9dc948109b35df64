package sqlstore

import (
	"context"
	"fmt"

	"github.com/gantryml/gantry/internal/store/migrations"
)

// migrateUp applies, in order and each in its own transaction, every
// migration newer than the newest recorded in schema_migrations.
func (db *DB) migrateUp(ctx context.Context) error {
	all, err := migrations.List(db.d.Name)
	if err != nil {
		return err
	}
	for _, m := range all {
		err := db.inTx(ctx, func(q querier) error {
			current, err := db.schemaVersion(ctx, q)
			if err != nil {
				return err
			}
			if m.Version <= current {
				return nil
			}
			if m.Version != current+1 {
				return fmt.Errorf("migration %04d_%s: database is at version %d", m.Version, m.Name, current)
			}
			if _, err := q.exec(ctx, m.Up); err != nil {
				return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := q.exec(ctx, `INSERT INTO schema_migrations (version, name, time_applied) VALUES (?, ?, ?)`,
				m.Version, m.Name, nanos(now())); err != nil {
				return fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// A database from a newer Gantry has steps this binary does not know.
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if v > len(all) {
		return fmt.Errorf("database schema is at version %d, newer than this binary's %d", v, len(all))
	}
	return nil
}

// MigrateDown undoes applied migrations, newest first, until the schema is
// at version to (0 removes every table but schema_migrations). It is for
// tests and for rolling back a release by hand.
func (db *DB) MigrateDown(ctx context.Context, to int) error {
	all, err := migrations.List(db.d.Name)
	if err != nil {
		return err
	}
	for {
		done := false
		err := db.inTx(ctx, func(q querier) error {
			current, err := db.schemaVersion(ctx, q)
			if err != nil {
				return err
			}
			if current <= to {
				done = true
				return nil
			}
			if current > len(all) {
				return fmt.Errorf("database schema is at version %d, newer than this binary's %d", current, len(all))
			}
			m := all[current-1]
			if _, err := q.exec(ctx, m.Down); err != nil {
				return fmt.Errorf("undo migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := q.exec(ctx, `DELETE FROM schema_migrations WHERE version = ?`, m.Version); err != nil {
				return fmt.Errorf("unrecord migration %04d_%s: %w", m.Version, m.Name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// SchemaVersion returns the newest applied migration's version (0: none).
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.inTx(ctx, func(q querier) error {
		var err error
		v, err = db.schemaVersion(ctx, q)
		return err
	})
	return v, err
}

// schemaVersion creates schema_migrations when missing, takes the
// dialect's lock, and reads the newest version.
func (db *DB) schemaVersion(ctx context.Context, q querier) (int, error) {
	if db.d.LockClaims != "" {
		if _, err := q.exec(ctx, db.d.LockClaims); err != nil {
			return 0, fmt.Errorf("lock schema: %w", err)
		}
	}
	if _, err := q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version      INTEGER PRIMARY KEY,
		name         TEXT NOT NULL,
		time_applied BIGINT NOT NULL
	)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	var v int
	if err := q.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
