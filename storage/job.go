package storage

import (
	"encoding/json"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/google/uuid"
)

// JobReplace says which fields of an existing unique job an enqueue that
// conflicts with it replaces, while that job is still available or
// scheduled (debouncing).
type JobReplace struct {
	ScheduledAt bool
	Args        bool
	Priority    bool
	MaxAttempts bool
}

// JobInsert describes a job to insert. The caller has validated and
// defaulted it; drivers refuse what the schema cannot hold (Validate).
type JobInsert struct {
	Queue       string
	Kind        string
	Args        json.RawMessage
	RunID       uuid.UUID
	State       acidic.JobState // acidic.JobAvailable, acidic.JobScheduled or acidic.JobPending
	Priority    int
	MaxAttempts int
	// ScheduledAt is when the job becomes eligible; zero means now (the
	// database's clock).
	ScheduledAt  time.Time
	Meta         json.RawMessage
	UniqueKey    []byte
	UniqueStates acidic.JobStates
	// DependsOn lists jobs that must complete before this one may run; with
	// State acidic.JobPending the job waits for them.
	DependsOn []int64
	// DependencyFailure says what a failed (cancelled or discarded)
	// dependency does to this job: "cancel" (default), "discard" or "ignore".
	DependencyFailure string
	// Tags are the job's tags (see CheckTags); nil or empty for none.
	Tags []string
}

// JobFetchParams asks for up to Max eligible jobs of one queue, claimed for WorkerID.
type JobFetchParams struct {
	Queue    string
	Max      int
	WorkerID string
	// SkipRunJobs leaves jobs that carry workflow runs (RunID set) to other
	// clients: a client that cannot end a run with its job (no
	// queue.Config.EndedFunc) must not claim them.
	SkipRunJobs bool
}

// JobRescueParams asks to rescue the running jobs whose heartbeat is older than
// StaleAfter, at most Limit of them (see Executor.JobRescue).
type JobRescueParams struct {
	StaleAfter time.Duration
	Limit      int
	// SkipRunJobs leaves jobs that carry workflow runs to other clients, as
	// in JobFetchParams.
	SkipRunJobs bool
	// Except leaves these jobs alone.
	Except []int64
}

// JobAttempt identifies one attempt of a job; fenced writes match both fields
// and the running state, so a worker that lost its claim changes nothing.
type JobAttempt struct {
	ID      int64
	Attempt int
}

// JobStatus is the state now of the job of an attempt a worker asked about.
type JobStatus struct {
	JobAttempt
	// State is the job's state now.
	State acidic.JobState
	// CurrentAttempt is the job's attempt count now: greater than Attempt
	// once the job was claimed again.
	CurrentAttempt int
}

// JobFinishParams ends a running attempt in some state other than completed.
type JobFinishParams struct {
	JobAttempt
	// State is acidic.JobRetryable, acidic.JobScheduled, acidic.JobCancelled or acidic.JobDiscarded.
	// acidic.JobScheduled is a snooze: the attempt does not count (MaxAttempts
	// grows by one).
	State acidic.JobState
	// ScheduledAt is when a retryable or snoozed job becomes eligible again.
	ScheduledAt time.Time
	// Error, when set, is appended to the job's error history.
	Error *acidic.AttemptError
}
