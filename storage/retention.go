package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/google/uuid"
)

// Retention is the part of an Executor that deletes finished work for good:
// pruning finished jobs and runs past their retention, a batch at a time, and
// deleting one run on purpose. A batch is one statement that skips the rows
// other transactions hold, so pruning never waits for a worker and never
// holds many locks for long; call it again until it deletes fewer rows than
// its limit.
type Retention interface {
	// JobPruneByState deletes up to p.Limit jobs that reached a final state
	// named in p.Retention longer than that state's duration ago (measured
	// from Job.FinalizedAt on the store's clock), except jobs of the queues
	// in p.KeepQueues, and returns how many it deleted. It keeps a cancelled
	// or discarded job that a pending job depends on (the dependents are
	// not resolved yet, and a missing dependency counts as completed) and a
	// job whose attempt still holds its run's lease (the lease is taken over
	// only on evidence from that job). Jobs in a final state that
	// p.Retention does not name are kept.
	JobPruneByState(ctx context.Context, p JobPruneByStateParams) (int, error)
	// RunPrune deletes up to p.Limit runs that reached a final state named in
	// p.Retention longer than that state's duration ago (Run.FinishedAt),
	// except runs of the workflows in p.KeepWorkflows, each with its step
	// log and its finished jobs (those of p.KeepJobQueues stay, detached
	// from the run), and returns how many runs it deleted. It never deletes
	// a run that still owes its finish (not settled), has a job that has not
	// finished (its OnFinish callback, say), or a child that has not
	// finished; nor a child run while its parent exists: a parent may read
	// its children's results in any later step, also after a retry. Once the
	// parent is deleted its children stand alone and their own retention
	// applies.
	RunPrune(ctx context.Context, p RunPruneParams) (int, error)
	// RunDelete deletes one finished run with its step log and its finished
	// jobs (those of p.KeepJobQueues stay, detached), and returns the run as
	// it was. A run that something still needs is ErrInUse, wrapped with the
	// reason (see ErrInUse), and nothing is deleted; an unknown id is
	// acidic.ErrNotFound. Its children stay, detached (Run.ParentRunID cleared).
	// Outside a transaction it runs in one of its own; inside one, the run
	// stays locked until that transaction ends.
	RunDelete(ctx context.Context, p RunDeleteParams) (*acidic.Run, error)
}

// JobPruneByStateParams asks to prune finished jobs by final state (see
// Retention.JobPruneByState).
type JobPruneByStateParams struct {
	// Retention holds how long jobs are kept in each final state (completed,
	// cancelled, discarded) it names; a state it does not name is kept for
	// ever. Zero deletes every job finalized before the call.
	Retention map[acidic.JobState]time.Duration
	// KeepQueues lists queues whose finished jobs are kept for ever.
	KeepQueues []string
	// Limit caps how many jobs one call deletes; at least 1.
	Limit int
}

// Validate returns acidic.ErrInvalid for a state that is not final, a negative
// duration, an invalid queue name or a Limit below 1.
func (p JobPruneByStateParams) Validate() error {
	for s, d := range p.Retention {
		if !s.Final() {
			return fmt.Errorf("%w: job retention for state %q: only completed, cancelled and discarded jobs are pruned", acidic.ErrInvalid, s)
		}
		if d < 0 {
			return fmt.Errorf("%w: job retention for state %s is negative (%s)", acidic.ErrInvalid, s, d)
		}
	}
	for _, q := range p.KeepQueues {
		if err := CheckName("kept queue", q); err != nil {
			return err
		}
	}
	if p.Limit < 1 {
		return fmt.Errorf("%w: prune limit %d: at least 1", acidic.ErrInvalid, p.Limit)
	}
	return nil
}

// RunPruneParams asks to prune finished runs by final state (see
// Retention.RunPrune).
type RunPruneParams struct {
	// Retention holds how long runs are kept in each final state
	// (succeeded, failed, cancelled) it names; a state it does not name is
	// kept for ever. Zero deletes every run finished before the call.
	Retention map[acidic.RunState]time.Duration
	// KeepWorkflows lists workflows whose runs are kept for ever.
	KeepWorkflows []string
	// KeepJobQueues lists queues whose finished jobs outlive their run: they
	// are detached from it (Job.RunID cleared) instead of deleted with it.
	KeepJobQueues []string
	// Limit caps how many runs one call deletes; at least 1.
	Limit int
}

// Validate returns acidic.ErrInvalid for a state that is not final, a negative
// duration, an invalid workflow or queue name or a Limit below 1.
func (p RunPruneParams) Validate() error {
	for s, d := range p.Retention {
		if !s.Final() {
			return fmt.Errorf("%w: run retention for state %q: only succeeded, failed and cancelled runs are pruned", acidic.ErrInvalid, s)
		}
		if d < 0 {
			return fmt.Errorf("%w: run retention for state %s is negative (%s)", acidic.ErrInvalid, s, d)
		}
	}
	for _, w := range p.KeepWorkflows {
		if err := CheckName("kept workflow", w); err != nil {
			return err
		}
	}
	for _, q := range p.KeepJobQueues {
		if err := CheckName("kept queue", q); err != nil {
			return err
		}
	}
	if p.Limit < 1 {
		return fmt.Errorf("%w: prune limit %d: at least 1", acidic.ErrInvalid, p.Limit)
	}
	return nil
}

// RunDeleteParams asks to delete one finished run (see Retention.RunDelete).
type RunDeleteParams struct {
	// ID is the run.
	ID uuid.UUID
	// Except is a job of the run that may still be unfinished: the OnFinish
	// callback job asking for its own run's deletion. Zero for none. It is
	// not deleted; it stays, detached from the run.
	Except int64
	// KeepJobQueues lists queues whose finished jobs outlive their run, as
	// in RunPruneParams.
	KeepJobQueues []string
}

// Validate returns acidic.ErrInvalid for a nil ID or an invalid queue name.
func (p RunDeleteParams) Validate() error {
	if p.ID == uuid.Nil {
		return fmt.Errorf("%w: run delete: no run ID", acidic.ErrInvalid)
	}
	for _, q := range p.KeepJobQueues {
		if err := CheckName("kept queue", q); err != nil {
			return err
		}
	}
	return nil
}
