// Package open chooses and opens a store driver from the server's flags:
// PostgreSQL for a postgres:// or postgresql:// URL, otherwise SQLite in
// the data directory. It lives apart from package store so that store
// does not import its own drivers.
package open

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/postgres"
	"github.com/gantryml/gantry/internal/store/sqlite"
)

// SQLiteFile is the database file's name inside the data directory.
const SQLiteFile = "gantry.db"

// Open opens the store databaseURL names: PostgreSQL for postgres:// and
// postgresql:// URLs; SQLite at dataDir/gantry.db (creating dataDir) when
// databaseURL is empty. Any other URL is an error. Migrations are applied.
func Open(ctx context.Context, dataDir, databaseURL string) (store.Store, error) {
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return postgres.Open(ctx, databaseURL)
	case databaseURL != "":
		scheme, _, _ := strings.Cut(databaseURL, ":")
		return nil, fmt.Errorf("open store: database URL scheme %q: only postgres:// and postgresql:// are supported (leave it empty for SQLite in the data directory)", scheme)
	}
	if dataDir == "" {
		return nil, fmt.Errorf("open store: no data directory and no database URL")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return sqlite.Open(ctx, filepath.Join(dataDir, SQLiteFile))
}
