package acidictest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
)

// PerformWorker runs the worker registered for a plain job kind once, in
// the test's goroutine, on a job built in memory as the enqueue would store
// it: args encoded as Enqueue encodes them, queue, priority, attempts and
// meta from opts and the kind's options (queue.KindOptions), attempt 1,
// state running, ID 0. Nothing is read from or written to the database, so
// a unique worker can be performed again and again, and the test is a unit
// test of the worker.
//
// The worker runs as the queue runs it (queue.Workers.Work): with the
// kind's Timeout, a panic returned as an error. PerformWorker returns the
// worker's own error, and the outcome the queue would record for it
// (completed for nil; discarded for an error on the job's last attempt).
//
// Bad input writes nothing and returns an empty outcome with an error:
// queue.ErrInvalid for what Enqueue would refuse and for the kind of a
// workflow (Perform runs those), queue.ErrUnknownKind for a kind with no
// worker.
func (h *Harness) PerformWorker(ctx context.Context, kind string, args any, opts queue.EnqueueOptions) (queue.Outcome, error) {
	if h.workflows[kind] {
		return "", fmt.Errorf("%w: %q is the kind of a workflow's jobs; Perform runs workflows", queue.ErrInvalid, kind)
	}
	job, err := h.buildJob(kind, args, opts)
	if err != nil {
		return "", err
	}
	err = h.Workers.Work(ctx, job)
	if errors.Is(err, queue.ErrUnknownKind) {
		return "", err
	}
	return workOutcome(job, err), err
}

// buildJob returns the job an enqueue of kind, args and opts would store,
// as a fetch hands it to its worker.
func (h *Harness) buildJob(kind string, args any, opts queue.EnqueueOptions) (*acidic.Job, error) {
	// The row an enqueue would insert: the kind's defaults applied, every
	// field checked.
	in, err := h.Queue().JobInsert(queue.EnqueueParams{Kind: kind, Args: args, Opts: opts})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	job := &acidic.Job{
		Queue:        in.Queue,
		Kind:         in.Kind,
		Args:         in.Args,
		State:        acidic.JobRunning,
		Priority:     in.Priority,
		Attempt:      1,
		MaxAttempts:  in.MaxAttempts,
		ScheduledAt:  in.ScheduledAt,
		AttemptedAt:  &now,
		AttemptedBy:  h.Queue().ID(),
		Meta:         in.Meta,
		UniqueKey:    in.UniqueKey,
		UniqueStates: in.UniqueStates,
		CreatedAt:    now,
	}
	if job.ScheduledAt.IsZero() {
		job.ScheduledAt = now
	}
	if len(job.Meta) == 0 {
		job.Meta = json.RawMessage("{}")
	}
	return job, nil
}

// workOutcome is the outcome the queue records for an attempt of job that
// returned err (see queue.WorkFunc). TestPerformWorkerOutcomesMatchTheQueue
// checks it against the queue's own.
func workOutcome(job *acidic.Job, err error) queue.Outcome {
	if err == nil {
		return queue.OutcomeCompleted
	}
	if _, ok := queue.IsSnooze(err); ok {
		return queue.OutcomeSnoozed
	}
	if queue.IsCancel(err) {
		return queue.OutcomeCancelled
	}
	if queue.IsDiscard(err) || job.Attempt >= job.MaxAttempts {
		return queue.OutcomeDiscarded
	}
	return queue.OutcomeRetry
}
