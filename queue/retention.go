package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// KeepForever, as a retention, keeps finished rows in that state for ever.
// It is the only negative duration a retention may hold.
const KeepForever time.Duration = -1

// Default retentions of finished jobs.
const (
	// DefaultCompletedRetention keeps completed jobs a day.
	DefaultCompletedRetention = 24 * time.Hour
	// DefaultCancelledRetention keeps cancelled jobs a day.
	DefaultCancelledRetention = 24 * time.Hour
	// DefaultDiscardedRetention keeps discarded jobs (failures) a week, for
	// troubleshooting.
	DefaultDiscardedRetention = 7 * 24 * time.Hour
)

// Retention says how long finished jobs are kept before maintenance deletes
// them, per final state, and which queues keep theirs for ever. The zero
// value keeps completed and cancelled jobs a day and discarded jobs a week.
// A duration of zero takes the default; KeepForever keeps the jobs in that
// state for ever; any other negative duration is ErrInvalid. (To prune jobs
// as soon as possible, give a tiny duration, such as time.Nanosecond.)
//
// Whatever its age, a cancelled or discarded job is kept while a pending
// job depends on it (its dependents have not learnt it failed yet), and a
// finished job is kept while its attempt still holds its workflow run's
// lease. A job that carried a workflow run is deleted with the run if the
// run goes first (see workflow.Retention), unless its queue is in
// KeepQueues.
//
// A unique job blocks its duplicates only while it exists: once pruned, its
// key is free again, whatever its UniqueOptions.States.
//
// Pruning runs in every maintenance pass (Config.MaintenanceInterval), a
// batch of 1,000 jobs at a time, each batch one statement that skips the
// rows others hold, at most 10 batches per pass.
type Retention struct {
	// Completed is how long completed jobs are kept. Default
	// DefaultCompletedRetention (24h).
	Completed time.Duration
	// Cancelled is how long cancelled jobs are kept. Default
	// DefaultCancelledRetention (24h).
	Cancelled time.Duration
	// Discarded is how long discarded jobs are kept. Default
	// DefaultDiscardedRetention (7 days).
	Discarded time.Duration
	// KeepQueues lists queues whose finished jobs are never pruned.
	KeepQueues []string
}

// withDefaults fills the zero durations and checks the others.
func (r Retention) withDefaults() (Retention, error) {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Completed", &r.Completed, DefaultCompletedRetention},
		{"Cancelled", &r.Cancelled, DefaultCancelledRetention},
		{"Discarded", &r.Discarded, DefaultDiscardedRetention},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0 && *d.v != KeepForever:
			return r, fmt.Errorf("%w: Retention.%s is negative (%s); use KeepForever to keep the jobs", ErrInvalid, d.name, *d.v)
		}
	}
	for _, q := range r.KeepQueues {
		if err := storage.CheckName("Retention.KeepQueues", q); err != nil {
			return r, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return r, nil
}

// byState returns the retention of each final state that is pruned.
func (r Retention) byState() map[acidic.JobState]time.Duration {
	out := map[acidic.JobState]time.Duration{}
	for s, d := range map[acidic.JobState]time.Duration{
		acidic.JobCompleted: r.Completed, acidic.JobCancelled: r.Cancelled, acidic.JobDiscarded: r.Discarded} {
		if d != KeepForever {
			out[s] = d
		}
	}
	return out
}

// Pruning goes a batch at a time, each batch one short statement, at most
// pruneBatches batches per maintenance pass so that a pass behind a large
// backlog still returns to its other duties.
const (
	pruneBatchSize = 1000
	pruneBatches   = 10
)

// prune is the pruning of a maintenance pass: finished jobs past their
// retention, then whatever MaintainFunc does (a workflow engine's runs). It
// returns how many jobs it deleted; MaintainFunc's error is logged.
func (c *Client) prune(ctx context.Context) (int, error) {
	pruned, err := c.pruneJobs(ctx)
	if f := c.cfg.MaintainFunc; f != nil && ctx.Err() == nil {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("queue: MaintainFunc failed", "err", err)
		}
	}
	return pruned, err
}

// pruneJobs deletes finished jobs past their retention, a batch at a time,
// until a batch comes back short, and returns how many it deleted.
func (c *Client) pruneJobs(ctx context.Context) (int, error) {
	p := storage.JobPruneByStateParams{
		Retention:  c.cfg.Retention.byState(),
		KeepQueues: c.cfg.Retention.KeepQueues,
		Limit:      pruneBatchSize,
	}
	if len(p.Retention) == 0 {
		return 0, nil
	}
	total := 0
	for range pruneBatches {
		n, err := c.drv.JobPruneByState(ctx, p)
		total += n
		if err != nil || n < p.Limit || ctx.Err() != nil {
			return total, err
		}
	}
	return total, nil
}

// unfinishedJobStates are the states CancelMany cancels by default.
var unfinishedJobStates = []acidic.JobState{acidic.JobPending, acidic.JobAvailable, acidic.JobScheduled, acidic.JobRunning, acidic.JobRetryable}

// CancelMany cancels every job matching f that has not finished, each as
// Cancel does (in a transaction of its own, a run carried by the job ending
// with it), and returns the jobs it cancelled. Without States, f matches
// the unfinished states; finished jobs it matches are skipped. f must name
// at least one of States, Queue, Kind, RunID or IDs: an empty filter, which
// would cancel every job, is ErrInvalid. It stops at the first error,
// returning the jobs cancelled so far: on a client without
// Config.EndedFunc, that is the first job that carries a workflow run (see
// CancelTx); cancel those through a workflow.Engine's queue.
func (c *Client) CancelMany(ctx context.Context, f acidic.JobFilter) ([]*acidic.Job, error) {
	if len(f.States) == 0 && f.Queue == "" && f.Kind == "" && f.RunID == [16]byte{} && len(f.IDs) == 0 {
		return nil, fmt.Errorf("%w: cancel by filter: name at least one of states, queue, kind, run or ids", ErrInvalid)
	}
	if len(f.States) == 0 {
		f.States = unfinishedJobStates
	}
	var out []*acidic.Job
	err := c.eachJob(ctx, f, func(j *acidic.Job) error {
		if j.State.Final() {
			return nil
		}
		got, err := c.Cancel(ctx, j.ID)
		if err != nil {
			return err
		}
		if got.State == acidic.JobCancelled {
			out = append(out, got)
		}
		return nil
	})
	return out, err
}

// eachJob calls fn with every job f matches, in ID order, reading them a
// page of f.Limit (1000 when unset) at a time; it stops at fn's first
// error and returns it.
func (c *Client) eachJob(ctx context.Context, f acidic.JobFilter, fn func(*acidic.Job) error) error {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	for {
		page, err := c.drv.JobList(ctx, f)
		if err != nil {
			return err
		}
		for _, j := range page {
			if err := fn(j); err != nil {
				return err
			}
		}
		if len(page) < f.Limit {
			return nil
		}
		f.AfterID = page[len(page)-1].ID
	}
}
