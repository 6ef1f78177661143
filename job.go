package acidic

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

// Valid reports whether s is one of the known states.
func (s JobState) Valid() bool { return s.member() != 0 }

// member is the state's member of a JobStates set; 0 for an unknown state.
func (s JobState) member() JobStates {
	for i, st := range AllJobStates {
		if st == s {
			return 1 << i
		}
	}
	return 0
}

// JobStates is a set of job states, such as the states in which a unique
// job blocks another with its key (Job.UniqueStates). The zero value is the
// empty set.
type JobStates uint8

// NewJobStates returns the set of the given states; unknown states are left
// out.
func NewJobStates(states ...JobState) JobStates {
	var set JobStates
	for _, s := range states {
		set |= s.member()
	}
	return set
}

// Has reports whether s holds the state.
func (set JobStates) Has(s JobState) bool {
	m := s.member()
	return m != 0 && set&m != 0
}

// List returns the states in the set, in the order of AllJobStates.
func (set JobStates) List() []JobState {
	var out []JobState
	for _, s := range AllJobStates {
		if set.Has(s) {
			out = append(out, s)
		}
	}
	return out
}

// LowestJobPriority is the largest priority a job may have; 0 runs first.
const LowestJobPriority = 3

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
	Priority    int // 0 is the highest, LowestJobPriority the lowest
	Attempt     int // attempts made so far, counting the one running
	MaxAttempts int
	ScheduledAt time.Time
	AttemptedAt *time.Time
	AttemptedBy string
	FinalizedAt *time.Time
	Errors      []AttemptError
	Meta        json.RawMessage
	UniqueKey   []byte
	// UniqueStates are the states in which this job blocks another with the
	// same UniqueKey.
	UniqueStates JobStates
	CreatedAt    time.Time
	// DependsOn lists the jobs this one waits for.
	DependsOn         []int64
	DependencyFailure string
	// Tags were set at enqueue (queue.EnqueueOptions.Tags); nil when none.
	Tags []string

	// Duplicate is set on the job an enqueue returns when a unique job with
	// the same key already existed: nothing was inserted, and this is the
	// existing job (with any replaced fields updated). It is not stored.
	Duplicate bool
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
	// Tags lists only jobs that carry every one of these tags.
	Tags []string
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
