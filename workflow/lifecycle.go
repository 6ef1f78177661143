package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/base/aftercommit"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/storage"
)

// The run's life has one owner: this file, with the step transactions the
// executor (execute.go) builds through stepUpdate. Every write of a run's
// state is made here or there, and the table below (also in
// docs/architecture.md) lists each transition and its writer.
//
//	from                    event                                     to          written by
//	─                       Enqueue                                   pending     Engine.enqueue (RunInsert)
//	pending, running        a job attempt of the run takes the lease  running     JobFetch / run.Acquire
//	running                 a step commits (more steps follow)        running     step transaction (stepUpdate)
//	running                 a step snoozes                            pending     step transaction
//	running                 a step halts                              halted      step transaction
//	running                 an await step commits                     awaiting    step transaction
//	running                 the last step commits                     succeeded   step transaction, then settle
//	running                 a step returns Cancel, or fails for a     cancelled,  endRun (RunRelease), then settle, in
//	                        reason no retry can fix                   failed      one transaction; then the job ends
//	running                 a step fails, or the attempt ends         pending     RunRelease (recordFailure), or the
//	                        (attempts left)                                       queue's end of the attempt
//	pending, running        the last unfinished job of the run's      failed,     jobsEnded (the queue's EndedFunc),
//	                        workflow ends for good (attempts out,     cancelled   in the transaction that ends the job
//	                        panic, Discard, rescue of the last
//	                        attempt, unknown workflow, an
//	                        operator's job cancel)
//	awaiting                its last child settles                    pending     settle (the child's), with the
//	                                                                              parent's next job
//	pending, running,       Engine.Cancel                             cancelled   cancelTx, then settle
//	awaiting, halted
//	failed, cancelled,      Engine.Retry                              pending     Retry, with a job
//	halted
//	succeeded, failed,      settle: OnFinish staged, parent counted   (same)      settle, once per finish
//	cancelled               off (RunSettle guards it)
//	succeeded, failed,      retention passed, or DeleteRun            deleted     PruneRuns (RunPrune) or
//	cancelled, settled      (nothing unfinished needs the run)                    DeleteRun (RunDelete)
//
// A run that rests (awaiting, halted) or has finished is never leased: a job
// delivered for it again finds nothing to do. A lease is held by one job
// attempt and lives as long as that attempt runs (its heartbeat keeps it
// running); it is taken over only once the attempt has ended.

// jobsEnded is the queue's EndedFunc: it runs in the transaction that ended
// jobs for good. A live run whose last unfinished job of its workflow ended
// ends with it (failed, or cancelled), and is settled in the same
// transaction. A finished run that was not settled yet (its executor died
// between the step that finished it and the settling) is settled now. The
// run's RunFinished is published once that transaction committed
// (aftercommit), at once when the caller owns it (queue.Client.CancelTx).
func (e *Engine) jobsEnded(ctx context.Context, tx storage.Tx, jobs []*acidic.Job) error {
	for _, j := range jobs {
		if j.RunID == uuid.Nil || j.Kind == FinishKind {
			continue
		}
		state := acidic.RunFailed
		if j.State == acidic.JobCancelled {
			state = acidic.RunCancelled
		}
		r, ended, err := tx.RunEnd(ctx, storage.RunEndParams{ID: j.RunID, Job: j.ID, Kind: j.Kind, State: state, Error: endReason(j)})
		if errors.Is(err, acidic.ErrNotFound) {
			continue // the run was deleted
		}
		if err != nil {
			return err
		}
		if !ended && r.State == acidic.RunAwaiting && e.resumes(j, r) {
			// The job that was to resume the run ended without doing so:
			// nothing else will, so the run ends with it.
			if r, ended, err = tx.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunAwaiting}, To: state, Error: endReason(j)}); err != nil {
				return err
			}
		}
		if ended {
			// Published (and logged) once the transaction committed, after
			// the job's own event: it may yet roll back, or run again.
			aftercommit.Do(ctx, func() {
				e.publishRun(events.RunFinished, j, r)
				e.cfg.Logger.Info("workflow: run ended with its job", "run", r.ID, "workflow", r.Workflow, "state", r.State,
					"step", r.RecoveryPoint, "job", j.ID, "err", r.Error)
			})
		}
		if r.State.Final() && r.SettledAt == nil {
			if err := e.settle(ctx, tx, e.definitionOrNil(r.Workflow), r); err != nil {
				return err
			}
		}
	}
	return nil
}

// resumes reports whether job is the resume job (awaitjobs.go) of the
// await run r rests at.
func (e *Engine) resumes(job *acidic.Job, r *acidic.Run) bool {
	var args resumeArgs
	if json.Unmarshal(job.Args, &args) != nil || args.Resume == "" || len(job.DependsOn) == 0 {
		return false
	}
	d := e.definitionOrNil(r.Workflow)
	if d == nil {
		return true
	}
	names := d.stepNames()
	i := slices.Index(names, r.RecoveryPoint)
	return i > 0 && names[i-1] == args.Resume
}

// endRun ends a run its lease holder decided to end for good (a step's
// Cancel, a reason no retry can fix), whatever other job may carry it: the
// run takes state and reason and is settled, in one transaction, fenced by
// the lease. The caller then ends its job; jobsEnded finds the run ended.
// Should this fail (the database, a lost lease), the job's end still ends
// the run through jobsEnded, unless another job carries it on.
func (e *Engine) endRun(ctx context.Context, d Definition, rec *acidic.Run, lease run.Lease, state acidic.RunState, reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var ended *acidic.Run
	err := e.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		next, err := tx.RunRelease(ctx, storage.RunReleaseParams{ID: rec.ID, Token: lease.Token, State: state, Error: reason})
		if err != nil {
			return err
		}
		ended = next
		return e.settle(ctx, tx, d, next)
	})
	if err == nil {
		// After the event of the job attempt that ended it (its
		// job.cancelled or job.discarded), as for a run that ends with its
		// job: aftercommit.Do defers it to the attempt's end.
		aftercommit.Do(ctx, func() { e.publishRun(events.RunFinished, nil, ended) })
	}
	if err != nil {
		e.cfg.Logger.Warn("workflow: could not end the run; its job's end will", "run", rec.ID, "state", state, "err", err)
	}
}

