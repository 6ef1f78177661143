package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/base/aftercommit"
	"github.com/acidic-go/acidic/internal/base/leased"
	"github.com/acidic-go/acidic/internal/base/steplog"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
)

// stepFailure carries a step's own error out of its transaction.
type stepFailure struct{ err error }

func (f *stepFailure) Error() string { return f.err.Error() }
func (f *stepFailure) Unwrap() error { return f.err }

// execution is one job attempt executing one run: what every step of that
// attempt shares.
type execution[A, S any] struct {
	e     *Engine
	w     *Workflow[A, S]
	job   *acidic.Job
	lease run.Lease
	// rec is the run as the last write of this attempt left it.
	rec  *acidic.Run
	args A
}

// execute runs the job of one run: take the lease, then run steps from the
// recovery point, each in its own SERIALIZABLE transaction, until the run
// finishes, rests (awaiting, halted), snoozes, or a step fails.
func (w *Workflow[A, S]) execute(ctx context.Context, e *Engine, job *acidic.Job) error {
	rec, lease, err := e.lease(ctx, job)
	if errors.Is(err, run.ErrAwaiting) {
		// The run's resume job, once the jobs it awaits have ended, resumes it.
		var resumed bool
		if resumed, err = w.resume(ctx, e, job, rec); err != nil {
			return err
		}
		if resumed {
			rec, lease, err = e.lease(ctx, job)
		} else {
			err = run.ErrAwaiting
		}
	}
	switch {
	case errors.Is(err, run.ErrFinished):
		// A redelivered job, or the executor died after the step that
		// finished the run and before settling it: settle it now.
		if rec.SettledAt == nil && owes(w, rec) {
			return e.settleNow(ctx, w, rec)
		}
		return nil
	case errors.Is(err, run.ErrAwaiting), errors.Is(err, run.ErrHalted):
		return nil // the run rests; this job has nothing to do
	case errors.Is(err, run.ErrLocked):
		e.cfg.Logger.Info("workflow: run locked by another worker; retrying later", "run", job.RunID, "job", job.ID)
		return queue.Snooze(e.cfg.LockedRetry)
	case errors.Is(err, acidic.ErrNotFound):
		return queue.Discard(err)
	case err != nil:
		return err
	}
	x := &execution[A, S]{e: e, w: w, job: job, lease: lease, rec: rec}
	e.publishRun(events.RunStarted, job, rec)
	return x.run(ctx)
}

