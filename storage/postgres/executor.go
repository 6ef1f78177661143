package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/storage"
)

// dbtx is what both a pool and a transaction offer.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// executor implements storage.Executor on a pool or a transaction.
type executor struct {
	db            dbtx
	q             queries
	channelPrefix string
	// pool is set when db is the pool (not a transaction); bookkeeping
	// statements then commit without waiting for the WAL flush.
	pool *pgxpool.Pool
}

// bookkeepingSettings are the transaction-local settings of a bookkeeping
// transaction: no wait for the WAL flush, and the statement's cached generic
// plan. Without the latter PostgreSQL keeps planning a statement afresh when
// the plan it makes for each call's values looks cheaper than the generic
// one: JobComplete, whose batch size the planner sees only in a custom plan,
// was planned at every call (0.5 ms of planning for 0.1 ms of work). Every
// bookkeeping statement is an index lookup whose generic plan is the plan.
const bookkeepingSettings = "SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)"

// bookkeeping runs one queue or lease bookkeeping statement. On the pool it
// runs in its own transaction with synchronous_commit off, pipelined in one
// round trip: the commit does not wait for the WAL flush. That is safe for
// these writes (claims, completions, heartbeats, leases): one lost in a
// database crash only means a job runs again, which at-least-once delivery
// allows, and a later synchronous commit (a step's) flushes it anyway.
// The same transaction plans the statement generically (see
// bookkeepingSettings). Inside a caller's transaction the statement simply
// runs there.
func (e *executor) bookkeeping(ctx context.Context, sql string, args []any, read func(pgx.Rows) error) error {
	if e.pool == nil {
		rows, err := e.db.Query(ctx, sql, args...)
		if err != nil {
			return wrapErr(err)
		}
		defer rows.Close()
		if err := read(rows); err != nil {
			return err
		}
		rows.Close()
		return wrapErr(rows.Err())
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(bookkeepingSettings)
	b.Queue(sql, args...)
	b.Queue("COMMIT")
	br := e.pool.SendBatch(ctx, b)
	defer br.Close()
	for i := 0; i < 2; i++ {
		if _, err := br.Exec(); err != nil {
			return wrapErr(err)
		}
	}
	return readAndCommit(br, read)
}

// readAndCommit reads the rows of br's next statement with read, then the
// result of the COMMIT queued after it, and closes br: the end of a batch
// that wraps a statement in a transaction of its own.
func readAndCommit(br pgx.BatchResults, read func(pgx.Rows) error) error {
	rows, err := br.Query()
	if err != nil {
		return wrapErr(err)
	}
	if err := read(rows); err != nil {
		rows.Close()
		return err
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrapErr(err)
	}
	if _, err := br.Exec(); err != nil {
		return wrapErr(err)
	}
	return wrapErr(br.Close())
}

// refusedDB stands for the database in a driver whose schema name was
// refused (see New): every statement fails with that error.
type refusedDB struct{ err error }

func (r refusedDB) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, r.err
}
func (r refusedDB) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, r.err }
func (r refusedDB) QueryRow(context.Context, string, ...any) pgx.Row        { return refusedRow(r) }

type refusedRow struct{ err error }

func (r refusedRow) Scan(...any) error { return r.err }

// txExecutor is an executor inside a transaction.
type txExecutor struct {
	executor
	tx pgx.Tx
}

var _ storage.Tx = (*txExecutor)(nil)

func (t *txExecutor) Commit(ctx context.Context) error   { return wrapErr(t.tx.Commit(ctx)) }
func (t *txExecutor) Rollback(ctx context.Context) error { return wrapErr(t.tx.Rollback(ctx)) }

// Notify sends a notification on a topic of the driver's schema; in a
// transaction, PostgreSQL delivers it on commit.
func (e *executor) Notify(ctx context.Context, p storage.NotifyParams) error {
	topic, payload := p.Topic, p.Payload
	_, err := e.db.Exec(ctx, e.q.Get("Notify"), e.channelPrefix+topic, payload)
	return wrapErr(err)
}