// endReason is the run's error when job j, which carried it, ended for good.
func endReason(j *acidic.Job) string {
	var last string
	if n := len(j.Errors); n > 0 && j.Errors[n-1].Attempt == j.Attempt {
		last = j.Errors[n-1].Error
	}
	switch {
	case j.State == acidic.JobCancelled && last != "":
		return last
	case j.State == acidic.JobCancelled:
		return fmt.Sprintf("job %d cancelled", j.ID)
	case j.Attempt >= j.MaxAttempts && last != "":
		return fmt.Sprintf("attempts exhausted (%d of %d): %s", j.Attempt, j.MaxAttempts, last)
	case last != "":
		return last
	default:
		return fmt.Sprintf("job %d discarded after attempt %d of %d", j.ID, j.Attempt, j.MaxAttempts)
	}
}

// settle meets the obligations of a run's finish in tx, exactly once per
// finish (RunSettle marks the run, and only the transaction that marks it
// goes on): it stages the OnFinish callback, and counts a child off its
// awaiting parent, enqueueing the parent's next job when it was the last.
// The counting runs in its own READ COMMITTED transaction, never in the
// child's SERIALIZABLE step transaction, so siblings finishing together
// cannot make a child's step run again.
func (e *Engine) settle(ctx context.Context, tx storage.Executor, d Definition, r *acidic.Run) error {
	r, marked, err := tx.RunSettle(ctx, storage.RunSettleParams{ID: r.ID})
	if err != nil || !marked {
		return err
	}
	return e.owed(ctx, tx, d, r)
}

// settleNow settles a finished run in a transaction of its own.
func (e *Engine) settleNow(ctx context.Context, d Definition, r *acidic.Run) error {
	return e.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		return e.settle(ctx, tx, d, r)
	})
}

// owes reports whether a finished run of d has obligations to meet: a
// finish callback to stage or a parent to count it off.
func owes(d Definition, r *acidic.Run) bool {
	return hasFinish(d) || r.ParentRunID != uuid.Nil
}

// hasFinish reports whether runs of d may have a finish callback to stage.
// A workflow unknown here (nil: an operator's tool cancelled the run) may:
// its job is staged, and the engines that know the workflow decide.
func hasFinish(d Definition) bool { return d == nil || d.options().OnFinish != nil }

// owed does what a finished run owes, in the transaction that settles it.
func (e *Engine) owed(ctx context.Context, tx storage.Executor, d Definition, r *acidic.Run) error {
	if err := e.stageFinish(ctx, tx, d, r); err != nil {
		return err
	}
	if r.ParentRunID == uuid.Nil {
		return nil
	}
	parent, counted, err := tx.RunChildFinished(ctx, storage.RunChildFinishedParams{ChildID: r.ID})
	if err != nil || !counted || parent.State != acidic.RunPending {
		return err
	}
	return e.enqueueRunJob(ctx, tx, parent)
}

// stageFinish enqueues the finish callback job of a run that just finished,
// in the transaction that settles it.
func (e *Engine) stageFinish(ctx context.Context, ex storage.Executor, d Definition, r *acidic.Run) error {
	if !hasFinish(d) {
		return nil
	}
	return e.enqueueForRun(ctx, ex, r.ID, queue.EnqueueParams{Kind: FinishKind, Args: finishArgs{RunID: r.ID}, Opts: queue.EnqueueOptions{Queue: r.Queue}})
}

// enqueueRunJob enqueues the job that executes a run's next steps. The
// workflow need not be registered in this process (a CLI retrying a run):
// then the queue's defaults apply for priority and attempts.
func (e *Engine) enqueueRunJob(ctx context.Context, ex storage.Executor, r *acidic.Run) error {
	opts := queue.EnqueueOptions{Queue: r.Queue}
	if d, err := e.definition(r.Workflow); err == nil {
		opts.Priority, opts.MaxAttempts = d.options().Priority, d.options().MaxAttempts
	}
	return e.enqueueForRun(ctx, ex, r.ID, queue.EnqueueParams{Kind: r.Workflow, Args: json.RawMessage("{}"), Opts: opts})
}

// enqueueForRun enqueues a job that belongs to the run id (its RunID set):
// the job that executes the run, or its finish callback.
func (e *Engine) enqueueForRun(ctx context.Context, ex storage.Executor, id uuid.UUID, p queue.EnqueueParams) error {
	job, err := e.q.JobInsertContext(ctx, p)
	if err != nil {
		return err
	}
	return insertRunJob(ctx, ex, job, id)
}

// insertRunJob inserts job as the job of run id. Such jobs carry no unique
// key of their own: the run's idempotency key is what makes them unique.
func insertRunJob(ctx context.Context, ex storage.Executor, job storage.JobInsert, id uuid.UUID) error {
	job.RunID = id
	job.UniqueKey, job.UniqueStates = nil, 0
	if _, err := ex.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job}}); err != nil {
		return fmt.Errorf("workflow: enqueue the job of run %s: %w", id, err)
	}
	return nil
}

// definitionOrNil returns the registered workflow named name, or nil when
// this engine does not know it.
func (e *Engine) definitionOrNil(name string) Definition {
	d, err := e.definition(name)
	if err != nil {
		return nil
	}
	return d
}
