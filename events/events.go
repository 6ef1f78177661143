package events

import (
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
)

// Kind names what happened.
type Kind string

// Kinds of events.
const (
	// JobCompleted: a job attempt's work function returned nil. Published
	// before its batched write marks the row completed.
	JobCompleted Kind = "job.completed"
	// JobFailed: an attempt failed and the job will be tried again
	// (retryable). Published before the write that lets the job run
	// again, so that the events of its attempts arrive in order.
	JobFailed Kind = "job.failed"
	// JobSnoozed: the attempt asked to run again later (queue.Snooze).
	// Published before its write, as JobFailed is.
	JobSnoozed Kind = "job.snoozed"
	// JobCancelled: the attempt ended the job as cancelled.
	JobCancelled Kind = "job.cancelled"
	// JobDiscarded: the job ended for good without success (attempts
	// exhausted, Discard, a panic on its last attempt).
	JobDiscarded Kind = "job.discarded"
	// JobRescued: the leader rescued a job whose worker stopped
	// heartbeating; JobState says whether it will run again (retryable) or
	// was discarded.
	JobRescued Kind = "job.rescued"

	// StepCommitted: a step's transaction committed.
	StepCommitted Kind = "step.committed"
	// StepFailed: a step failed (its transaction rolled back); Err says why.
	StepFailed Kind = "step.failed"
	// StepRetried: a step's transaction is run again after a serialization
	// failure; no attempt is spent.
	StepRetried Kind = "step.retried"

	// RunStarted: a job attempt took a run's lease and starts its steps.
	RunStarted Kind = "run.started"
	// RunHalted: a step halted the run; it waits for a Retry or Cancel.
	RunHalted Kind = "run.halted"
	// RunFinished: the run reached a final state (RunState: succeeded,
	// failed or cancelled). Published once the transaction that ended the
	// run committed, and once only, after the event of the job that ended
	// it, if any: a run that ends with its job (attempts exhausted,
	// Discard, a rescue of the last attempt, an operator's job cancel) or
	// that its step ended (steps.Cancel, a failure no retry can fix)
	// publishes it after that job's JobDiscarded, JobCancelled or
	// JobRescued. When that COMMIT's answer is lost
	// (acidic.ErrCommitUnknown) it may be missing; it is never doubled. A
	// run ended by queue.Client.CancelTx in the caller's own transaction
	// publishes it when CancelTx runs (from a job's work function, once
	// that attempt ended), whether or not that transaction commits.
	RunFinished Kind = "run.finished"
	// RunCancelled: an operator cancelled the run (Engine.Cancel, CancelMany). A run
	// cancelled by its own step publishes RunFinished with RunCancelled.
	RunCancelled Kind = "run.cancelled"
)

// Kinds lists every kind, in the order above.
var Kinds = []Kind{JobCompleted, JobFailed, JobSnoozed, JobCancelled, JobDiscarded, JobRescued,
	StepCommitted, StepFailed, StepRetried, RunStarted, RunHalted, RunFinished, RunCancelled}

// Event is one thing that happened. Fields that do not apply are zero.
type Event struct {
	Kind Kind
	// At is when the event was published.
	At time.Time

	// JobID, JobKind, Queue, Attempt and MaxAttempts describe the job
	// attempt (for run and step events, the attempt executing the run).
	JobID       int64
	JobKind     string
	Queue       string
	Attempt     int
	MaxAttempts int
	// JobState is the state the job event left the job in (rescues:
	// retryable or discarded).
	JobState acidic.JobState

	// RunID and Workflow name the run (zero for plain jobs).
	RunID    uuid.UUID
	Workflow string
	// Step is the step's name (step events).
	Step string
	// RunState is the run's state after the event (RunFinished: the final
	// state).
	RunState acidic.RunState

	// Wait is how long the job waited for a worker: from its due time
	// (ScheduledAt) to the attempt's start. Job events only.
	Wait time.Duration
	// Duration is how long the attempt (job events) or the step, its
	// transaction included (step events), ran.
	Duration time.Duration
	// Err is the failure, when there is one.
	Err error
}
