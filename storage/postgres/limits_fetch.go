package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic/storage"
)

// JobFetchLimited claims jobs under limits that hold across clients; see
// storage.LimitedFetcher. Its transaction is sent in one round trip, like
// a bookkeeping statement (and, like one, commits without waiting for the
// WAL flush): BEGIN, the completions of p.Complete (JobComplete), the lock
// on the queue's row of queue_limits (JobFetchLimitedLock), the fetch
// (JobFetchLimited) in a statement of its own, so that its snapshot sees
// what the earlier holders of the lock claimed and this transaction
// completed, and COMMIT. The completions come before the lock, so that the
// lock is held no longer for them.
func (d *Driver) JobFetchLimited(ctx context.Context, p storage.JobFetchLimitedParams) (storage.JobFetchLimitedResult, error) {
	var res storage.JobFetchLimitedResult
	if err := p.Limits.Validate(); err != nil {
		return res, fmt.Errorf("fetch jobs of queue %q: %w", p.Queue, err)
	}
	if err := storage.CheckName("queue", p.Queue); err != nil {
		return res, fmt.Errorf("fetch jobs: %w", err)
	}
	if d.refused != nil {
		return res, d.refused
	}
	lookahead := p.Limits.Lookahead
	if lookahead == 0 {
		lookahead = storage.DefaultLookahead
	}
	fields := p.Limits.PartitionBy
	if fields == nil {
		fields = []string{}
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(bookkeepingSettings)
	if len(p.Complete) > 0 {
		ids, nums := attemptArrays(p.Complete)
		b.Queue(d.q.Get("JobComplete"), ids, nums, d.channelPrefix+storage.TopicInsert)
	}
	args := []any{p.Queue, p.Max, p.WorkerID, p.SkipRunJobs, fields,
		int64(p.Limits.Concurrency), int64(p.Limits.RateLimit), p.Limits.RatePeriod.Microseconds(), lookahead}
	if len(fields) == 0 {
		b.Queue(d.q.Get("JobFetchLimitedSlots"), p.Queue, int64(p.Limits.Concurrency), int64(p.Limits.RateLimit))
		b.Queue(d.q.Get("JobFetchLimitedQueue"), args[:8]...)
	} else {
		b.Queue(d.q.Get("JobFetchLimitedLock"), p.Queue)
		b.Queue(d.q.Get("JobFetchLimited"), args...)
	}
	b.Queue("COMMIT")
	err := func() error {
		br := d.pool.SendBatch(ctx, b)
		defer br.Close()
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return wrapErr(err)
			}
		}
		if len(p.Complete) > 0 {
			done, err := br.Query()
			if err != nil {
				return wrapErr(err)
			}
			res.Completed, err = pgx.CollectRows(done, pgx.RowTo[int64])
			if err != nil {
				return wrapErr(err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return wrapErr(err)
		}
		return readAndCommit(br, func(rows pgx.Rows) error { return readLimitedFetch(rows, &res) })
	}()
	if err != nil {
		return storage.JobFetchLimitedResult{}, fmt.Errorf("fetch jobs of queue %q under limits: %w", p.Queue, err)
	}
	slices.SortFunc(res.Jobs, func(a, b storage.FetchedJob) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		if c := a.ScheduledAt.Compare(b.ScheduledAt); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return res, nil
}

// readLimitedFetch reads JobFetchLimited's rows: a claimed job with its
// leased run and the fetch's summary (held, retry_us) on each, or the
// summary alone on a row whose job columns are NULL.
func readLimitedFetch(rows pgx.Rows, res *storage.JobFetchLimitedResult) error {
	var (
		held    bool
		retryUS pgtype.Int8
	)
	for rows.Next() {
		if rows.RawValues()[0] == nil {
			skip := make([]any, len(rows.FieldDescriptions()))
			skip[len(skip)-2], skip[len(skip)-1] = &held, &retryUS
			if err := rows.Scan(skip...); err != nil {
				return wrapErr(err)
			}
			continue
		}
		var (
			leasedJob pgtype.Int8
			run       runRow
		)
		dest := append(append([]any{&leasedJob}, run.dest()...), &held, &retryUS)
		j, err := scanJobWith(rows, dest...)
		if err != nil {
			return err
		}
		res.Jobs = append(res.Jobs, storage.FetchedJob{Job: j, LeasedRun: run.run()})
	}
	res.Held = held
	if retryUS.Valid && retryUS.Int64 > 0 {
		res.RetryIn = time.Duration(retryUS.Int64) * time.Microsecond
	}
	return nil
}
