package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
)

// stepFailure carries a step's own error out of its transaction.
type stepFailure struct{ err error }

func (f *stepFailure) Error() string { return f.err.Error() }
func (f *stepFailure) Unwrap() error { return f.err }

// execute runs the job of one run: take the lease, then run steps from the
// recovery point, each in its own SERIALIZABLE transaction, until the run
// finishes, parks, or a step fails.
func (w *Workflow[A, S]) execute(ctx context.Context, e *Engine, job *queue.Job) error {
	rec, lease, err := e.lease(ctx, job)
	switch {
	case errors.Is(err, run.ErrFinished), errors.Is(err, run.ErrAwaiting):
		return nil // nothing to do: a duplicate or stale job
	case errors.Is(err, run.ErrLocked):
		e.cfg.Logger.Info("workflow: run locked by another worker; retrying later", "run", job.RunID, "job", job.ID)
		return queue.Snooze(e.cfg.LockedRetry)
	case errors.Is(err, storage.ErrNotFound):
		return queue.Discard(err)
	case err != nil:
		return err
	}

	idx := w.index(rec.RecoveryPoint)
	if idx < 0 {
		return e.failForGood(ctx, w, rec, lease, fmt.Errorf("%w: step %q of run %s is no longer defined", ErrDefinitionChanged, rec.RecoveryPoint, rec.ID))
	}
	if rec.DefinitionHash != w.hash {
		return e.failForGood(ctx, w, rec, lease, fmt.Errorf("%w: run %s was created with steps %s, the code now has %s (%v)",
			ErrDefinitionChanged, rec.ID, rec.DefinitionHash, w.hash, w.stepNames()))
	}
	args, err := decode[A](rec.Args)
	if err != nil {
		return e.failForGood(ctx, w, rec, lease, fmt.Errorf("%w: run %s into %T: %w", ErrArgsDecode, rec.ID, args, err))
	}

	if err := w.checkChildren(ctx, e, rec, idx); err != nil {
		if errors.Is(err, steps.ErrChildFailed) {
			return e.failForGood(ctx, w, rec, lease, err)
		}
		// Could not read the children (the database, say): try again later.
		// The queue records the attempt's end, which frees its lease.
		return err
	}
	for {
		step := w.steps[idx]
		started := time.Now()
		var control *steps.Control
		tries := 0
		next, err := e.drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			if tries++; tries > 1 {
				// A retry after a serialization failure: that failure may
				// mean another worker took the run over. Check before running
				// the step's code (and its outside calls) again.
				cur, err := tx.RunGet(ctx, rec.ID)
				if err != nil {
					return storage.StepCommit{}, err
				}
				if cur.LockedBy != lease.Token {
					return storage.StepCommit{}, fmt.Errorf("step %q: %w", step.Name(), storage.ErrLeaseLost)
				}
			}
			var c storage.StepCommit
			var err error
			c, control, err = w.runStep(ctx, e, tx, job, rec, lease, idx, args, started)
			return c, err
		})
		var failure *stepFailure
		switch {
		case err == nil:
		case errors.As(err, &failure):
			if c, ok := steps.AsControl(failure.err); ok && c.Kind() == steps.KindCancel {
				return e.cancelFromStep(ctx, w, rec, lease, c)
			}
			if errors.Is(failure.err, ErrStateDecode) {
				return e.failForGood(ctx, w, rec, lease, fmt.Errorf("run %s: %w", rec.ID, failure.err))
			}
			return e.recordFailure(ctx, w, job, rec, lease, idx, started, failure.err)
		case errors.Is(err, storage.ErrLeaseLost):
			// Another worker took the run over (or an operator cancelled it);
			// this attempt's step rolled back. Let the job find out later.
			e.cfg.Logger.Warn("workflow: lost the run's lease; step rolled back", "run", rec.ID, "step", step.Name())
			return queue.Snooze(e.cfg.LockedRetry)
		default:
			// The transaction itself failed (database down, retries
			// exhausted): nothing committed, retry the step later.
			return e.recordFailure(ctx, w, job, rec, lease, idx, started, err)
		}
		rec = next
		if rec.State.Final() || rec.State == run.Awaiting {
			return nil
		}
		switch {
		case control == nil:
			idx++
		case control.Kind() == steps.KindRepeat:
		case control.Kind() == steps.KindHalt:
			return nil
		case control.Kind() == steps.KindSnooze:
			return queue.Snooze(control.Delay())
		}
		if err := ctx.Err(); err != nil {
			// Stopping: the next step runs on the job's next attempt (the
			// queue records this one's end, which frees its lease).
			return err
		}
	}
}

