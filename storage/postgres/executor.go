package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
}

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
func (e *executor) Notify(ctx context.Context, topic, payload string) error {
	_, err := e.db.Exec(ctx, e.q.get("Notify"), e.channelPrefix+topic, payload)
	return wrapErr(err)
}