// run executes steps from the run's recovery point.
func (x *execution[A, S]) run(ctx context.Context) error {
	w, e := x.w, x.e
	idx := w.index(x.rec.RecoveryPoint)
	if idx < 0 {
		return x.failForGood(ctx, fmt.Errorf("%w: step %q of run %s is no longer defined", ErrDefinitionChanged, x.rec.RecoveryPoint, x.rec.ID))
	}
	if x.rec.DefinitionHash != w.hash {
		return x.failForGood(ctx, fmt.Errorf("%w: run %s was created with steps %s, the code now has %s (%v)",
			ErrDefinitionChanged, x.rec.ID, x.rec.DefinitionHash, w.hash, w.stepNames()))
	}
	var err error
	if x.args, err = decode[A](x.rec.Args); err != nil {
		return x.failForGood(ctx, fmt.Errorf("%w: run %s into %T: %w", ErrArgsDecode, x.rec.ID, x.args, err))
	}
	if err := w.checkChildren(ctx, e, x.rec, idx); err != nil {
		if errors.Is(err, steps.ErrChildFailed) {
			return x.failForGood(ctx, err)
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
		var after *aftercommit.List
		next, err := e.drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			// What the step's code leaves for after its commit (a job it
			// cancelled through the engine's queue ended a run): a list of
			// its own for every try, kept only for the one that commits.
			ctx, after = aftercommit.With(ctx)
			if tries++; tries > 1 {
				if bus := e.q.Events(); bus.Active() {
					x.publishStep(events.StepRetried, idx, started, nil)
				}
				// A retry after a serialization failure: that failure may
				// mean another worker took the run over. Check before running
				// the step's code (and its outside calls) again.
				cur, err := tx.RunGet(ctx, storage.RunGetParams{ID: x.rec.ID})
				if err != nil {
					return storage.StepCommit{}, err
				}
				if cur.LockedBy != x.lease.Token {
					return storage.StepCommit{}, fmt.Errorf("step %q: %w", step.Name(), acidic.ErrLeaseLost)
				}
			}
			var c storage.StepCommit
			var err error
			c, control, err = x.runStep(ctx, tx, idx, started, tries)
			return c, err
		})
		if err != nil && e.q.Events().Active() {
			x.publishStep(events.StepFailed, idx, started, err)
		}
		var failure *stepFailure
		switch {
		case err == nil:
		case errors.As(err, &failure):
			if c, ok := steps.AsControl(failure.err); ok && c.Kind() == steps.KindCancel {
				reason := "cancelled by step " + step.Name()
				if c.Reason() != nil {
					reason += ": " + c.Reason().Error()
				}
				e.endRun(ctx, w, x.rec, x.lease, acidic.RunCancelled, reason)
				return queue.Cancel(errors.New(reason))
			}
			if errors.Is(failure.err, ErrStateDecode) {
				return x.failForGood(ctx, fmt.Errorf("run %s: %w", x.rec.ID, failure.err))
			}
			return x.recordFailure(ctx, idx, started, failure.err)
		case errors.Is(err, acidic.ErrLeaseLost):
			// Another worker took the run over (or an operator cancelled it);
			// this attempt's step rolled back. Let the job find out later.
			e.cfg.Logger.Warn("workflow: lost the run's lease; step rolled back", "run", x.rec.ID, "step", step.Name())
			return queue.Snooze(e.cfg.LockedRetry)
		default:
			// The transaction itself failed (database down, retries
			// exhausted, a COMMIT whose answer was lost): retry the step
			// later. A step that did commit is not undone: RunRelease never
			// moves the recovery point, and the next attempt starts there.
			return x.recordFailure(ctx, idx, started, err)
		}
		x.rec = next
		if e.q.Events().Active() {
			x.publishAfterStep(idx, started)
		}
		after.Run()
		switch {
		case x.rec.State.Final():
			if x.rec.SettledAt == nil && owes(w, x.rec) {
				// A child: counted off its parent in a transaction of its
				// own. Should this fail or the process die first, the job's
				// next delivery (or its end) settles the run.
				return e.settleNow(ctx, w, x.rec)
			}
			return nil
		case x.rec.State == acidic.RunAwaiting, x.rec.State == acidic.RunHalted:
			return nil
		}
		switch {
		case control == nil:
			idx++
		case control.Kind() == steps.KindRepeat:
		case control.Kind() == steps.KindSnooze:
			return queue.Snooze(control.Delay())
		}
		if ctx.Err() != nil {
			// Stopping (or the attempt's time is up) between steps: the
			// step committed, so the next one runs on the job's next
			// delivery, at once and without spending an attempt (the queue
			// records this one's end, which frees its lease).
			return queue.Snooze(0)
		}
	}
}

// lease returns the job's run, leased to the job's attempt: by the fetch that
// claimed the job when it could, else now.
func (e *Engine) lease(ctx context.Context, job *acidic.Job) (*acidic.Run, run.Lease, error) {
	attempt := storage.JobAttempt{ID: job.ID, Attempt: job.Attempt}
	if r := leased.Run(ctx); r != nil && r.ID == job.RunID && r.LockedBy != "" {
		return r, run.Lease{Token: r.LockedBy, Job: attempt}, nil
	}
	lease := run.NewLease(attempt)
	rec, err := run.Acquire(ctx, e.drv, job.RunID, lease)
	return rec, lease, err
}

