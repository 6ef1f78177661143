package storagetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The caller's own SQL (storage.SQL, storage.SQLOf): one statement text,
// with $N placeholders and portable types, on every driver.
var sqlTests = []conformanceTest{
	{"SQLInStepTx", testSQLInStepTx},
	{"SQLInTx", testSQLInTx},
	{"SQLOutsideTx", testSQLOutsideTx},
	{"SQLPortableTypes", testSQLPortableTypes},
	{"SQLOfAnotherExecutor", testSQLOfAnotherExecutor},
}

// userTable creates a table of the caller's, in the driver's schema, with
// portable DDL, and returns its quoted, qualified name.
func userTable(ctx context.Context, t *testing.T, drv storage.Driver, name, columns string) string {
	t.Helper()
	q := `"` + strings.ReplaceAll(drv.Schema(), `"`, `""`) + `".` + name
	if _, err := storage.SQLOf(drv).Exec(ctx, "CREATE TABLE IF NOT EXISTS "+q+" ("+columns+")"); err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	return q
}

// userRows returns the keys of the table's rows, in order.
func userRows(ctx context.Context, t *testing.T, s storage.SQL, table string) []string {
	t.Helper()
	rows, err := s.Query(ctx, "SELECT k FROM "+table+" ORDER BY k")
	if err != nil {
		t.Fatalf("query %s: %v", table, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatalf("scan: %v", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	if err := rows.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return keys
}

func testSQLInStepTx(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	table := userTable(ctx, t, drv, "ledger", "k TEXT PRIMARY KEY, n BIGINT NOT NULL")

	// Committed: the statements see their own writes and commit with the step.
	r := leasedRun(ctx, t, drv, "committed", "a")
	_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		s := storage.SQLOf(tx)
		n, err := s.Exec(ctx, "INSERT INTO "+table+" (k, n) VALUES ($1, $2), ($3, $2)", "a", 7, "b")
		if err != nil || n != 2 {
			t.Errorf("Exec insert = %d, %v; want 2 rows", n, err)
		}
		var sum int64
		if err := s.QueryRow(ctx, "SELECT sum(n) FROM "+table+" WHERE k IN ($1, $2)", "a", "b").Scan(&sum); err != nil || sum != 14 {
			t.Errorf("QueryRow in the step = %d, %v; want 14", sum, err)
		}
		if keys := userRows(ctx, t, s, table); !slices.Equal(keys, []string{"a", "b"}) {
			t.Errorf("Query in the step = %v, want [a b]", keys)
		}
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2")}, nil
	})
	if err != nil {
		t.Fatalf("InStepTx: %v", err)
	}
	if keys := userRows(ctx, t, storage.SQLOf(drv), table); !slices.Equal(keys, []string{"a", "b"}) {
		t.Errorf("rows after the step committed = %v, want [a b]", keys)
	}
	if got := getRun(ctx, t, drv, r.ID); got.RecoveryPoint != "step2" {
		t.Errorf("run at %q, want step2: the step's own writes and its progress commit together", got.RecoveryPoint)
	}

	// Rolled back: by the step's error, or by a lost lease (the closing
	// write fails after the step's statements ran).
	for _, tc := range []struct {
		name, token string
		fnErr, want error
	}{
		{"step fails", "a", errBoom, errBoom},
		{"lease lost", "other", nil, acidic.ErrLeaseLost},
	} {
		r := leasedRun(ctx, t, drv, "rolled back "+tc.name, "a")
		_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			if _, err := storage.SQLOf(tx).Exec(ctx, "INSERT INTO "+table+" (k, n) VALUES ($1, 1)", tc.name); err != nil {
				t.Errorf("%s: Exec: %v", tc.name, err)
			}
			return storage.StepCommit{Update: stepUpdate(r, tc.token, "step2")}, tc.fnErr
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: InStepTx error = %v, want %v", tc.name, err, tc.want)
		}
		var n int
		if err := storage.SQLOf(drv).QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE k = $1", tc.name).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows (%v) after the step rolled back, want 0", tc.name, n, err)
		}
	}
}

