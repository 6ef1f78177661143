package workflow

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

var (
	// ErrUnknownWorkflow is returned when enqueuing a workflow no Register
	// call named, and by every call of a typed handle (Workflow's Enqueue,
	// Get, ...) whose workflow the engine does not have registered under its
	// name with its argument and state types. Nothing is written.
	ErrUnknownWorkflow = errors.New("workflow: unknown workflow")

	// ErrInvalid is returned, wrapped with the reason, when an enqueue's
	// idempotency key, options or arguments cannot be stored (see
	// docs/limits.md). The error also matches acidic.ErrInvalid, and
	// queue.ErrInvalid when the run's job options are at fault. Nothing is
	// written.
	ErrInvalid = errors.New("workflow: invalid run")

	// ErrInvalidDefinition is returned by Register for a workflow that cannot
	// run: no name, no steps, duplicate or empty step names.
	ErrInvalidDefinition = errors.New("workflow: invalid definition")

	// ErrArgsDecode is returned when a run's arguments do not decode into the
	// workflow's argument type: at enqueue (nothing is written), when
	// stored arguments no longer decode (the run fails with this reason), and
	// by a typed handle's Get or Wait (with an *acidic.DecodeError).
	ErrArgsDecode = errors.New("workflow: arguments do not decode")

	// ErrStateDecode fails a run whose persisted state no longer decodes
	// into the workflow's state type; a typed handle's Get or Wait returns
	// it for such a run (with an *acidic.DecodeError). An enqueue whose
	// initial state (EnqueueOptions.State) does not encode or decode into
	// that type returns it too, and writes nothing.
	ErrStateDecode = errors.New("workflow: persisted state does not decode")

	// ErrDefinitionChanged fails a run whose workflow's steps changed since
	// it was created (a step was renamed, removed, added or moved). Define a
	// workflow under a new name to change its steps while old runs finish.
	ErrDefinitionChanged = errors.New("workflow: definition changed under a running run")

	// ErrNotRetryable is returned by Retry for a run that succeeded or is
	// still in progress.
	ErrNotRetryable = errors.New("workflow: run cannot be retried")

	// ErrAlreadyRegistered is returned when two workflows share a name.
	ErrAlreadyRegistered = errors.New("workflow: name already registered")

	// ErrAwaitExisting fails a step that awaits a run whose idempotency key
	// names a run that already exists: that run is not this run's child and
	// would never resume it. Await runs with fresh keys.
	ErrAwaitExisting = errors.New("workflow: awaited run already exists")

	// ErrPanic is the error of a step whose code panicked; the message
	// carries the panic's value and stack. The step failed like any other:
	// it rolled back, and the run retries it while attempts remain.
	ErrPanic = errors.New("workflow: step panicked")

	// ErrStarted is returned by Register after Start.
	ErrStarted = errors.New("workflow: engine already started")
)

// EnqueueUnknownError is returned by Engine.Enqueue when the COMMIT of the
// transaction that created a run got no answer (the connection broke): the
// run may or may not exist. errors.Is(err, acidic.ErrCommitUnknown) holds.
// Engine.Get(RunID) tells which; enqueueing again with the same idempotency
// key is safe (it returns the run if it exists), while the default key
// (run.ByJobID, a new key per enqueue) would make a second run.
type EnqueueUnknownError struct {
	// RunID is the run the transaction created, if it committed.
	RunID uuid.UUID
	// Key is that run's idempotency key.
	Key string
	// Err is the commit's error.
	Err error
}

func (e *EnqueueUnknownError) Error() string {
	return fmt.Sprintf("workflow: enqueue of run %s (key %q) may or may not have committed: %v", e.RunID, e.Key, e.Err)
}

// Unwrap returns the commit's error.
func (e *EnqueueUnknownError) Unwrap() error { return e.Err }
