package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/acidic-go/acidic"
)

// Errors of the driver a caller may test for with errors.Is.
var (
	// ErrCannotOpen is returned by Open when the file cannot be opened or
	// created: its directory does not exist, the process may not read or
	// write it, it is a directory, or the path is empty. Nothing was
	// written.
	ErrCannotOpen = errors.New("sqlite: cannot open the database file")

	// ErrNotADatabase is returned by Open when the file exists but is not
	// a SQLite database (or is encrypted, or damaged beyond its header).
	// Nothing was written to it.
	ErrNotADatabase = errors.New("sqlite: the file is not a SQLite database")

	// ErrBusy is returned when the write lock could not be had within
	// Options.BusyTimeout: another process (or a long transaction of this
	// one) held it all that time. It also matches acidic.ErrSerialization,
	// so InTx and InStepTx run their function again.
	ErrBusy = errors.New("sqlite: the database is locked by another writer")

	// ErrNestedWrite is returned by a write on the Driver (not on the
	// transaction) made with the context of one of the driver's own write
	// transactions, while that transaction holds the write lock: SQLite has
	// one writer at a time, so the write would wait for its own
	// transaction. Make it through the transaction instead.
	ErrNestedWrite = errors.New("sqlite: a write on the driver inside one of its own write transactions (use the transaction)")

	// ErrTxOwned is returned by Commit and Rollback on a transaction that
	// InTx or InStepTx runs: they commit it when the function returns nil
	// and roll it back otherwise. Return an error to roll it back.
	ErrTxOwned = errors.New("sqlite: this transaction is committed or rolled back by InTx or InStepTx")

	// ErrTxDone is returned by a statement on a transaction that has ended:
	// committed, rolled back, or rolled back by SQLite itself after an
	// error (an interrupted statement, a full disk).
	ErrTxDone = errors.New("sqlite: the transaction has ended")
)

// OpenError is returned by Open for a file it cannot use. It matches
// ErrCannotOpen or ErrNotADatabase with errors.Is, and keeps SQLite's own
// error.
type OpenError struct {
	// Path is the path given to Open.
	Path string
	// Kind is ErrCannotOpen or ErrNotADatabase.
	Kind error
	// Err is the underlying error.
	Err error
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("%v: %q: %v", e.Kind, e.Path, e.Err)
}

// Unwrap returns the kind and the underlying error.
func (e *OpenError) Unwrap() []error { return []error{e.Kind, e.Err} }

// sqliteCode returns SQLite's extended result code of err, or 0.
func sqliteCode(err error) int {
	var se *msqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// wrapErr maps library errors to the storage sentinels, keeping the
// original.
func wrapErr(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, acidic.ErrSerialization), errors.Is(err, acidic.ErrClosed), errors.Is(err, acidic.ErrNotFound),
		errors.Is(err, acidic.ErrConflict), errors.Is(err, acidic.ErrLeaseLost), errors.Is(err, acidic.ErrInvalid):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", acidic.ErrNotFound, err)
	case errors.Is(err, sql.ErrConnDone), strings.Contains(err.Error(), "sql: database is closed"):
		return fmt.Errorf("%w: %w", acidic.ErrClosed, err)
	}
	switch code := sqliteCode(err); {
	case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w: %w", ErrBusy, acidic.ErrSerialization, err)
	case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", acidic.ErrConflict, err)
	}
	return err
}

// openErr classifies an error met while opening path.
func openErr(path string, err error) error {
	code := sqliteCode(err)
	switch code & 0xff {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return &OpenError{Path: path, Kind: ErrNotADatabase, Err: err}
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH, sqlite3.SQLITE_IOERR:
		return &OpenError{Path: path, Kind: ErrCannotOpen, Err: err}
	}
	return fmt.Errorf("sqlite: open %q: %w", path, err)
}
