package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// retentionArrays turns a retention map into the parallel arrays of states
// and microseconds the prune statements take, in a stable order.
func retentionArrays[S ~string](m map[S]time.Duration) ([]string, []int64) {
	states := make([]string, 0, len(m))
	for s := range m {
		states = append(states, string(s))
	}
	slices.Sort(states)
	keep := make([]int64, len(states))
	for i, s := range states {
		keep[i] = m[S(s)].Microseconds()
	}
	return states, keep
}

// names returns list, or an empty list for nil, so that "= ANY" gets an
// array rather than NULL.
func names(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func (e *executor) JobPruneByState(ctx context.Context, p storage.JobPruneByStateParams) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if len(p.Retention) == 0 {
		return 0, nil
	}
	states, keep := retentionArrays(p.Retention)
	tag, err := e.db.Exec(ctx, e.q.Get("JobPruneByState"), states, keep, names(p.KeepQueues), p.Limit)
	if err != nil {
		return 0, fmt.Errorf("prune jobs: %w", wrapErr(err))
	}
	return int(tag.RowsAffected()), nil
}

func (e *executor) RunPrune(ctx context.Context, p storage.RunPruneParams) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if len(p.Retention) == 0 {
		return 0, nil
	}
	states, keep := retentionArrays(p.Retention)
	var n int
	err := e.db.QueryRow(ctx, e.q.Get("RunPrune"), states, keep, names(p.KeepWorkflows), names(p.KeepJobQueues), p.Limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("prune runs: %w", wrapErr(err))
	}
	return n, nil
}

func (e *executor) RunDelete(ctx context.Context, p storage.RunDeleteParams) (*acidic.Run, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if e.pool == nil {
		return e.runDelete(ctx, p)
	}
	// On the pool: the lock and the delete need one transaction.
	tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("delete run %s: %w", p.ID, wrapErr(err))
	}
	in := executor{db: tx, q: e.q, channelPrefix: e.channelPrefix}
	r, err := in.runDelete(ctx, p)
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := commit(ctx, tx); err != nil {
		return nil, fmt.Errorf("delete run %s: %w", p.ID, err)
	}
	return r, nil
}

// runDelete locks the run, then checks and deletes it in a statement whose
// snapshot follows the lock.
func (e *executor) runDelete(ctx context.Context, p storage.RunDeleteParams) (*acidic.Run, error) {
	if _, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunLock"), runID(p.ID))); err != nil {
		return nil, fmt.Errorf("delete run %s: %w", p.ID, err)
	}
	var reason pgtype.Text
	var r runRow
	err := e.db.QueryRow(ctx, e.q.Get("RunDelete"), runID(p.ID), p.Except, names(p.KeepJobQueues)).
		Scan(append([]any{&reason}, r.dest()...)...)
	if err != nil {
		// No row: the run went between the lock and the delete (only a
		// transaction of the caller's own could do that).
		return nil, fmt.Errorf("delete run %s: %w", p.ID, wrapErr(err))
	}
	if reason.Valid {
		return nil, fmt.Errorf("%w: run %s: %s", acidic.ErrInUse, p.ID, storage.Text(reason.String))
	}
	return r.run(), nil
}