// lease returns the job's run, leased to the job's attempt: by the fetch that
// claimed the job when it could, else now.
func (e *Engine) lease(ctx context.Context, job *queue.Job) (*storage.Run, run.Lease, error) {
	attempt := storage.JobAttempt{ID: job.ID, Attempt: job.Attempt}
	if r := job.LeasedRun; r != nil && r.ID == job.RunID && r.LockedBy != "" {
		return r, run.Lease{Token: r.LockedBy, Job: attempt}, nil
	}
	lease := run.NewLease(attempt)
	rec, err := run.Acquire(ctx, e.drv, job.RunID, lease, e.cfg.LockTimeout)
	return rec, lease, err
}

// runStep runs one step's code inside tx and returns the write that commits
// its progress, and the control the step returned, if any.
func (w *Workflow[A, S]) runStep(ctx context.Context, e *Engine, tx storage.Tx, job *queue.Job, rec *storage.Run, lease run.Lease, idx int, args A, started time.Time) (storage.StepCommit, *steps.Control, error) {
	step := w.steps[idx]
	// Decode the state afresh for every try of the transaction, so a
	// serialization retry starts from the committed state. State that does
	// not decode fails the run for good (see execute).
	state, err := decode[S](rec.Attrs)
	if err != nil {
		return storage.StepCommit{}, nil, &stepFailure{fmt.Errorf("%w: %w", ErrStateDecode, err)}
	}
	sc := steps.NewContext(steps.Env{
		Tx:       tx,
		RunID:    rec.ID,
		Workflow: w.name,
		Step:     step.Name(),
		Attempt:  job.Attempt,
		Cursor:   rec.Cursor,
		Logger:   e.cfg.Logger,
		Enqueue: func(ctx context.Context, kind string, args any, opts queue.EnqueueOptions) (*queue.Job, error) {
			return e.q.EnqueueTx(ctx, tx, kind, args, opts)
		},
		EnqueueRun: func(ctx context.Context, req steps.RunRequest, awaited bool) (uuid.UUID, error) {
			return e.enqueueFromStep(ctx, tx, rec, step.Name(), req, awaited)
		},
	}, args, &state)
	stepErr := step.Run(ctx, sc)
	control, isControl := steps.AsControl(stepErr)
	if stepErr != nil && (!isControl || control.Kind() == steps.KindCancel) {
		return storage.StepCommit{}, nil, &stepFailure{stepErr}
	}
	if control != nil && sc.Awaiting() > 0 {
		return storage.StepCommit{}, nil, &stepFailure{fmt.Errorf("%w: step %q awaited children and returned %v; an await step parks the run and must return nil",
			steps.ErrInvalid, step.Name(), control)}
	}
	attrs, err := json.Marshal(sc.State)
	if err != nil {
		return storage.StepCommit{}, nil, &stepFailure{fmt.Errorf("workflow: step %q: encode state: %w", step.Name(), err)}
	}

	upd := storage.RunUpdate{
		ID:            rec.ID,
		Token:         lease.Token,
		State:         run.Running,
		RecoveryPoint: step.Name(),
		Attrs:         attrs,
		Cursor:        rec.Cursor,
		Step: &storage.Step{
			Position:  idx,
			Name:      step.Name(),
			State:     storage.StepSucceeded,
			Attempt:   job.Attempt,
			Result:    sc.Result(),
			StartedAt: started,
		},
	}
	last := idx == len(w.steps)-1
	advance := func() {
		if last {
			upd.State, upd.Release, upd.Result = run.Succeeded, true, sc.Result()
			return
		}
		upd.RecoveryPoint, upd.Cursor = w.steps[idx+1].Name(), 0
	}
	switch {
	case control == nil && sc.Awaiting() > 0:
		// Park until the children finish; the last one enqueues the next step.
		advance()
		upd.Step.State = storage.StepAwaiting
		upd.State, upd.Awaiting, upd.Release = run.Awaiting, sc.Awaiting(), true
	case control == nil:
		advance()
	case control.Kind() == steps.KindRepeat:
		upd.Step.State = storage.StepRepeating
		upd.Cursor = sc.NextCursor()
	case control.Kind() == steps.KindSnooze:
		upd.Step.State = storage.StepRepeating
		upd.State, upd.Release = run.Pending, true
		upd.Cursor = sc.NextCursor()
	case control.Kind() == steps.KindHalt:
		upd.Step.State = storage.StepHalted
		advance()
		if !last {
			upd.State, upd.Release = run.Pending, true
		}
	}
	c := storage.StepCommit{Update: upd}
	if upd.State.Final() && owesFinal(w, rec) {
		c.Then = func(ctx context.Context, tx storage.Tx, next *storage.Run) error {
			return e.onFinal(ctx, tx, w, next)
		}
	}
	return c, control, nil
}

