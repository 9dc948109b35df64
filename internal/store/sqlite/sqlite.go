// Package sqlite is the store.Store driver for SQLite (modernc.org/sqlite,
// no cgo): Gantry's embedded default database, one file in the data
// directory. The database runs in WAL mode with foreign keys on; writes go
// through one connection, each transaction BEGIN IMMEDIATE, so concurrent
// writers queue instead of failing with SQLITE_BUSY, while reads use a
// small pool of their own.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/sqlstore"
)

// Store is a store.Store on one SQLite file.
type Store struct {
	*sqlstore.DB
}

// readers is the size of the read pool.
const readers = 4

// Open opens (creating when missing) the SQLite database at path and
// applies any pending migrations. The caller closes the Store.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite %s: path must not contain '?' or '#'", path)
	}
	params := url.Values{}
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "journal_mode(WAL)")
	// Every commit reaches the disk before the call returns (WAL's
	// default, NORMAL, could lose the last commits on power loss).
	params.Add("_pragma", "synchronous(FULL)")
	writer, err := sql.Open("sqlite", path+"?"+params.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer: SQLite has one write lock per database, and one
	// connection makes waiting for it Go's job rather than a busy loop.
	writer.SetMaxOpenConns(1)
	// Connect now, so the file exists and is in WAL mode before readers
	// (which may not write) connect.
	if err := pingBusy(ctx, writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	params.Add("_pragma", "query_only(1)")
	reader, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers) // keep them: each new connection reruns the pragmas
	db, err := sqlstore.New(ctx, writer, reader, dialect)
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &Store{DB: db}, nil
}

// pingBusy connects db, retrying for up to busyWait while the database
// is busy: switching a new file to WAL needs an exclusive lock that SQLite
// does not wait for (the busy timeout does not apply), so processes
// opening one fresh database at once would otherwise fail.
func pingBusy(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyWait)
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// busyWait bounds pingBusy's retries, as the busy timeout bounds waits
// for the write lock.
const busyWait = 10 * time.Second

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED (any
// extended code).
func isBusy(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	c := e.Code() & 0xff
	return c == 5 || c == 6
}

var _ store.Store = (*Store)(nil)

var dialect = sqlstore.Dialect{
	Name:     "sqlite",
	Classify: classify,
}

// Result codes of constraint violations (https://sqlite.org/rescode.html).
const (
	sqliteConstraint           = 19
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

func classify(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code() {
	case sqliteConstraintUnique, sqliteConstraintPrimaryKey:
		return store.ErrConflict
	case sqliteConstraintForeignKey:
		return store.ErrNotFound
	}
	if e.Code()&0xff == sqliteConstraint && strings.Contains(e.Error(), "UNIQUE") {
		return store.ErrConflict
	}
	return nil
}