// runStep runs one step's code inside tx and returns the write that commits
// its progress, and the control the step returned, if any. A panic in the
// step's code is the step's failure.
func (x *execution[A, S]) runStep(ctx context.Context, tx storage.Tx, idx int, started time.Time, try int) (storage.StepCommit, *steps.Control, error) {
	w, e, rec := x.w, x.e, x.rec
	step := w.steps[idx]
	// Decode the state afresh for every try of the transaction, so a
	// serialization retry starts from the committed state. State that does
	// not decode fails the run for good (see run).
	state, err := decode[S](rec.Attrs)
	if err != nil {
		return storage.StepCommit{}, nil, &stepFailure{fmt.Errorf("%w: %w", ErrStateDecode, err)}
	}
	var awaited []*acidic.Job                // the queue jobs the step awaits
	logs := steplog.NewBuffer(x.job.Attempt) // this try's records
	sc := steps.NewContext(steps.Env{
		Tx:       tx,
		RunID:    rec.ID,
		Workflow: w.name,
		Step:     step.Name(),
		Attempt:  x.job.Attempt,
		Cursor:   rec.Cursor,
		Logger:   e.stepLogger(logs),
		Enqueue: func(ctx context.Context, kind string, args any, opts queue.EnqueueOptions) (*acidic.Job, error) {
			return e.q.EnqueueTx(ctx, tx, kind, args, opts)
		},
		EnqueueRun: func(ctx context.Context, req steps.RunRequest, awaited bool) (uuid.UUID, error) {
			return e.enqueueFromStep(ctx, tx, rec, step.Name(), req, awaited)
		},
		AwaitJobs: func(ctx context.Context, params []queue.EnqueueParams) ([]*acidic.Job, error) {
			jobs, err := e.awaitJobs(ctx, tx, rec, step.Name(), params)
			awaited = append(awaited, jobs...)
			return jobs, err
		},
		Publish: func(ctx context.Context, msg storage.OutboxInsert) error {
			return e.stageMessage(ctx, tx, msg)
		},
	}, x.args, &state)
	stepErr := callStep(ctx, step, sc, e.cfg.StepMiddleware, func() StepInfo {
		return StepInfo{Tx: tx, Job: x.job, RunID: rec.ID, Workflow: w.name, IdempotencyKey: rec.IdempotencyKey,
			Step: step.Name(), Position: idx, Attempt: x.job.Attempt, Try: try}
	})
	control, isControl := steps.AsControl(stepErr)
	if stepErr != nil && (!isControl || control.Kind() == steps.KindCancel) {
		return storage.StepCommit{}, nil, &stepFailure{stepErr}
	}
	if control != nil && sc.Awaiting() > 0 {
		return storage.StepCommit{}, nil, &stepFailure{fmt.Errorf("%w: step %q awaited children and returned %v; an await step parks the run and must return nil",
			steps.ErrInvalid, step.Name(), control)}
	}
	if len(awaited) > 0 {
		if err := e.stageResume(ctx, tx, rec, step.Name(), awaited); err != nil {
			return storage.StepCommit{}, nil, err
		}
	}
	attrs, err := json.Marshal(sc.State)
	if err != nil {
		return storage.StepCommit{}, nil, &stepFailure{fmt.Errorf("workflow: step %q: encode state: %w", step.Name(), err)}
	}
	if err := keepStepLogs(ctx, tx, rec, idx, logs); err != nil {
		return storage.StepCommit{}, nil, err
	}
	upd := x.stepUpdate(idx, control, sc.Awaiting(), sc.NextCursor(), sc.Result(), attrs, started)
	c := storage.StepCommit{Update: upd}
	if upd.State.Final() && rec.ParentRunID == uuid.Nil {
		// Settled in the step's own transaction: staging the finish job
		// touches no row another run's step reads. A child is settled after
		// the commit instead (see settle).
		c.Update.Settle = true
		if hasFinish(w) {
			c.Then = func(ctx context.Context, tx storage.Tx, next *acidic.Run) error {
				return e.stageFinish(ctx, tx, w, next)
			}
		}
	}
	return c, control, nil
}

// stepUpdate is the write that commits step idx: the run's next state,
// recovery point and cursor, and the step log entry. It decides the run's
// transitions out of running (see lifecycle.go).
func (x *execution[A, S]) stepUpdate(idx int, control *steps.Control, awaiting int, nextCursor int64, result, attrs json.RawMessage, started time.Time) storage.RunUpdateParams {
	w := x.w
	step := w.steps[idx]
	upd := storage.RunUpdateParams{
		ID:            x.rec.ID,
		Token:         x.lease.Token,
		State:         acidic.RunRunning,
		RecoveryPoint: step.Name(),
		Attrs:         attrs,
		Cursor:        x.rec.Cursor,
		Step: &acidic.Step{
			Position:  idx,
			Name:      step.Name(),
			State:     acidic.StepSucceeded,
			Attempt:   x.job.Attempt,
			Result:    result,
			StartedAt: started,
		},
	}
	last := idx == len(w.steps)-1
	advance := func() {
		if last {
			upd.State, upd.Release, upd.Result = acidic.RunSucceeded, true, result
			return
		}
		upd.RecoveryPoint, upd.Cursor = w.steps[idx+1].Name(), 0
	}
	switch {
	case control == nil && awaiting > 0:
		// Park until the children finish; the last one enqueues the next step.
		advance()
		upd.Step.State = acidic.StepAwaiting
		upd.State, upd.Awaiting, upd.Release = acidic.RunAwaiting, awaiting, true
	case control == nil:
		advance()
	case control.Kind() == steps.KindRepeat:
		upd.Step.State = acidic.StepRepeating
		upd.Cursor = nextCursor
	case control.Kind() == steps.KindSnooze:
		upd.Step.State = acidic.StepRepeating
		upd.State, upd.Release = acidic.RunPending, true
		upd.Cursor = nextCursor
	case control.Kind() == steps.KindHalt:
		upd.Step.State = acidic.StepHalted
		advance()
		if !last {
			upd.State, upd.Release = acidic.RunHalted, true
		}
	}
	return upd
}

