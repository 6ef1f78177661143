package acidic

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// RunState is where a workflow run is in its life.
type RunState string

// Run states.
const (
	// RunPending: created, not yet picked up (or released after an error, to be retried).
	RunPending RunState = "pending"
	// RunRunning: a worker holds its lease and is executing steps.
	RunRunning RunState = "running"
	// RunAwaiting: parked until its child runs finish.
	RunAwaiting RunState = "awaiting"
	// RunHalted: a step halted the run (steps.Halt). It rests: no job
	// executes it, and only Retry (or Cancel) moves it on.
	RunHalted RunState = "halted"
	// RunSucceeded: every step committed. Final.
	RunSucceeded RunState = "succeeded"
	// RunFailed: failed for good (attempts exhausted or an unrecoverable error).
	// Final unless retried.
	RunFailed RunState = "failed"
	// RunCancelled: stopped on purpose. Final unless retried.
	RunCancelled RunState = "cancelled"
)

// Valid reports whether s is one of the run states.
func (s RunState) Valid() bool {
	switch s {
	case RunPending, RunRunning, RunAwaiting, RunHalted, RunSucceeded, RunFailed, RunCancelled:
		return true
	}
	return false
}

// AllRunStates lists every run state, in the order of the state machine.
var AllRunStates = []RunState{RunPending, RunRunning, RunAwaiting, RunHalted, RunSucceeded, RunFailed, RunCancelled}

// Live reports whether a job of the run is expected to move it on: pending
// or running. Awaiting and halted runs rest until something else (the last
// child, an operator) moves them; final runs have ended.
func (s RunState) Live() bool { return s == RunPending || s == RunRunning }

// Final reports whether the run has finished, one way or another.
func (s RunState) Final() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

// Run is the record of one workflow run, keyed by its idempotency key.
// It is the run's state of record: the engine reads it to know where to
// resume, and the client API (workflow.Engine's Get, List and Wait) returns it.
type Run struct {
	ID             uuid.UUID
	IdempotencyKey string
	Workflow       string
	Args           json.RawMessage
	State          RunState
	Queue          string
	// RecoveryPoint is the name of the next step to run.
	RecoveryPoint string
	// DefinitionHash identifies the workflow's list of steps when the run was created.
	DefinitionHash string
	// Attrs is the run's persisted state, as JSON.
	Attrs json.RawMessage
	// Cursor is the position inside a for-each step.
	Cursor      int64
	LockedBy    string
	LockedAt    *time.Time
	LastRunAt   *time.Time
	ParentRunID uuid.UUID
	ParentStep  string
	// Awaiting counts the children that have not finished yet.
	Awaiting   int
	Error      string
	Result     json.RawMessage
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt *time.Time
	// SettledAt is when the obligations of the run's last finish were met
	// (its OnFinish callback staged, its parent counted off); nil while the
	// run has not finished, or has finished and not yet settled.
	SettledAt *time.Time
	// Tags were set at enqueue (workflow.EnqueueOptions.Tags); nil when
	// none. The run's jobs do not carry them.
	Tags []string

	// Steps is the step log: one entry per step that committed, failed or
	// is awaiting, in step order. A run read on its own (workflow's Get)
	// carries it; runs in a list leave it empty. It is not a column of the
	// run.
	Steps []Step
}

// StepState is the outcome recorded for a step in the step log.
type StepState string

// Step states.
const (
	StepSucceeded StepState = "succeeded"
	StepFailed    StepState = "failed"
	StepAwaiting  StepState = "awaiting"
	StepHalted    StepState = "halted"
	StepRepeating StepState = "repeating"
)

// Valid reports whether s is one of the defined step states.
func (s StepState) Valid() bool {
	switch s {
	case StepSucceeded, StepFailed, StepAwaiting, StepHalted, StepRepeating:
		return true
	}
	return false
}

// Step is one row of a run's step log.
type Step struct {
	RunID    uuid.UUID
	Position int
	Name     string
	State    StepState
	Attempt  int
	// Executions counts how often the step ran (repeats, for-each items and retries).
	Executions int
	Result     json.RawMessage
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time

	// Logs are the records the step wrote through its logger in the tries
	// that committed, oldest first, up to the caps per step
	// (storage.MaxStepLogRecords records, storage.MaxStepLogBytes bytes).
	// When records were dropped beyond them, the last record is a marker
	// saying how many (level WARN, attrs {"dropped": n}) and LogsDropped
	// counts them. Read with the run (workflow's Get, acidic runs get);
	// empty in a bare RunSteps.
	Logs        []LogRecord
	LogsDropped int
	// Failures are the step's failed attempts, oldest first: the latest
	// storage.MaxStepFailures of them; FailuresDropped counts the older ones
	// no longer kept. A step that later succeeded keeps its failures.
	Failures        []StepFailure
	FailuresDropped int
}

// RunFilter selects runs to list. Zero fields match everything.
type RunFilter struct {
	States   []RunState
	Workflow string
	// ParentRunID lists the children of one run.
	ParentRunID uuid.UUID
	// ParentStep, with ParentRunID, lists only the children awaited by
	// that step of the parent.
	ParentStep string
	// Limit caps the number of rows; zero means 1000.
	Limit int
	// AfterCreatedAt and AfterID page through runs: only runs after the run
	// with that creation time and id, in (created_at, id) order, are listed.
	// Pass the last run of the previous page.
	AfterCreatedAt time.Time
	AfterID        uuid.UUID
	// Tags lists only runs that carry every one of these tags.
	Tags []string
}
