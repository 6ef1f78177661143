package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/base/aftercommit"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// ErrNotFinished is returned by DeleteRun for a run that cannot be deleted
// yet: it has not finished (pending, running, awaiting, halted), its finish
// has not been settled (its OnFinish callback staged, its parent counted
// off), its OnFinish callback (or another job of it) has not finished, a
// child run of it has not finished, or it is a child whose parent has not
// finished (the parent may still read its result). The error says which,
// and also matches acidic.ErrInUse. Nothing is deleted.
var ErrNotFinished = errors.New("workflow: run has not finished")

// Default retentions of finished runs.
const (
	// DefaultSucceededRetention keeps succeeded runs a week.
	DefaultSucceededRetention = 7 * 24 * time.Hour
	// DefaultFailedRetention keeps failed runs 30 days, for troubleshooting
	// and retrying.
	DefaultFailedRetention = 30 * 24 * time.Hour
	// DefaultCancelledRetention keeps cancelled runs a week.
	DefaultCancelledRetention = 7 * 24 * time.Hour
)

// Retention says how long finished runs are kept, with their step logs,
// before maintenance deletes them, per final state, and which workflows keep
// theirs for ever. The zero value keeps succeeded and cancelled runs a week
// and failed runs 30 days. A duration of zero takes the default;
// queue.KeepForever keeps the runs in that state for ever; any other
// negative duration, or a kept workflow that is no valid name, makes
// NewEngine return ErrInvalid.
//
// A run's idempotency key is free again once the run is deleted: enqueueing
// with the key after that makes a new run. Keep runs at least as long as a
// duplicate enqueue (a redelivered webhook, a client retrying) may arrive.
//
// What a finished run still owes is never pruned: a run is kept until its
// OnFinish callback has run and its children have finished, and a child run
// is kept as long as its parent exists (a parent may read its children's
// results in any step, also after a retry); once the parent is deleted, the
// child's own retention applies. Deleting a run deletes its step log and its
// finished jobs, except those of the queues in queue.Retention.KeepQueues,
// which stay, detached from the run.
type Retention struct {
	// Succeeded is how long succeeded runs are kept. Default
	// DefaultSucceededRetention (7 days).
	Succeeded time.Duration
	// Failed is how long failed runs are kept. Default
	// DefaultFailedRetention (30 days).
	Failed time.Duration
	// Cancelled is how long cancelled runs are kept. Default
	// DefaultCancelledRetention (7 days).
	Cancelled time.Duration
	// KeepWorkflows lists workflows whose runs are never pruned.
	KeepWorkflows []string
}

