package testdb_test

import (
	"context"
	"testing"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
)

// TestSchemaIsSearchPath: a table a test's own SQL names plainly lands in
// the test's schema, on New's pool and on Reopen's, as with storeurl.Open.
func TestSchemaIsSearchPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	drv := testdb.New(t, testdb.Options{MaxConns: 2})
	other := testdb.Reopen(t, drv, testdb.Options{MaxConns: 2})
	for i, d := range []storage.Driver{drv, other} {
		table := []string{"plain_a", "plain_b"}[i]
		db := storage.SQLOf(d)
		if _, err := db.Exec(ctx, `CREATE TABLE `+table+` (id BIGINT)`); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, drv.Schema(), table).Scan(&n); err != nil || n != 1 {
			t.Errorf("plain CREATE TABLE %s: %d in schema %s (%v), want 1", table, n, drv.Schema(), err)
		}
	}
}
