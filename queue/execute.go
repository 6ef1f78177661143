package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/aftercommit"
	"github.com/acidic-go/acidic/storage"
)

// Outcome is what became of one attempt of a job.
type Outcome string

// Outcomes of an attempt.
const (
	OutcomeCompleted Outcome = "completed"
	OutcomeRetry     Outcome = "retry"
	OutcomeSnoozed   Outcome = "snoozed"
	OutcomeCancelled Outcome = "cancelled"
	OutcomeDiscarded Outcome = "discarded"
)

// outcomeOf maps a work function's error to the write that ends the attempt.
// A nil error means completion (written by the completer, in batches).
func (c *Client) outcomeOf(job *acidic.Job, err error) (Outcome, storage.JobFinishParams) {
	now := c.cfg.Now()
	o := storage.JobFinishParams{JobAttempt: storage.JobAttempt{ID: job.ID, Attempt: job.Attempt}}
	if err == nil {
		return OutcomeCompleted, o
	}
	record := func(e error) *acidic.AttemptError {
		if e == nil {
			return nil
		}
		return &acidic.AttemptError{Attempt: job.Attempt, At: now, Error: e.Error()}
	}
	if d, ok := IsSnooze(err); ok {
		o.State, o.ScheduledAt = acidic.JobScheduled, now.Add(d)
		return OutcomeSnoozed, o
	}
	if IsCancel(err) {
		o.State, o.Error = acidic.JobCancelled, record(errors.Unwrap(err))
		if o.Error == nil {
			o.Error = record(err)
		}
		return OutcomeCancelled, o
	}
	if IsDiscard(err) || job.Attempt >= job.MaxAttempts {
		o.State, o.Error = acidic.JobDiscarded, record(err)
		return OutcomeDiscarded, o
	}
	backoff := DefaultBackoff
	if k, ok := c.cfg.Workers.lookup(job.Kind); ok {
		backoff = k.opts.Backoff
	}
	o.State, o.Error = acidic.JobRetryable, record(err)
	o.ScheduledAt = now.Add(backoff(job.Attempt-snoozes(job), err))
	return OutcomeRetry, o
}

// snoozes counts how often the job was snoozed; snoozes do not count as
// failed attempts when computing the backoff.
func snoozes(job *acidic.Job) int {
	if len(job.Meta) < 12 { // shorter than {"snoozes":1}
		return 0
	}
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(job.Meta, &m)
	return m.Snoozes
}

// work runs one claimed job in the background and records its outcome.
func (c *Client) work(workCtx context.Context, job *acidic.Job, done func()) {
	ctx, cancel := context.WithCancelCause(workCtx)
	// What the attempt leaves for after its end (a workflow run its step
	// ended: events.RunFinished) is published after the attempt's own event.
	var later *aftercommit.List
	if c.bus.Active() {
		ctx, later = aftercommit.With(ctx)
	}
	c.track(job, cancel)
	c.jobs.Add(1)
	// The completer of the run that fetched the job: a job abandoned by
	// Stop may return after a restart made a new one.
	cp, pool := c.completer, c.pool
	pool.run(func() {
		defer c.jobs.Done()
		// endAttempt frees the job's slot (free); should it end its
		// goroutine before it did (a Goexit while ending the job), this
		// does. Never twice: that would free a slot no job holds.
		freed := false
		free := func() { freed = true; done() }
		defer func() {
			if !freed {
				done()
			}
		}()
		defer cancel(nil)
		started := time.Now()
		// The outcome is recorded in a deferred call so that a work
		// function (or middleware) that ends its goroutine with
		// runtime.Goexit (as t.FailNow does) still ends its attempt: err
		// then stays errExited, an attempt that failed.
		err := errExited
		defer func() { c.endAttempt(workCtx, cp, job, started, err, free, later) }()
		err = c.workChain(ctx, job)
	})
}

// errExited is the error of an attempt whose work function (or middleware)
// ended its goroutine with runtime.Goexit instead of returning.
var errExited = errors.New("queue: the job's work function ended its goroutine (runtime.Goexit, as t.FailNow does) without returning")

// endAttempt records the outcome of an attempt run by a started client
// whose work function returned err (errExited when it never returned),
// publishes the outcome's event, then what the attempt and its end left
// for after it (later, and what ending the job did: aftercommit), and frees
// the job's slot (done). A completed job's slot is freed before its event
// is published: the producer's next fetch, which waits for a
// free slot, need not wait for the subscribers too (a completed job never
// runs again, so its events stay in order).
func (c *Client) endAttempt(workCtx context.Context, cp *completer, job *acidic.Job, started time.Time, err error, done func(), later *aftercommit.List) {
	var stopped error
	if err != nil && workCtx.Err() != nil && !IsCancel(err) && !IsDiscard(err) {
		// The client's own stop cut the attempt short (its deadline
		// passed): that is not the job's failure, and must not spend
		// its last attempt. It runs again at once elsewhere.
		c.cfg.Logger.Info("queue: job attempt stopped with the client; it runs again without spending an attempt",
			"job", job.ID, "kind", job.Kind, "attempt", job.Attempt, "err", err)
		stopped, err = err, Snooze(0)
	}
	outcome, o := c.outcomeOf(job, err)
	if stopped != nil {
		o.Error = &acidic.AttemptError{Attempt: job.Attempt, At: c.cfg.Now(), Error: "stopped with the client: " + stopped.Error()}
	}
	if outcome == OutcomeCompleted {
		c.complete(cp, job)
		done()
		if c.bus.Active() {
			c.publishOutcome(job, outcome, "", started, nil)
		}
		later.Run()
		return
	}
	if err != nil && outcome != OutcomeSnoozed {
		c.cfg.Logger.Info("queue: job attempt failed", "job", job.ID, "kind", job.Kind, "attempt", job.Attempt, "outcome", outcome, "err", err)
	}
	// A job that will run again (a retry, a snooze) may be fetched by a
	// free worker the moment its outcome is written: its event is
	// published before that write, so that a subscriber sees a job's
	// attempts in order. A job's end for good is published once written.
	again := !o.State.Final()
	var after *aftercommit.List
	if again && c.bus.Active() {
		after = c.publishThenFinish(job, outcome, o, started, err)
	} else {
		after = c.finish(job, o)
	}
	if !again && c.bus.Active() {
		c.publishOutcome(job, outcome, o.State, started, err)
	}
	// What the job's end did beyond it (a run that ended with it) is
	// published after the job's own event.
	after.Run()
	later.Run()
	done()
}

