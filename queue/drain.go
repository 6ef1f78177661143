package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/aftercommit"
	"github.com/acidic-go/acidic/internal/base/leased"
	"github.com/acidic-go/acidic/storage"
)

// DrainOptions tune Drain.
type DrainOptions struct {
	// WithScheduled also runs scheduled and retryable jobs whose time has
	// not come, including jobs snoozed or retried during the drain.
	WithScheduled bool
	// MaxJobs stops the drain after this many attempts, so a job that keeps
	// snoozing cannot loop forever. Default 10,000.
	MaxJobs int
}

// DrainResult counts the outcomes of the attempts a drain made.
type DrainResult struct {
	Success   int
	Failure   int // failed and will be retried
	Snoozed   int
	Cancelled int
	Discarded int
}

// Total is the number of attempts made.
func (r DrainResult) Total() int {
	return r.Success + r.Failure + r.Snoozed + r.Cancelled + r.Discarded
}

// Drain works the queue in the caller's goroutine until no job is eligible:
// each job runs exactly as it would in a started client (through
// Config.Middleware, its outcome's event published), its outcome is
// recorded at once, and jobs enqueued by drained jobs (staged jobs, the next
// step of a workflow) are drained too. It is meant for tests and tools; the
// client need not be started, and the queue need not be configured. A
// paused queue (PauseQueue) drains nothing; a scale does not apply. It
// claims jobs without the queue's QueueLimits.
func (c *Client) Drain(ctx context.Context, queue string, opts DrainOptions) (DrainResult, error) {
	var res DrainResult
	limit := opts.MaxJobs
	if limit <= 0 {
		limit = 10000
	}
	for res.Total() < limit {
		if opts.WithScheduled {
			if _, err := c.drv.JobMakeDue(ctx, storage.JobMakeDueParams{Queue: queue}); err != nil {
				return res, err
			}
		}
		jobs, err := c.drv.JobFetch(ctx, storage.JobFetchParams{Queue: queue, Max: 1, WorkerID: c.cfg.ID + "-drain", SkipRunJobs: c.cfg.EndedFunc == nil})
		if err != nil {
			return res, err
		}
		if len(jobs) == 0 {
			return res, nil
		}
		outcome, err := c.WorkClaimed(leased.WithRun(ctx, jobs[0].LeasedRun), jobs[0].Job)
		if err != nil {
			return res, err
		}
		switch outcome {
		case OutcomeCompleted:
			res.Success++
		case OutcomeRetry:
			res.Failure++
		case OutcomeSnoozed:
			res.Snoozed++
		case OutcomeCancelled:
			res.Cancelled++
		case OutcomeDiscarded:
			res.Discarded++
		}
	}
	return res, nil
}

// WorkClaimed runs a job this client has claimed (state running, attempted
// by it) in the caller's goroutine and records its outcome before
// returning. Drain uses it; so can tools that claim jobs themselves.
func (c *Client) WorkClaimed(ctx context.Context, job *acidic.Job) (outcome Outcome, err error) {
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// What the attempt leaves for after its end (a workflow run its step
	// ended) is published after the attempt's own event, as in endAttempt.
	var later *aftercommit.List
	if c.bus.Active() {
		jobCtx, later = aftercommit.With(jobCtx)
	}
	defer later.Run()
	c.track(job, cancel)
	defer c.untrack(attemptOf(job))
	started := time.Now()
	// Through the middlewares, as in a started client, which also
	// publishes the attempt's event once its outcome is written. The
	// outcome is recorded in a deferred call, as in a started client, so
	// that a work function (or middleware) that ends the caller's
	// goroutine with runtime.Goexit (t.FailNow in a test) still ends its
	// attempt: workErr then stays errExited, an attempt that failed.
	workErr := errExited
	defer func() { outcome, err = c.endClaimed(ctx, job, started, workErr) }()
	workErr = c.workChain(jobCtx, job)
	return // the deferred endClaimed sets the results
}

// endClaimed records the outcome of an attempt run by WorkClaimed whose
// work function returned err (errExited when it never returned), at once
// and without retrying, then publishes the attempt's event and, after it,
// what ending the job did (a run that ended with it).
func (c *Client) endClaimed(ctx context.Context, job *acidic.Job, started time.Time, err error) (Outcome, error) {
	outcome, o := c.outcomeOf(job, err)
	if outcome == OutcomeCompleted {
		if _, err := c.drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{o.JobAttempt}}); err != nil {
			return outcome, fmt.Errorf("queue: record completion of job %d: %w", job.ID, err)
		}
		if c.bus.Active() {
			c.publishOutcome(job, outcome, "", started, nil)
		}
		return outcome, nil
	}
	after, werr := c.recordOutcome(ctx, job, o, func(ctx context.Context, write func(context.Context) error) error {
		return write(ctx)
	})
	if werr == nil && c.bus.Active() {
		c.publishOutcome(job, outcome, o.State, started, err)
	}
	// After the job's own event: what its end did to the run it carried.
	after.Run()
	return outcome, werr
}
