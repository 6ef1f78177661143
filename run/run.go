package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var (
	// ErrMismatchedArgs is returned when a run is enqueued with an
	// idempotency key that already names a run with other arguments (or of
	// another workflow). Reusing a key for different work is a bug in the
	// caller; nothing is written.
	ErrMismatchedArgs = errors.New("run: idempotency key already used with different arguments")

	// ErrLocked is returned by Acquire when another worker holds a live lease
	// on the run. Try again later.
	ErrLocked = errors.New("run: locked by another worker")

	// ErrFinished is returned by Acquire for a run that has finished
	// (succeeded, failed or cancelled): there is nothing left to execute.
	ErrFinished = errors.New("run: already finished")

	// ErrAwaiting is returned by Acquire for a run parked until its children
	// finish; the last child to finish enqueues its continuation.
	ErrAwaiting = errors.New("run: awaiting child runs")

	// ErrHalted is returned by Acquire for a run a step halted: it rests
	// until it is retried (or cancelled), whatever job is delivered for it.
	ErrHalted = errors.New("run: halted")
)

// Create inserts the run unless its idempotency key exists. It returns the
// run and whether it was created. An existing run with other arguments or of
// another workflow is ErrMismatchedArgs; arguments that are not JSON are
// ErrArgs, and a run the storage cannot hold (storage.RunInsertParams.Validate:
// invalid UTF-8 in the arguments, a key or name beyond its limit) is
// acidic.ErrInvalid. Either way nothing is written.
func Create(ctx context.Context, ex storage.Executor, in storage.RunInsertParams) (*acidic.Run, bool, error) {
	canonical, err := Canonical(in.Args)
	if err != nil {
		return nil, false, err
	}
	// Checked as given: canonical JSON would have turned invalid UTF-8 into
	// U+FFFD.
	if err := in.Validate(); err != nil {
		return nil, false, fmt.Errorf("run: create: %w", err)
	}
	in.Args = canonical
	rec, created, err := ex.RunInsert(ctx, in)
	if err != nil {
		return nil, false, fmt.Errorf("run: create: %w", err)
	}
	if created {
		return rec, true, nil
	}
	if rec.Workflow != in.Workflow {
		return nil, false, fmt.Errorf("%w: key %q belongs to a run of workflow %q, not %q", ErrMismatchedArgs, in.IdempotencyKey, rec.Workflow, in.Workflow)
	}
	stored, err := Canonical(rec.Args)
	if err != nil {
		return nil, false, err
	}
	if !bytes.Equal(stored, canonical) {
		return nil, false, fmt.Errorf("%w: key %q (run %s)", ErrMismatchedArgs, in.IdempotencyKey, rec.ID)
	}
	return rec, false, nil
}

// Lease is a worker's claim on a run, presented with every write.
type Lease struct {
	// Token identifies the holder.
	Token string
	// Job is the job attempt executing the run.
	Job storage.JobAttempt
}

// NewLease returns a lease with a fresh token for a job attempt.
func NewLease(job storage.JobAttempt) Lease {
	return Lease{Token: uuid.NewString(), Job: job}
}

// Acquire takes the run's lease for a job attempt of the run. A lease whose
// holding attempt has ended (completed, failed, cancelled or rescued) is
// taken over; a lease whose holder still runs is never taken, however old.
// It returns ErrLocked if a live holder has the lease, ErrFinished for a
// finished run, ErrAwaiting for one parked on its children and ErrHalted for
// a halted one, each with the run as it is.
func Acquire(ctx context.Context, ex storage.Executor, id uuid.UUID, lease Lease) (*acidic.Run, error) {
	rec, ok, err := ex.RunLease(ctx, storage.RunLeaseParams{ID: id, Token: lease.Token, Job: lease.Job})
	if err != nil {
		return nil, fmt.Errorf("run: acquire: %w", err)
	}
	if ok {
		return rec, nil
	}
	switch {
	case rec.State.Final():
		return rec, fmt.Errorf("%w: run %s is %s", ErrFinished, id, rec.State)
	case rec.State == acidic.RunAwaiting:
		return rec, fmt.Errorf("%w: run %s awaits %d", ErrAwaiting, id, rec.Awaiting)
	case rec.State == acidic.RunHalted:
		return rec, fmt.Errorf("%w: run %s halted at step %q", ErrHalted, id, rec.RecoveryPoint)
	default:
		return rec, fmt.Errorf("%w: run %s held by %s since %v", ErrLocked, id, rec.LockedBy, rec.LockedAt)
	}
}