// withDefaults fills the zero durations and checks the others.
func (r Retention) withDefaults() (Retention, error) {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Succeeded", &r.Succeeded, DefaultSucceededRetention},
		{"Failed", &r.Failed, DefaultFailedRetention},
		{"Cancelled", &r.Cancelled, DefaultCancelledRetention},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0 && *d.v != queue.KeepForever:
			return r, fmt.Errorf("%w: Retention.%s is negative (%s); use queue.KeepForever to keep the runs", ErrInvalid, d.name, *d.v)
		}
	}
	for _, w := range r.KeepWorkflows {
		if err := storage.CheckName("Retention.KeepWorkflows", w); err != nil {
			return r, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return r, nil
}

// byState returns the retention of each final state that is pruned.
func (r Retention) byState() map[acidic.RunState]time.Duration {
	out := map[acidic.RunState]time.Duration{}
	for s, d := range map[acidic.RunState]time.Duration{
		acidic.RunSucceeded: r.Succeeded, acidic.RunFailed: r.Failed, acidic.RunCancelled: r.Cancelled} {
		if d != queue.KeepForever {
			out[s] = d
		}
	}
	return out
}

// Runs are pruned a batch at a time, each batch one short statement, at
// most runPruneBatches batches per maintenance pass.
const (
	runPruneBatchSize = 500
	runPruneBatches   = 10
)

// PruneRuns deletes finished runs past their Config.Retention, with their
// step logs, a batch at a time (each batch one short statement that skips
// runs others hold), and returns how many it deleted. The engine's queue
// calls it in every maintenance pass (see queue.Config.MaintainFunc); tests
// and tools may call it directly.
func (e *Engine) PruneRuns(ctx context.Context) (int, error) {
	p := storage.RunPruneParams{
		Retention:     e.cfg.Retention.byState(),
		KeepWorkflows: e.cfg.Retention.KeepWorkflows,
		KeepJobQueues: e.cfg.Queue.Retention.KeepQueues,
		Limit:         runPruneBatchSize,
	}
	if len(p.Retention) == 0 {
		return 0, nil
	}
	total := 0
	for range runPruneBatches {
		n, err := e.drv.RunPrune(ctx, p)
		total += n
		if err != nil {
			return total, fmt.Errorf("workflow: prune runs: %w", err)
		}
		if n < p.Limit || ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		e.cfg.Logger.Debug("workflow: pruned finished runs", "runs", total)
	}
	return total, nil
}

// DeleteRun deletes a finished run with its step log and its finished jobs
// (those of the queues in queue.Retention.KeepQueues stay, detached), on
// purpose, whatever its retention. Its child runs stay, detached (their
// ParentRunID cleared), and are pruned by their own retention. The run's
// idempotency key is free again afterwards.
//
// A run that cannot be deleted yet is ErrNotFinished, saying why (see
// ErrNotFinished), and nothing is deleted; an unknown id matches
// acidic.ErrNotFound.
//
// A run's OnFinish callback may delete its own run: called with the
// callback's ctx, DeleteRun lets the callback's own job be unfinished (it is
// running). Make it the callback's last act: should the callback fail after
// it, the callback is not called again, since its run is gone (its job
// completes). A child run's callback cannot delete its run while the parent
// has not finished.
func (e *Engine) DeleteRun(ctx context.Context, id uuid.UUID) error {
	return e.deleteRun(ctx, e.drv, id)
}

// DeleteRunTx is DeleteRun inside the caller's transaction (see
// postgres.Driver.WrapTx): the run is deleted only if tx commits, and is
// locked until then. Use it to archive a run's record in the same
// transaction that deletes it.
func (e *Engine) DeleteRunTx(ctx context.Context, tx storage.Tx, id uuid.UUID) error {
	return e.deleteRun(ctx, tx, id)
}

func (e *Engine) deleteRun(ctx context.Context, ex storage.Executor, id uuid.UUID) error {
	_, err := ex.RunDelete(ctx, storage.RunDeleteParams{
		ID:            id,
		Except:        finishingJob(ctx, id),
		KeepJobQueues: e.cfg.Queue.Retention.KeepQueues,
	})
	if errors.Is(err, acidic.ErrInUse) {
		return fmt.Errorf("%w: %w", ErrNotFinished, err)
	}
	if err != nil {
		return fmt.Errorf("workflow: delete run %s: %w", id, err)
	}
	return nil
}

// finishing marks the context of a run's OnFinish callback with the job
// running it, so that the callback may delete its own run.
type finishing struct {
	run uuid.UUID
	job int64
}

type finishingKey struct{}

func withFinishing(ctx context.Context, runID uuid.UUID, job int64) context.Context {
	return context.WithValue(ctx, finishingKey{}, finishing{run: runID, job: job})
}

// finishingJob returns the job of the OnFinish callback of run id whose
// context ctx is, or 0.
func finishingJob(ctx context.Context, id uuid.UUID) int64 {
	if f, ok := ctx.Value(finishingKey{}).(finishing); ok && f.run == id {
		return f.job
	}
	return 0
}

// unfinishedRunStates are the states CancelMany cancels by default.
var unfinishedRunStates = []acidic.RunState{acidic.RunPending, acidic.RunRunning, acidic.RunAwaiting, acidic.RunHalted}

// CancelMany cancels every run matching f that has not finished, each as
// Cancel does (in a transaction of its own: the run's jobs cancelled, its
// unfinished children cancelled, its OnFinish staged once, its parent
// counted off), and returns the runs it cancelled. Without States, f
// matches the unfinished states (pending, running, awaiting, halted);
// finished runs it matches are skipped, as are runs that finished (or were
// deleted) before their turn came. f must name at least one of States,
// Workflow or ParentRunID: an empty filter, which would cancel every run, is
// ErrInvalid. It stops at the first other error, returning the runs
// cancelled so far.
func (e *Engine) CancelMany(ctx context.Context, f acidic.RunFilter) ([]*acidic.Run, error) {
	if len(f.States) == 0 && f.Workflow == "" && f.ParentRunID == uuid.Nil {
		return nil, fmt.Errorf("%w: %w: cancel by filter: name at least one of states, workflow or parent run", ErrInvalid, acidic.ErrInvalid)
	}
	if len(f.States) == 0 {
		f.States = unfinishedRunStates
	}
	var out []*acidic.Run
	err := storage.EachRunPage(ctx, e.drv, f, func(page []*acidic.Run) error {
		for _, r := range page {
			if r.State.Final() {
				continue
			}
			got, changed, err := e.cancel(ctx, r.ID, "cancelled by operator")
			if errors.Is(err, acidic.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if changed {
				out = append(out, got)
			}
		}
		return nil
	})
	return out, err
}

// cancel cancels one run in a transaction of its own and reports whether
// it changed it; a run it cancelled publishes run.cancelled, then what the
// cancel ended with it (its jobs' runs, its children), once committed.
func (e *Engine) cancel(ctx context.Context, id uuid.UUID, reason string) (*acidic.Run, bool, error) {
	var out *acidic.Run
	var changed bool
	var after *aftercommit.List
	err := e.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		// A list of its own for every run of the transaction: only the
		// one that commits is kept.
		ctx, after = aftercommit.With(ctx)
		rec, ch, err := e.cancelTx(ctx, tx, id, reason)
		if err != nil {
			return err
		}
		out, changed = rec, ch
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("workflow: cancel %s: %w", id, err)
	}
	if changed {
		e.publishRun(events.RunCancelled, nil, out)
	}
	after.Run()
	return out, changed, nil
}