// publishThenFinish publishes the event of an outcome that lets the job
// run again, then writes it (finish). The write is deferred: a Func
// subscriber that ends the goroutine (runtime.Goexit, as t.FailNow does)
// must not leave the job running, unwritten, until a rescue.
func (c *Client) publishThenFinish(job *acidic.Job, outcome Outcome, o storage.JobFinishParams, started time.Time, err error) (after *aftercommit.List) {
	defer func() { after = c.finish(job, o) }()
	c.publishOutcome(job, outcome, o.State, started, err)
	return nil
}

// finish writes a non-completion outcome, retrying while the database is
// unreachable, then stops tracking the job. It returns what recordOutcome
// returns: run it once the attempt's event is published.
func (c *Client) finish(job *acidic.Job, o storage.JobFinishParams) *aftercommit.List {
	defer c.untrack(o.JobAttempt)
	after, _ := c.recordOutcome(context.Background(), job, o, func(_ context.Context, write func(context.Context) error) error {
		c.retryWrite(write)
		return nil
	})
	return after
}

// recordOutcome writes a non-completion outcome of job through run (which
// may retry the write) and, when that ended the job for good, settles the
// job's dependents now rather than at the next maintenance pass. An outcome
// that ends the job for good is written in one transaction with EndedFunc;
// what EndedFunc left to do once that transaction committed
// (aftercommit.Do, e.g. publishing a run's end) is returned, to be run
// after the job's own event is published. It is nil unless the transaction
// committed: a write that rolled back, or was tried again, publishes
// nothing of its own.
func (c *Client) recordOutcome(ctx context.Context, job *acidic.Job, o storage.JobFinishParams, run func(context.Context, func(context.Context) error) error) (*aftercommit.List, error) {
	var ended bool
	var after *aftercommit.List
	final := o.State == acidic.JobCancelled || o.State == acidic.JobDiscarded
	if err := run(ctx, func(ctx context.Context) error {
		after = nil
		if !final || c.cfg.EndedFunc == nil {
			var err error
			ended, err = c.drv.JobFinish(ctx, o)
			return err
		}
		var attempt *aftercommit.List
		err := c.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			// A list of its own for every run of the transaction: only
			// the one that commits is kept.
			ctx, attempt = aftercommit.With(ctx)
			var err error
			if ended, err = tx.JobFinish(ctx, o); err != nil || !ended {
				return err
			}
			return c.cfg.EndedFunc(ctx, tx, []*acidic.Job{endedCopy(job, o)})
		})
		if err == nil {
			after = attempt
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("queue: record outcome of job %d: %w", o.ID, err)
	}
	if !ended || !final {
		return after, nil
	}
	return after, run(ctx, func(ctx context.Context) error {
		_, _, err := c.drv.JobResolveDependencies(ctx, storage.JobResolveDependenciesParams{Ended: []int64{o.ID}})
		return err
	})
}

// endedCopy returns job as the write of outcome o left it.
func endedCopy(job *acidic.Job, o storage.JobFinishParams) *acidic.Job {
	j := *job
	j.State = o.State
	if o.Error != nil {
		j.Errors = append(append([]acidic.AttemptError(nil), job.Errors...), *o.Error)
	}
	return &j
}

// retryWrite runs a bookkeeping write until it succeeds, backing off between
// tries (10ms doubling to 1s), for up to RescueAfter: past that the job is
// rescued anyway. A closed driver or a write the storage refuses as invalid
// ends it at once.
func (c *Client) retryWrite(write func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RescueAfter)
	defer cancel()
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval, policy.MaxInterval, policy.MaxElapsedTime = 10*time.Millisecond, time.Second, 0
	err := backoff.RetryNotify(func() error {
		err := write(ctx)
		if errors.Is(err, acidic.ErrClosed) || errors.Is(err, acidic.ErrInvalid) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(policy, ctx), func(err error, in time.Duration) {
		c.cfg.Logger.Warn("queue: record job outcome failed; retrying", "err", err, "in", in)
	})
	if err != nil {
		c.cfg.Logger.Error("queue: could not record job outcome; the job will be rescued", "err", err)
	}
}
