package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BaselineSpacing is how many rows apart the baseline's goroutines update
// their rows: other index leaf and heap pages, so they do not conflict.
const BaselineSpacing = 500

// CreateBaselineTable (re)creates table, qualified and quoted, with the rows
// the baseline of goroutines goroutines updates. It holds at least 10,000
// rows, so the UPDATE uses the primary key: a sequential scan would take a
// relation-wide predicate lock and make every transaction conflict with
// every other.
func CreateBaselineTable(ctx context.Context, pool *pgxpool.Pool, table string, goroutines int) error {
	rows := max(10000, goroutines*BaselineSpacing+1)
	for _, sql := range []string{
		"DROP TABLE IF EXISTS " + table,
		"CREATE TABLE " + table + " (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0)",
		"INSERT INTO " + table + " (id) SELECT generate_series(0, " + strconv.Itoa(rows-1) + ")",
		"ANALYZE " + table,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("baseline table: %w", err)
		}
	}
	return nil
}

// RunBaseline runs n SERIALIZABLE transactions from goroutines goroutines,
// each BEGIN, one UPDATE of the goroutine's own row of table, COMMIT, the
// way an application writes it with pgx (three round trips). It retries
// serialization failures and returns how many it retried.
func RunBaseline(ctx context.Context, pool *pgxpool.Pool, table string, goroutines, n int) (int64, error) {
	update := "UPDATE " + table + " SET n = n + 1 WHERE id = $1"
	opts := pgx.TxOptions{IsoLevel: pgx.Serializable}
	var next, retries atomic.Int64
	err := parallel(goroutines, func(i int) error {
		row := i * BaselineSpacing
		for next.Add(1) <= int64(n) {
			for {
				err := pgx.BeginTxFunc(ctx, pool, opts, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, update, row)
					return err
				})
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "40001" {
					retries.Add(1)
					continue
				}
				if err != nil {
					return err
				}
				break
			}
		}
		return nil
	})
	return retries.Load(), err
}