// callStep runs a step's code through the step middlewares mw, turning a
// panic (of the code or of a middleware) into the step's error (with its
// stack), so that it is recorded like any failure of the step.
func callStep[A, S any](ctx context.Context, step steps.Step[A, S], sc *steps.Context[A, S], mw []StepMiddleware, info func() StepInfo) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: step %q: %v\n%s", ErrPanic, step.Name(), p, debug.Stack())
		}
	}()
	if len(mw) > 0 {
		return chainStep(ctx, mw, info(), func(ctx context.Context) error { return step.Run(ctx, sc) })
	}
	return step.Run(ctx, sc)
}

// checkChildren fails the run when the step before idx awaited children and
// one of them did not succeed, unless that step continues on failure.
func (w *Workflow[A, S]) checkChildren(ctx context.Context, e *Engine, rec *acidic.Run, idx int) error {
	if idx == 0 {
		return nil
	}
	prev := w.steps[idx-1]
	opts, awaits := prev.Awaits()
	if !awaits || opts.ContinueOnFailure {
		return nil
	}
	if err := checkJobs(ctx, e, rec, prev.Name()); err != nil {
		return err
	}
	failed, err := e.drv.RunList(ctx, acidic.RunFilter{ParentRunID: rec.ID, ParentStep: prev.Name(),
		States: []acidic.RunState{acidic.RunFailed, acidic.RunCancelled}, Limit: 1})
	if err != nil || len(failed) == 0 {
		return err
	}
	c := failed[0]
	return fmt.Errorf("%w: step %q: child run %s (%s) %s: %s", steps.ErrChildFailed, prev.Name(), c.ID, c.Workflow, c.State, c.Error)
}

// recordFailure notes a failed step on the run and the step log and
// releases the lease, so the job's next attempt (or another worker) resumes
// at the same step. It returns the step's error for the queue to schedule
// that attempt; when the job has none left, the queue discards it and the
// run fails with it (jobsEnded), in one transaction.
func (x *execution[A, S]) recordFailure(ctx context.Context, idx int, started time.Time, stepErr error) error {
	e, rec := x.e, x.rec
	step := &acidic.Step{
		Position:  idx,
		Name:      rec.RecoveryPoint,
		State:     acidic.StepFailed,
		Attempt:   x.job.Attempt,
		Error:     stepErr.Error(),
		StartedAt: started,
	}
	// Recorded even when the job's context was cancelled (a stop deadline, a
	// lost claim), within a short bound.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rel := storage.RunReleaseParams{ID: rec.ID, Token: x.lease.Token, State: acidic.RunPending, Error: stepErr.Error(), Step: step}
	if err := e.releaseFailed(wctx, rel, started); err != nil {
		e.cfg.Logger.Warn("workflow: could not record step failure", "run", rec.ID, "err", err)
	}
	e.cfg.Logger.Info("workflow: step failed", "run", rec.ID, "workflow", rec.Workflow, "step", rec.RecoveryPoint,
		"attempt", x.job.Attempt, "of", x.job.MaxAttempts, "err", stepErr)
	return stepErr
}

// failForGood fails the run for a reason no retry can fix, whatever other
// job carries it, then discards the job.
func (x *execution[A, S]) failForGood(ctx context.Context, reason error) error {
	x.e.cfg.Logger.Error("workflow: run failed for good", "run", x.rec.ID, "workflow", x.rec.Workflow, "err", reason)
	x.e.endRun(ctx, x.w, x.rec, x.lease, acidic.RunFailed, reason.Error())
	return queue.Discard(reason)
}
