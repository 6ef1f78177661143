package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/storage"
)

// JobMiddleware wraps every job attempt a client works: it runs before and
// after the work function and calls next to go on (or does not, and returns
// an error of its own: that becomes the attempt's outcome, like the work
// function's). Middlewares chain in the order of Config.Middleware, the
// first outermost. A panic in a middleware is the attempt's failure, like a
// panic in the work function. Use it for tracing, logging or a policy of
// your own; ctx is the attempt's context.
type JobMiddleware func(ctx context.Context, job *acidic.Job, next func(ctx context.Context) error) error

// EnqueueHook is called for every job about to be enqueued through a
// client (Enqueue, EnqueueTx, EnqueueMany, and the jobs package workflow
// inserts for runs, children and staged jobs), with the enqueuer's context,
// the job's kind and its Meta. It returns the Meta to store: nil or
// unchanged to keep it. Package otelacidic uses it to carry the trace
// context with the job. An error fails the enqueue, and nothing is written.
type EnqueueHook func(ctx context.Context, kind string, meta json.RawMessage) (json.RawMessage, error)

// Subscribe adds a subscriber to the client's job events (see package
// events): completed, failed, snoozed, cancelled, discarded, rescued. The
// events of a workflow.Engine's client also carry its step and run events.
// Close the subscription when done.
func (c *Client) Subscribe(opts events.Options) *events.Subscription {
	return c.bus.Subscribe(opts)
}

// Events is the client's event bus: Subscribe on it, read its Dropped
// count; package workflow publishes its step and run events on it.
func (c *Client) Events() *events.Bus { return c.bus }

// workChain runs job through the configured middlewares and the work
// function.
func (c *Client) workChain(ctx context.Context, job *acidic.Job) (err error) {
	mw := c.cfg.Middleware
	if len(mw) == 0 {
		return c.cfg.Workers.Work(ctx, job)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("queue: job %d (%s) panicked in a middleware: %v\n%s", job.ID, job.Kind, r, debug.Stack())
		}
	}()
	var call func(i int, ctx context.Context) error
	call = func(i int, ctx context.Context) error {
		if i == len(mw) {
			return c.cfg.Workers.Work(ctx, job)
		}
		return mw[i](ctx, job, func(ctx context.Context) error { return call(i+1, ctx) })
	}
	return call(0, ctx)
}

// applyEnqueueHooks gives the enqueue hooks their say on in's Meta.
func (c *Client) applyEnqueueHooks(ctx context.Context, in *storage.JobInsert) error {
	for _, h := range c.cfg.EnqueueHooks {
		meta, err := h(ctx, in.Kind, in.Meta)
		if err != nil {
			return fmt.Errorf("queue: enqueue hook: kind %q: %w", in.Kind, err)
		}
		if meta == nil {
			continue
		}
		if !json.Valid(meta) {
			return fmt.Errorf("%w: kind %q: an enqueue hook returned Meta that is not valid JSON", ErrInvalid, in.Kind)
		}
		in.Meta = meta
	}
	return nil
}

// JobInsertContext is JobInsert with the client's enqueue hooks applied,
// ctx being the enqueuer's.
func (c *Client) JobInsertContext(ctx context.Context, p EnqueueParams) (storage.JobInsert, error) {
	in, err := c.JobInsert(p)
	if err != nil || len(c.cfg.EnqueueHooks) == 0 {
		return in, err
	}
	return in, c.applyEnqueueHooks(ctx, &in)
}

// outcomeEvents maps the outcomes of an attempt to the kinds of events.
var outcomeEvents = map[Outcome]events.Kind{
	OutcomeCompleted: events.JobCompleted,
	OutcomeRetry:     events.JobFailed,
	OutcomeSnoozed:   events.JobSnoozed,
	OutcomeCancelled: events.JobCancelled,
	OutcomeDiscarded: events.JobDiscarded,
}

// publishOutcome publishes the event of an attempt's outcome.
func (c *Client) publishOutcome(job *acidic.Job, outcome Outcome, state acidic.JobState, started time.Time, err error) {
	now := time.Now()
	ev := jobEvent(outcomeEvents[outcome], job, now)
	ev.JobState, ev.Duration, ev.Err = state, now.Sub(started), err
	if outcome == OutcomeCompleted {
		ev.JobState = acidic.JobCompleted
	}
	c.bus.Publish(ev)
}

// jobEvent is an event of kind k about job.
func jobEvent(k events.Kind, job *acidic.Job, now time.Time) events.Event {
	ev := events.Event{Kind: k, At: now, JobID: job.ID, JobKind: job.Kind, Queue: job.Queue,
		Attempt: job.Attempt, MaxAttempts: job.MaxAttempts, RunID: job.RunID, JobState: job.State}
	if job.AttemptedAt != nil && !job.ScheduledAt.IsZero() {
		ev.Wait = max(job.AttemptedAt.Sub(job.ScheduledAt), 0)
	}
	return ev
}

// publishRescued publishes the rescue of jobs.
func (c *Client) publishRescued(jobs []*acidic.Job) {
	if !c.bus.Active() {
		return
	}
	now := time.Now()
	for _, j := range jobs {
		c.bus.Publish(jobEvent(events.JobRescued, j, now))
	}
}