// checkChildren fails the run when the step before idx awaited children and
// one of them did not succeed, unless that step continues on failure.
func (w *Workflow[A, S]) checkChildren(ctx context.Context, e *Engine, rec *storage.Run, idx int) error {
	if idx == 0 {
		return nil
	}
	prev := w.steps[idx-1]
	opts, awaits := prev.Awaits()
	if !awaits || opts.ContinueOnFailure {
		return nil
	}
	failed, err := e.drv.RunList(ctx, storage.RunFilter{ParentRunID: rec.ID, ParentStep: prev.Name(),
		States: []storage.RunState{run.Failed, run.Cancelled}, Limit: 1})
	if err != nil || len(failed) == 0 {
		return err
	}
	c := failed[0]
	return fmt.Errorf("%w: step %q: child run %s (%s) %s: %s", steps.ErrChildFailed, prev.Name(), c.ID, c.Workflow, c.State, c.Error)
}

// recordFailure notes a failed step on the run and releases the lease, so the
// job's retry (or another worker) resumes at the same step. When the job has
// no attempts left the run fails for good. It returns the step's error for
// the queue to schedule the retry.
func (e *Engine) recordFailure(ctx context.Context, d Definition, job *queue.Job, rec *storage.Run, lease run.Lease, idx int, started time.Time, stepErr error) error {
	state := run.Pending
	if job.Attempt >= job.MaxAttempts {
		state = run.Failed
	}
	step := &storage.Step{
		Position:  idx,
		Name:      rec.RecoveryPoint,
		State:     storage.StepFailed,
		Attempt:   job.Attempt,
		Error:     stepErr.Error(),
		StartedAt: started,
	}
	if err := e.releaseRun(ctx, d, rec, lease, state, stepErr.Error(), step); err != nil {
		e.cfg.Logger.Warn("workflow: could not record step failure", "run", rec.ID, "err", err)
	}
	e.cfg.Logger.Info("workflow: step failed", "run", rec.ID, "workflow", rec.Workflow, "step", rec.RecoveryPoint,
		"attempt", job.Attempt, "of", job.MaxAttempts, "err", stepErr)
	return stepErr
}

// failForGood marks a run failed for a reason no retry can fix and discards
// its job.
func (e *Engine) failForGood(ctx context.Context, d Definition, rec *storage.Run, lease run.Lease, reason error) error {
	if err := e.releaseRun(ctx, d, rec, lease, run.Failed, reason.Error(), nil); err != nil {
		return err
	}
	e.cfg.Logger.Error("workflow: run failed for good", "run", rec.ID, "workflow", rec.Workflow, "err", reason)
	return queue.Discard(reason)
}

// cancelFromStep cancels a run whose step returned steps.Cancel.
func (e *Engine) cancelFromStep(ctx context.Context, d Definition, rec *storage.Run, lease run.Lease, c *steps.Control) error {
	reason := "cancelled by step " + rec.RecoveryPoint
	if c.Reason() != nil {
		reason += ": " + c.Reason().Error()
	}
	if err := e.releaseRun(ctx, d, rec, lease, run.Cancelled, reason, nil); err != nil {
		return err
	}
	return queue.Cancel(errors.New(reason))
}

// releaseRun gives the run up with a new state (without touching its
// progress, which only step transactions change) and, when that state is
// final, does what a finished run owes, in the same transaction (a single
// statement when it owes nothing). It runs even when the job's context was
// cancelled (a stop deadline, a lost claim), within a short bound.
func (e *Engine) releaseRun(ctx context.Context, d Definition, rec *storage.Run, lease run.Lease, state storage.RunState, errText string, step *storage.Step) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rel := storage.RunRelease{ID: rec.ID, Token: lease.Token, State: state, Error: errText, Step: step}
	if !state.Final() || !owesFinal(d, rec) {
		_, err := e.drv.RunRelease(ctx, rel)
		return err
	}
	return e.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		next, err := tx.RunRelease(ctx, rel)
		if err != nil {
			return err
		}
		return e.onFinal(ctx, tx, d, next)
	})
}
