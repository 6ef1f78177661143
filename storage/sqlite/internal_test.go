package sqlite

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
)

// TestQueriesLimitNotBareParameter: no statement takes its LIMIT or OFFSET
// from a bare parameter, which SQLite plans with the bound value, so that
// binding another value makes the prepared statement be prepared again at
// its next step (see queries).
func TestQueriesLimitNotBareParameter(t *testing.T) {
	q, err := loadQueries()
	if err != nil {
		t.Fatal(err)
	}
	bare := regexp.MustCompile(`(?i)\b(LIMIT|OFFSET)\s+[$?:@]\w+\s*($|[);,]|\bOFFSET\b)`)
	for name, sql := range q {
		if m := bare.FindString(sql); m != "" {
			t.Errorf("%s: %q: write the parameter as $N + 0, or SQLite prepares the statement again whenever its value changes", name, m)
		}
	}
}

// TestSynchronousPerTransaction: a bookkeeping transaction runs with
// synchronous=NORMAL and every other write transaction, after it as before
// it, with synchronous=FULL: the writer's mode follows each transaction
// (SQLite applies "PRAGMA synchronous = …" when the statement is prepared,
// so it is run from its text rather than kept prepared).
func TestSynchronousPerTransaction(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "sync.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	mode := func(bookkeeping bool) int {
		var n int
		err := d.write(ctx, bookkeeping, func(q wq) error {
			return d.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, bookkeeping := range []bool{false, true, true, false, true, false, false} {
		want := 2 // FULL
		if bookkeeping {
			want = 1 // NORMAL
		}
		if got := mode(bookkeeping); got != want {
			t.Errorf("transaction %d (bookkeeping %v): synchronous = %d, want %d", i, bookkeeping, got, want)
		}
	}
}
