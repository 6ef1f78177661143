package storage

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// JobState is where a job is in its life. See docs/architecture.md for the
// state machine.
type JobState string

// Job states.
const (
	// JobPending: waiting for the jobs it depends on; not yet eligible to run.
	JobPending JobState = "pending"
	// JobAvailable: ready to be fetched by a worker.
	JobAvailable JobState = "available"
	// JobScheduled: will become eligible at ScheduledAt (also used for snoozed jobs).
	JobScheduled JobState = "scheduled"
	// JobRunning: claimed by a worker that heartbeats it.
	JobRunning JobState = "running"
	// JobRetryable: failed an attempt; eligible again at ScheduledAt.
	JobRetryable JobState = "retryable"
	// JobCompleted: finished successfully. Final.
	JobCompleted JobState = "completed"
	// JobCancelled: stopped on purpose; no further attempts. Final.
	JobCancelled JobState = "cancelled"
	// JobDiscarded: failed on its last attempt, or could not be run at all. Final.
	JobDiscarded JobState = "discarded"
)

// AllJobStates lists every job state, in the order of the state machine.
var AllJobStates = []JobState{JobPending, JobAvailable, JobScheduled, JobRunning, JobRetryable, JobCompleted, JobCancelled, JobDiscarded}

// Final reports whether no further attempt will be made in this state.
func (s JobState) Final() bool {
	return s == JobCompleted || s == JobCancelled || s == JobDiscarded
}

// Bit is the state's bit in a unique-states mask (see Job.UniqueStates).
// It matches the job_state_bit function in the database.
func (s JobState) Bit() uint8 {
	switch s {
	case JobAvailable:
		return 1
	case JobScheduled:
		return 2
	case JobRunning:
		return 4
	case JobRetryable:
		return 8
	case JobCompleted:
		return 16
	case JobCancelled:
		return 32
	case JobDiscarded:
		return 64
	case JobPending:
		return 128
	}
	return 0
}

// Valid reports whether s is one of the known states.
func (s JobState) Valid() bool { return s.Bit() != 0 }

// AttemptError records why one attempt of a job failed.
type AttemptError struct {
	// Attempt is the attempt number that failed, from 1.
	Attempt int `json:"attempt"`
	// At is when the failure was recorded.
	At time.Time `json:"at"`
	// Error is the error's text.
	Error string `json:"error"`
}

// Job is one row of the job queue.
type Job struct {
	ID          int64
	Queue       string
	Kind        string
	Args        json.RawMessage
	RunID       uuid.UUID // uuid.Nil when the job belongs to no workflow run
	State       JobState
	Priority    int // 0 is the highest, 3 the lowest
	Attempt     int // attempts made so far, counting the one running
	MaxAttempts int
	ScheduledAt time.Time
	AttemptedAt *time.Time
	AttemptedBy string
	FinalizedAt *time.Time
	Errors      []AttemptError
	Meta        json.RawMessage
	UniqueKey   []byte
	// UniqueStates is the mask of states (JobState.Bit) in which this job
	// blocks another with the same UniqueKey.
	UniqueStates uint8
	CreatedAt    time.Time
	// DependsOn lists the jobs this one waits for (see JobInsert).
	DependsOn         []int64
	DependencyFailure string

	// Duplicate is set on the job an enqueue returns when a unique job with
	// the same key already existed: nothing was inserted, and this is the
	// existing job (with any replaced fields updated). It is not stored.
	Duplicate bool
	// LeasedRun is the job's workflow run when the fetch that claimed this
	// attempt also leased the run to it (LeasedRun.LockedBy is the lease
	// token), saving the executor a lease of its own; nil otherwise. It is
	// not stored.
	LeasedRun *Run
}

// JobReplace says which fields of an existing unique job an enqueue that
// conflicts with it replaces, while that job is still available or
// scheduled (debouncing).
type JobReplace struct {
	ScheduledAt bool
	Args        bool
	Priority    bool
	MaxAttempts bool
}

// LowestJobPriority is the largest priority a job may have; 0 runs first.
const LowestJobPriority = 3

// JobInsert describes a job to insert. The caller has validated and
// defaulted it; drivers refuse what the schema cannot hold (Validate).
type JobInsert struct {
	Queue       string
	Kind        string
	Args        json.RawMessage
	RunID       uuid.UUID
	State       JobState // JobAvailable, JobScheduled or JobPending
	Priority    int
	MaxAttempts int
	// ScheduledAt is when the job becomes eligible; zero means now (the
	// database's clock).
	ScheduledAt  time.Time
	Meta         json.RawMessage
	UniqueKey    []byte
	UniqueStates uint8
	// DependsOn lists jobs that must complete before this one may run; with
	// State JobPending the job waits for them.
	DependsOn []int64
	// DependencyFailure says what a failed (cancelled or discarded)
	// dependency does to this job: "cancel" (default), "discard" or "ignore".
	DependencyFailure string
}

// JobFetch asks for up to Max eligible jobs of one queue, claimed for WorkerID.
type JobFetch struct {
	Queue    string
	Max      int
	WorkerID string
	// SkipRunJobs leaves jobs that carry workflow runs (RunID set) to other
	// clients: a client that cannot end a run with its job (no
	// queue.Config.EndedFunc) must not claim them.
	SkipRunJobs bool
}

// JobRescue asks to rescue the running jobs whose heartbeat is older than
// StaleAfter, at most Limit of them (see Executor.JobRescue).
type JobRescue struct {
	StaleAfter time.Duration
	Limit      int
	// SkipRunJobs leaves jobs that carry workflow runs to other clients, as
	// in JobFetch.
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
	State JobState
	// CurrentAttempt is the job's attempt count now: greater than Attempt
	// once the job was claimed again.
	CurrentAttempt int
}

// JobOutcome ends a running attempt in some state other than completed.
type JobOutcome struct {
	JobAttempt
	// State is JobRetryable, JobScheduled, JobCancelled or JobDiscarded.
	// JobScheduled is a snooze: the attempt does not count (MaxAttempts
	// grows by one).
	State JobState
	// ScheduledAt is when a retryable or snoozed job becomes eligible again.
	ScheduledAt time.Time
	// Error, when set, is appended to the job's error history.
	Error *AttemptError
}

// JobFilter selects jobs to list. Zero fields match everything.
type JobFilter struct {
	States []JobState
	Queue  string
	Kind   string
	RunID  uuid.UUID
	IDs    []int64
	// Limit caps the number of rows; zero means 1000.
	Limit int
	// AfterID lists jobs with a larger id, for paging.
	AfterID int64
}

// QueueStats counts the jobs of one queue in one state.
type QueueStats struct {
	Queue string
	State JobState
	Count int64
	// OldestDue is the earliest ScheduledAt among jobs waiting to run; nil
	// for other states.
	OldestDue *time.Time
}
