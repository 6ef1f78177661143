package storage

import (
	"context"
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
}

// RunInsert describes a run to create.
type RunInsert struct {
	ID             uuid.UUID
	IdempotencyKey string
	Workflow       string
	Args           json.RawMessage
	Queue          string
	RecoveryPoint  string
	DefinitionHash string
	ParentRunID    uuid.UUID
	ParentStep     string
}

// RunLease asks to take a run's lock lease.
type RunLease struct {
	ID uuid.UUID
	// Token identifies this holder; fenced writes must present it.
	Token string
	// Job is the job attempt taking the lease, an attempt of a job of this
	// run (its RunID is ID); required. The lease lives as long as that
	// attempt runs (its heartbeat keeps it running): it is taken over only
	// once the attempt has ended (completed, failed, cancelled, or rescued
	// after its worker stopped heartbeating), never because of its age.
	Job JobAttempt
}

// RunRelease is the lease holder giving a run up, with a new state and
// error, without changing its progress (see Executor.RunRelease).
type RunRelease struct {
	ID    uuid.UUID
	Token string
	State RunState
	Error string
	// Step, when set, is written to the step log (unless that step already
	// succeeded).
	Step *Step
}

// RunUpdate is a fenced write of a run's progress, made by the lease holder.
type RunUpdate struct {
	ID    uuid.UUID
	Token string
	State RunState
	// RecoveryPoint, Attrs and Cursor are written as given.
	RecoveryPoint string
	Attrs         json.RawMessage
	Cursor        int64
	Awaiting      int
	// Release clears the lease (the holder stops working on the run).
	Release bool
	Error   string
	Result  json.RawMessage
	// Step, when set, is written to the step log.
	Step *Step
	// Settle marks the run settled (Run.SettledAt): with a final State, the
	// caller meets the run's finish obligations in the same transaction.
	Settle bool
}

// RunEnd ends a live run because a job that carried it ended for good; see
// Executor.RunEnd.
type RunEnd struct {
	ID uuid.UUID
	// Job is the job that ended (cancelled or discarded). Only a job of the
	// run's own workflow kind carries it.
	Job int64
	// Kind is the ended job's kind.
	Kind string
	// State is the run's new state, RunFailed or RunCancelled.
	State RunState
	// Error says why, for the run's error.
	Error string
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
}

// EachRunPage lists every run f matches, a page at a time (f.Limit runs, 1000
// when zero), in (created_at, id) order, and calls fn with each page. The
// pages follow the last run listed, so fn may change the runs it is given,
// even so that they no longer match f.
func EachRunPage(ctx context.Context, ex Executor, f RunFilter, fn func(page []*Run) error) error {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	for {
		page, err := ex.RunList(ctx, f)
		if err != nil {
			return err
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < f.Limit {
			return nil
		}
		last := page[len(page)-1]
		f.AfterCreatedAt, f.AfterID = last.CreatedAt, last.ID
	}
}
