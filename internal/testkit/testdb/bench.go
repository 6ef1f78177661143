package testdb

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// WarmPool opens n connections of pool ahead of a benchmark's timer, so the
// timed part does not include connecting (a new backend costs milliseconds).
func WarmPool(tb testing.TB, pool *pgxpool.Pool, n int) {
	tb.Helper()
	ctx := context.Background()
	conns := make([]*pgxpool.Conn, 0, n)
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			tb.Fatalf("warm pool: %v", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// WarnOldSnapshots logs a warning when another session of the database holds
// an old snapshot: dead rows then pile up in every table and index (nothing
// can be pruned), and benchmark figures degrade with b.N.
func WarnOldSnapshots(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	var n int
	var oldest string
	err := pool.QueryRow(context.Background(), `
		SELECT count(*), coalesce(max(now() - xact_start)::text, '')
		FROM pg_stat_activity
		WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()
		  AND datname = current_database() AND now() - xact_start > interval '5 seconds'`).Scan(&n, &oldest)
	if err == nil && n > 0 {
		tb.Logf("warning: %d other session(s) hold a snapshot, the oldest for %s: figures will be pessimistic", n, oldest)
	}
}
