package storage

import (
	"context"
	"encoding/json"

	"github.com/acidic-go/acidic"
	"github.com/google/uuid"
)

// RunInsertParams describes a run to create.
type RunInsertParams struct {
	ID             uuid.UUID
	IdempotencyKey string
	Workflow       string
	Args           json.RawMessage
	Queue          string
	RecoveryPoint  string
	DefinitionHash string
	ParentRunID    uuid.UUID
	ParentStep     string
	// Attrs is the run's initial persisted state; empty is JSON null.
	Attrs json.RawMessage
	// Tags are the run's tags (see CheckTags); nil or empty for none.
	Tags []string
}

// RunLeaseParams asks to take a run's lock lease.
type RunLeaseParams struct {
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

// RunReleaseParams is the lease holder giving a run up, with a new state and
// error, without changing its progress (see Executor.RunRelease).
type RunReleaseParams struct {
	ID    uuid.UUID
	Token string
	State acidic.RunState
	Error string
	// Step, when set, is written to the step log (unless that step already
	// succeeded).
	Step *acidic.Step
}

// RunUpdateParams is a fenced write of a run's progress, made by the lease holder.
type RunUpdateParams struct {
	ID    uuid.UUID
	Token string
	State acidic.RunState
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
	Step *acidic.Step
	// Settle marks the run settled (Run.SettledAt): with a final State, the
	// caller meets the run's finish obligations in the same transaction.
	Settle bool
}

// RunEndParams ends a live run because a job that carried it ended for good; see
// Executor.RunEnd.
type RunEndParams struct {
	ID uuid.UUID
	// Job is the job that ended (cancelled or discarded). Only a job of the
	// run's own workflow kind carries it.
	Job int64
	// Kind is the ended job's kind.
	Kind string
	// State is the run's new state, acidic.RunFailed or acidic.RunCancelled.
	State acidic.RunState
	// Error says why, for the run's error.
	Error string
}

// EachRunPage lists every run f matches, a page at a time (f.Limit runs, 1000
// when zero), in (created_at, id) order, and calls fn with each page. The
// pages follow the last run listed, so fn may change the runs it is given,
// even so that they no longer match f.
func EachRunPage(ctx context.Context, ex Executor, f acidic.RunFilter, fn func(page []*acidic.Run) error) error {
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
