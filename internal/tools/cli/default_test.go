package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryDefaultStore: with no -database and no DATABASE_URL, the
// binary uses the SQLite file at ACIDIC_DB, else ./acidic.db (the store
// the examples choose), never libpq's PG* variables; a bad ACIDIC_DB is a
// clear error before anything else, and creates nothing.
func TestBinaryDefaultStore(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	pg := []string{"PGHOST=127.0.0.1", "PGPORT=5432", "PGUSER=postgres", "PGDATABASE=acidic_test"}

	// ./acidic.db in the working directory.
	dir := t.TempDir()
	if r := exeIn(t, dir, bin, pg, "migrate", "up"); r.code != 0 {
		t.Fatalf("migrate up with no database: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "acidic.db")); err != nil {
		t.Fatalf("migrate up with no database made no ./acidic.db: %v", err)
	}
	if r := exeIn(t, dir, bin, pg, "runs", "list"); r.code != 0 || !strings.Contains(r.stdout, "no runs match") {
		t.Errorf("runs list on ./acidic.db: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// ACIDIC_DB, wherever the command runs.
	other := t.TempDir()
	path := filepath.Join(t.TempDir(), "store.db")
	if r := exeIn(t, other, bin, []string{"ACIDIC_DB=" + path}, "migrate", "up"); r.code != 0 {
		t.Fatalf("migrate up with ACIDIC_DB: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("migrate up with ACIDIC_DB made no %s: %v", path, err)
	}
	if _, err := os.Stat(filepath.Join(other, "acidic.db")); err == nil {
		t.Error("migrate up with ACIDIC_DB made ./acidic.db too")
	}
	// DATABASE_URL wins over ACIDIC_DB.
	r := exeIn(t, other, bin, []string{"ACIDIC_DB=" + path, "DATABASE_URL=sqlite:" + filepath.Join(other, "url.db")}, "runs", "list")
	if r.code != 5 || !strings.Contains(r.stderr, "(DATABASE_URL) is not migrated") {
		t.Errorf("DATABASE_URL and ACIDIC_DB: exit %d, want 5 (DATABASE_URL's file, not migrated)\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Bad paths: refused before anything is written.
	notADB := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notADB, []byte("this is not a database, just some text long enough to fill a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"no such directory", filepath.Join(t.TempDir(), "missing", "x.db"), "cannot open"},
		{"a directory", t.TempDir(), "cannot open"},
		{"not a database", notADB, "not a SQLite database"},
	} {
		for _, args := range [][]string{{"migrate", "up"}, {"runs", "list"}} {
			r := exe(t, bin, []string{"ACIDIC_DB=" + c.path}, args...)
			if r.code != 1 || !strings.Contains(r.stderr, "(ACIDIC_DB)") || !strings.Contains(r.stderr, c.want) {
				t.Errorf("%s: acidic %s: exit %d, want 1 and an error naming ACIDIC_DB saying %q\n%s%s",
					c.name, strings.Join(args, " "), r.code, c.want, r.stdout, r.stderr)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(notADB), "notes.txt-wal")); err == nil {
		t.Error("a file that is not a database got a WAL")
	}
	if b, err := os.ReadFile(notADB); err != nil || !strings.HasPrefix(string(b), "this is not a database") {
		t.Errorf("the file that is not a database was changed: %q, %v", b, err)
	}
}
