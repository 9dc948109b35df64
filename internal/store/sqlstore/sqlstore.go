// Package sqlstore implements store.Store once, over database/sql, for
// every SQL database Gantry supports. A Dialect says what differs between
// them (placeholders, how a constraint violation looks, how claimers are
// serialised); the sqlite and postgres packages supply one and open the
// connections. Migrations from package migrations are applied at open.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/store"
)

// Dialect is what one database does differently.
type Dialect struct {
	// Name selects the migrations directory ("sqlite" or "postgres").
	Name string
	// Numbered placeholders ($1, $2, ...) instead of "?".
	Numbered bool
	// Classify maps a driver error to store.ErrConflict (unique key
	// violated) or store.ErrNotFound (foreign key violated: the parent row
	// is missing); nil for any other error.
	Classify func(err error) error
	// LockClaims, when set, is run first in ClaimJob's transaction and
	// in the migration transaction to serialise them between processes
	// (PostgreSQL: a transaction-level advisory lock). SQLite needs none:
	// its write transactions are serialised already.
	LockClaims string
}

// DB is a store.Store on a database/sql connection pool. Writes run on
// writer, one transaction at a time where the database requires it
// (SQLite); single reads run on reader, which may be the same pool.
type DB struct {
	ops
	writer, reader *sql.DB
	d              *Dialect
}

var _ store.Store = (*DB)(nil)

// New returns a store on writer and reader (reader may equal writer) after
// applying any migrations not yet applied. The DB owns both pools: Close
// closes them.
func New(ctx context.Context, writer, reader *sql.DB, d Dialect) (*DB, error) {
	db := &DB{writer: writer, reader: reader, d: &d}
	db.ops = ops{db: db}
	if err := db.migrateUp(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// Close closes the connection pools.
func (db *DB) Close() error {
	err := db.writer.Close()
	if db.reader != db.writer {
		if rerr := db.reader.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// InTx runs fn in one write transaction: committed when fn returns nil,
// rolled back otherwise.
func (db *DB) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return db.inTx(ctx, func(q querier) error {
		return fn(&ops{db: db, q: q})
	})
}

// inTx runs fn in a write transaction on the writer pool.
func (db *DB) inTx(ctx context.Context, fn func(q querier) error) (err error) {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(querier{q: tx, d: db.d}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rawQuerier is what *sql.DB and *sql.Tx have in common.
type rawQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// querier runs the store's queries, written with "?" placeholders,
// rewriting them for the dialect.
type querier struct {
	q rawQuerier
	d *Dialect
}

func (q querier) rebind(query string) string {
	if !q.d.Numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (q querier) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.q.ExecContext(ctx, q.rebind(query), args...)
}

func (q querier) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.q.QueryContext(ctx, q.rebind(query), args...)
}

func (q querier) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return q.q.QueryRowContext(ctx, q.rebind(query), args...)
}

// ops implements store.Tx. Inside InTx, q is the transaction; at the top
// level q is nil and every method runs in a transaction of its own (or,
// for single reads, on the reader pool).
type ops struct {
	db *DB
	q  querier
}

func (o *ops) inTx() bool { return o.q.q != nil }

// write runs fn in the enclosing transaction or in a new one.
func (o *ops) write(ctx context.Context, fn func(q querier) error) error {
	if o.inTx() {
		return fn(o.q)
	}
	return o.db.inTx(ctx, fn)
}

// read runs fn in the enclosing transaction, or on the reader pool.
// fn must only read, and should be one statement (or tolerate seeing
// commits between its statements).
func (o *ops) read(ctx context.Context, fn func(q querier) error) error {
	if o.inTx() {
		return fn(o.q)
	}
	return fn(querier{q: o.db.reader, d: o.db.d})
}

// classify wraps err for the caller: a sentinel the dialect recognises is
// wrapped with what, anything else is returned with what as context.
func (o *ops) classify(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if s := o.db.d.Classify(err); s != nil {
		return fmt.Errorf("%s: %w (%v)", what, s, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// newETag returns a fresh random entity tag.
func newETag() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newID returns a random identifier with a prefix.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// nanos stores a time as Unix nanoseconds; the zero time stores as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is nanos' inverse, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// now is the store's clock for TimeCreated and TimeUpdated, in UTC and
// without the monotonic reading so values compare equal after a round trip.
func now() time.Time { return time.Now().UTC().Round(0) }

// norm returns t in UTC, without the monotonic reading, truncated to what
// the database stores (nanoseconds since 1970 in an int64), or now when
// t is zero.
func normOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return fromNanos(t.UnixNano())
}