func testSQLInTx(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	table := userTable(ctx, t, drv, "orders", "k TEXT PRIMARY KEY")
	for _, iso := range []storage.Isolation{storage.ReadCommitted, storage.Serializable} {
		key := map[storage.Isolation]string{storage.ReadCommitted: "rc", storage.Serializable: "ser"}[iso]
		var jobID int64
		err := drv.InTx(ctx, iso, func(ctx context.Context, tx storage.Tx) error {
			if _, err := storage.SQLOf(tx).Exec(ctx, "INSERT INTO "+table+" (k) VALUES ($1)", key+"-rolled-back"); err != nil {
				return err
			}
			jobID = insertJobs(ctx, t, tx, job("sql"))[0].ID
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx = %v, want errBoom", err)
		}
		if _, err := drv.JobGet(ctx, storage.JobGetParams{ID: jobID}); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("JobGet of a job of a rolled-back transaction: %v, want ErrNotFound", err)
		}
		err = drv.InTx(ctx, iso, func(ctx context.Context, tx storage.Tx) error {
			_, err := storage.SQLOf(tx).Exec(ctx, "INSERT INTO "+table+" (k) VALUES ($1)", key)
			return err
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
	}
	if keys := userRows(ctx, t, storage.SQLOf(drv), table); !slices.Equal(keys, []string{"rc", "ser"}) {
		t.Errorf("rows = %v, want the committed ones, [rc ser]", keys)
	}
}

func testSQLOutsideTx(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	s := storage.SQLOf(drv)
	table := userTable(ctx, t, drv, "gateway", "k TEXT PRIMARY KEY, n BIGINT")
	if n, err := s.Exec(ctx, "INSERT INTO "+table+" (k, n) VALUES ($1, $2)", "x", 1); err != nil || n != 1 {
		t.Fatalf("Exec = %d, %v; want 1 row", n, err)
	}
	if n, err := s.Exec(ctx, "INSERT INTO "+table+" (k, n) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING", "x", 2); err != nil || n != 0 {
		t.Errorf("Exec ON CONFLICT DO NOTHING = %d, %v; want 0 rows", n, err)
	}
	if _, err := s.Exec(ctx, "INSERT INTO "+table+" (k, n) VALUES ($1, $2)", "x", 3); !errors.Is(err, acidic.ErrConflict) {
		t.Errorf("a unique violation: %v, want one matching acidic.ErrConflict", err)
	}
	var n int64
	if err := s.QueryRow(ctx, "SELECT n FROM "+table+" WHERE k = $1", "x").Scan(&n); err != nil || n != 1 {
		t.Errorf("QueryRow = %d, %v; want 1", n, err)
	}
	if err := s.QueryRow(ctx, "SELECT n FROM "+table+" WHERE k = $1", "nobody").Scan(&n); !errors.Is(err, storage.ErrNoRows) {
		t.Errorf("QueryRow of no row: %v, want storage.ErrNoRows", err)
	}
	if _, err := s.Query(ctx, "SELECT nonsense FROM "+table); err == nil {
		t.Error("Query of an unknown column: no error")
	}
	if n, err := s.Exec(ctx, "UPDATE "+table+" SET n = n + 1 WHERE k = $1", "x"); err != nil || n != 1 {
		t.Errorf("Exec update = %d, %v; want 1 row", n, err)
	}
}

func testSQLPortableTypes(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	s := storage.SQLOf(drv)
	table := userTable(ctx, t, drv, "kinds",
		"k TEXT PRIMARY KEY, i BIGINT, f DOUBLE PRECISION, b BYTEA, ok BOOLEAN, at BIGINT, maybe TEXT")
	type values struct {
		k     string
		i     int64
		f     float64
		b     []byte
		ok    bool
		at    int64
		maybe *string
	}
	word := "set"
	want := []values{
		{"a", 1 << 40, 1.5, []byte{0, 1, 255}, true, 1_700_000_000_123_456, &word},
		{"b", -3, 0, []byte{}, false, 0, nil},
	}
	for _, v := range want {
		_, err := s.Exec(ctx, "INSERT INTO "+table+" (k, i, f, b, ok, at, maybe) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			v.k, v.i, v.f, v.b, v.ok, v.at, v.maybe)
		if err != nil {
			t.Fatalf("insert %s: %v", v.k, err)
		}
	}
	rows, err := s.Query(ctx, "SELECT k, i, f, b, ok, at, maybe FROM "+table+" ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []values
	for rows.Next() {
		var v values
		if err := rows.Scan(&v.k, &v.i, &v.f, &v.b, &v.ok, &v.at, &v.maybe); err != nil {
			t.Fatalf("scan: %v", err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.k != w.k || g.i != w.i || g.f != w.f || string(g.b) != string(w.b) || g.ok != w.ok || g.at != w.at ||
			(g.maybe == nil) != (w.maybe == nil) || g.maybe != nil && *g.maybe != *w.maybe {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
	// int scans a BIGINT too; a placeholder may be repeated.
	var n int
	if err := s.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE i = $1 OR i = $1 + 0", int64(-3)).Scan(&n); err != nil || n != 1 {
		t.Errorf("count into int with a repeated placeholder = %d, %v; want 1", n, err)
	}
}

// noSQLTx is a storage.Tx of no driver; wrapperTx wraps a driver's.
type (
	noSQLTx     struct{ storage.Tx }
	wrapperTx   struct{ storage.Tx }
	unwrappable interface{ Unwrap() storage.Tx }
)

func (w wrapperTx) Unwrap() storage.Tx { return w.Tx }

var _ unwrappable = wrapperTx{}

func testSQLOfAnotherExecutor(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	table := userTable(ctx, t, drv, "wrapped", "k TEXT PRIMARY KEY")
	for name, e := range map[string]storage.Executor{"a Tx of no driver": noSQLTx{}, "nil": nil} {
		s := storage.SQLOf(e) // never nil: an SQL whose calls fail
		if _, err := s.Exec(ctx, "SELECT 1"); !errors.Is(err, storage.ErrNoSQL) {
			t.Errorf("SQLOf(%s).Exec: %v, want ErrNoSQL", name, err)
		}
		if _, err := s.Query(ctx, "SELECT 1"); !errors.Is(err, storage.ErrNoSQL) {
			t.Errorf("SQLOf(%s).Query: %v, want ErrNoSQL", name, err)
		}
		var n int
		if err := s.QueryRow(ctx, "SELECT 1").Scan(&n); !errors.Is(err, storage.ErrNoSQL) {
			t.Errorf("SQLOf(%s).QueryRow: %v, want ErrNoSQL", name, err)
		}
	}
	// A wrapper with Unwrap (a test's fault injection) is seen through.
	err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		_, err := storage.SQLOf(wrapperTx{tx}).Exec(ctx, "INSERT INTO "+table+" (k) VALUES ($1)", "w")
		return err
	})
	if err != nil {
		t.Fatalf("InTx through a wrapper: %v", err)
	}
	if keys := userRows(ctx, t, storage.SQLOf(drv), table); !slices.Equal(keys, []string{"w"}) {
		t.Errorf("rows = %v, want [w]", keys)
	}
}
