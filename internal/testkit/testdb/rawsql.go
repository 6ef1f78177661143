package testdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// QueryInt runs a query whose one row holds one integer (a count, say) on
// drv's store and returns it, failing t if it fails.
func QueryInt(t testing.TB, drv storage.Driver, sql string, args ...any) int {
	t.Helper()
	var n int
	QueryRow(t, drv, sql, args, &n)
	return n
}

// Reopen returns a second driver on drv's store, with a pool or file
// handle of its own, closed when the test ends: another node of the same
// store, or a way to read it after drv was closed. On PostgreSQL it is a
// new pool on drv's schema (opts as in Pool; the schema is its search_path,
// as in New); on SQLite a second Driver on the same file, which shares no
// in-process notifications with drv.
func Reopen(t testing.TB, drv storage.Driver, opts Options) storage.Driver {
	t.Helper()
	switch d := drv.(type) {
	case *postgres.Driver:
		return postgres.New(schemaPool(t, opts, d.Schema()), postgres.Options{Schema: d.Schema()})
	case *sqlite.Driver:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		other, err := sqlite.Open(ctx, d.Path(), sqlite.Options{})
		if err != nil {
			t.Fatalf("testdb: reopen %s: %v", d.Path(), err)
		}
		t.Cleanup(func() { _ = other.Close() })
		return other
	}
	t.Fatalf("testdb: Reopen of a %T", drv)
	return nil
}

// Close closes drv's pool (PostgreSQL) or file (SQLite), as a program
// that shuts down does, so a test can see what using it afterwards does.
func Close(t testing.TB, drv storage.Driver) {
	t.Helper()
	switch d := drv.(type) {
	case *postgres.Driver:
		d.Pool().Close()
	case *sqlite.Driver:
		if err := d.Close(); err != nil {
			t.Fatalf("testdb: close %s: %v", d.Path(), err)
		}
	default:
		t.Fatalf("testdb: Close of a %T", drv)
	}
}

// Dialect returns the name of drv's SQL dialect, PostgreSQL or SQLiteName,
// for a test whose statement must be written in one or the other.
func Dialect(drv storage.Driver) string {
	if _, ok := drv.(*postgres.Driver); ok {
		return PostgreSQL
	}
	return SQLiteName
}

// Earlier is SQL for the time in column (or any time expression) moved d
// into the past, in drv's dialect: an interval on PostgreSQL, microseconds
// on SQLite. "now()" names the current time on both.
func Earlier(drv storage.Driver, column string, d time.Duration) string {
	if Dialect(drv) == PostgreSQL {
		return fmt.Sprintf("%s - interval '%d microseconds'", column, d.Microseconds())
	}
	if column == "now()" {
		column = "(CAST(unixepoch('subsec') * 1000000 AS INTEGER))"
	}
	return fmt.Sprintf("(%s - %d)", column, d.Microseconds())
}

// Now is SQL for the current time in drv's dialect.
func Now(drv storage.Driver) string { return Earlier(drv, "now()", 0) }
