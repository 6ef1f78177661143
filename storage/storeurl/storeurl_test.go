package storeurl_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
	"github.com/acidic-go/acidic/storage/storeurl"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// TestFromEnv: DATABASE_URL, else ACIDIC_DB, else ./acidic.db; a variable
// set to nothing is refused, not skipped.
func TestFromEnv(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		vars      map[string]string
		url, from string
		err       string
	}{
		{"nothing set", nil, "sqlite:acidic.db", "default", ""},
		{"ACIDIC_DB", map[string]string{"ACIDIC_DB": "/tmp/x.db"}, "sqlite:/tmp/x.db", "ACIDIC_DB", ""},
		{"DATABASE_URL wins", map[string]string{"ACIDIC_DB": "/tmp/x.db", "DATABASE_URL": "postgres://u@h/db"}, "postgres://u@h/db", "DATABASE_URL", ""},
		{"DATABASE_URL names a SQLite file", map[string]string{"DATABASE_URL": "sqlite:y.db"}, "sqlite:y.db", "DATABASE_URL", ""},
		{"empty DATABASE_URL", map[string]string{"DATABASE_URL": " ", "ACIDIC_DB": "/tmp/x.db"}, "", "", "DATABASE_URL is set but empty"},
		{"empty ACIDIC_DB", map[string]string{"ACIDIC_DB": ""}, "", "", "ACIDIC_DB is set but empty"},
	} {
		src, err := storeurl.FromEnv(env(c.vars))
		switch {
		case c.err != "" && (!errors.Is(err, storeurl.ErrInvalid) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: err = %v, want ErrInvalid saying %q", c.name, err, c.err)
		case c.err == "" && (err != nil || src.URL != c.url || src.From != c.from):
			t.Errorf("%s: FromEnv = %+v, %v; want %s from %s", c.name, src, err, c.url, c.from)
		}
	}
}

// TestErrorsNeverQuoteTheURL: a malformed PostgreSQL URL's error names where
// it came from, not its text (which may hold a password).
func TestErrorsNeverQuoteTheURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"postgres://user:s3cret@[::1", "postgres://user:p@ss@host/db", "sqlite:"} {
		_, err := storeurl.Open(context.Background(), storeurl.Source{URL: u, From: "DATABASE_URL"}, storeurl.Options{})
		if !errors.Is(err, storeurl.ErrInvalid) || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "ss@host") ||
			!strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("Open(%q): %v; want ErrInvalid naming DATABASE_URL, without the URL", u, err)
		}
	}
}

// TestOpenSQLite: a sqlite: URL opens (and migrates) the file; a path that
// cannot be opened is sqlite.ErrCannotOpen, naming where it came from.
func TestOpenSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	st, err := storeurl.Open(ctx, storeurl.Source{URL: "sqlite:" + path, From: "ACIDIC_DB"}, storeurl.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.SQLite() || st.Source.String() != "SQLite file "+path+" (ACIDIC_DB)" {
		t.Errorf("store %v, SQLite() = %v", st.Source, st.SQLite())
	}
	if s, err := st.Driver.(*sqlite.Driver).Migrator().Status(ctx); err != nil || !s[len(s)-1].Applied {
		t.Errorf("Options.Migrate left %+v, %v", s, err)
	}
	_, err = storeurl.Open(ctx, storeurl.Source{URL: "sqlite:" + path, From: "ACIDIC_DB"}, storeurl.Options{Schema: "tenant_1"})
	if !errors.Is(err, storeurl.ErrInvalid) || !strings.Contains(err.Error(), "no schemas") {
		t.Errorf("Open of a SQLite file with a schema: %v, want ErrInvalid (not a schema silently ignored)", err)
	}
	_, err = storeurl.Open(ctx, storeurl.Source{URL: "sqlite:" + filepath.Join(path, "sub", "b.db"), From: "ACIDIC_DB"}, storeurl.Options{})
	if !errors.Is(err, sqlite.ErrCannotOpen) || !strings.Contains(err.Error(), "(ACIDIC_DB)") {
		t.Errorf("Open of a path under a file: %v, want ErrCannotOpen naming ACIDIC_DB", err)
	}
}

// TestOpenPostgresSearchPath: on PostgreSQL a program's own SQL names its
// tables plainly and finds them in the store's schema (the pool's
// search_path), unless the URL sets a search_path of its own.
func TestOpenPostgresSearchPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := testdb.SchemaName(t)
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	src := storeurl.Source{URL: testdb.URL(), From: "test"}
	st, err := storeurl.Open(ctx, src, storeurl.Options{Schema: schema, Migrate: true, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db := storage.SQLOf(st.Driver)
	if _, err := db.Exec(ctx, `CREATE TABLE orders (id BIGINT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'orders'`, schema).Scan(&n); err != nil || n != 1 {
		t.Errorf("plain CREATE TABLE orders: %d tables %s.orders (%v), want 1", n, schema, err)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM runs`).Scan(&n); err != nil {
		t.Errorf("plain SELECT of Acidic's runs: %v", err)
	}

	// The URL's own search_path wins.
	own, sep := src, "?"
	if strings.Contains(own.URL, "?") {
		sep = "&"
	}
	own.URL += sep + "search_path=pg_catalog"
	st2, err := storeurl.Open(ctx, own, storeurl.Options{Schema: schema, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	var path string
	if err := storage.SQLOf(st2.Driver).QueryRow(ctx, `SELECT current_setting('search_path')`).Scan(&path); err != nil || path != "pg_catalog" {
		t.Errorf("search_path with the URL's own: %q (%v), want pg_catalog", path, err)
	}
}
