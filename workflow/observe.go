package workflow

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/storage"
)

// StepInfo describes the step a StepMiddleware wraps.
type StepInfo struct {
	// Tx is the step's transaction: what the middleware writes through it
	// commits with the step, or not at all.
	Tx storage.Tx
	// Job is the job attempt executing the run.
	Job *acidic.Job
	// RunID, Workflow and IdempotencyKey describe the run. The key may hold
	// what the caller put in it: hash it before it leaves the process.
	RunID          uuid.UUID
	Workflow       string
	IdempotencyKey string
	// Step is the step's name, Position its index in the workflow.
	Step     string
	Position int
	// Attempt is the job attempt, from 1.
	Attempt int
	// Try counts the runs of the step's transaction in this attempt, from
	// 1: a serialization failure runs the step (and its middlewares) again.
	Try int
}

// StepMiddleware wraps every step an engine executes, inside the step's
// transaction: it runs before and after the step's code and calls next to
// go on (with ctx, or a context derived from it: the step's code receives
// it). Middlewares chain in the order of Config.StepMiddleware, the first
// outermost. Its error is the step's error; a panic in it is a panic of
// the step (ErrPanic): the step fails, and on the job's last attempt the
// run fails with it.
type StepMiddleware func(ctx context.Context, step StepInfo, next func(ctx context.Context) error) error

// Subscribe adds a subscriber to the engine's events (package events): the
// job events of its queue client, and the step and run events of the runs
// it executes. Close the subscription when done.
func (e *Engine) Subscribe(opts events.Options) *events.Subscription {
	return e.q.Subscribe(opts)
}

// Events is the engine's event bus (its queue client's).
func (e *Engine) Events() *events.Bus { return e.q.Events() }

// chainStep runs run through the step middlewares.
func chainStep(ctx context.Context, mw []StepMiddleware, info StepInfo, run func(ctx context.Context) error) error {
	var call func(i int, ctx context.Context) error
	call = func(i int, ctx context.Context) error {
		if i == len(mw) {
			return run(ctx)
		}
		return mw[i](ctx, info, func(ctx context.Context) error { return call(i+1, ctx) })
	}
	return call(0, ctx)
}

// runEvent is an event of kind k about run rec, executed by job (nil when
// no job attempt is at hand).
func runEvent(k events.Kind, job *acidic.Job, rec *acidic.Run) events.Event {
	ev := events.Event{Kind: k, At: time.Now(), RunID: rec.ID, Workflow: rec.Workflow, Queue: rec.Queue, RunState: rec.State}
	if rec.Error != "" && rec.State != acidic.RunSucceeded {
		ev.Err = runError(rec.Error)
	}
	if job != nil {
		ev.JobID, ev.JobKind, ev.Attempt, ev.MaxAttempts, ev.JobState = job.ID, job.Kind, job.Attempt, job.MaxAttempts, job.State
	}
	return ev
}

// runError is a run's recorded error, as an error.
type runError string

func (e runError) Error() string { return string(e) }

// publishStep publishes a step event of the execution.
func (x *execution[A, S]) publishStep(k events.Kind, idx int, started time.Time, err error) {
	ev := runEvent(k, x.job, x.rec)
	ev.Step, ev.Duration, ev.Err = x.w.steps[idx].Name(), time.Since(started), err
	x.e.q.Events().Publish(ev)
}

// publishAfterStep publishes what a committed step did to the run: the
// step's commit, and a halt or a finish.
func (x *execution[A, S]) publishAfterStep(idx int, started time.Time) {
	x.publishStep(events.StepCommitted, idx, started, nil)
	switch {
	case x.rec.State.Final():
		x.e.q.Events().Publish(runEvent(events.RunFinished, x.job, x.rec))
	case x.rec.State == acidic.RunHalted:
		x.e.q.Events().Publish(runEvent(events.RunHalted, x.job, x.rec))
	}
}

// publishRun publishes a run event when anyone listens.
func (e *Engine) publishRun(k events.Kind, job *acidic.Job, rec *acidic.Run) {
	if rec != nil && e.q.Events().Active() {
		e.q.Events().Publish(runEvent(k, job, rec))
	}
}
