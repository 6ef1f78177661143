package acidic

import "errors"

// Errors a caller may test for with errors.Is. Drivers return them (wrapped,
// with the details) and the engine passes them on.
var (
	// ErrNotFound is returned when a job or run with the given id or key
	// does not exist.
	ErrNotFound = errors.New("acidic: not found")

	// ErrClosed is returned when the driver's connections have been closed.
	ErrClosed = errors.New("acidic: driver closed")

	// ErrLeaseLost is returned by a fenced run write when the caller no
	// longer holds the run's lease: the job attempt that held it ended and
	// another attempt took the run over. Nothing was written.
	ErrLeaseLost = errors.New("acidic: run lease lost")

	// ErrSerialization marks an error that aborted a transaction because of
	// a serialization failure or a deadlock. Running the transaction again
	// may succeed. Drivers wrap such errors so that
	// errors.Is(err, ErrSerialization) holds and the original error is kept.
	ErrSerialization = errors.New("acidic: serialization failure")

	// ErrConflict is returned when a write would break a uniqueness rule,
	// such as retrying a unique job while another job holds its key.
	ErrConflict = errors.New("acidic: conflicts with an existing row")

	// ErrInvalid is returned, before anything is written, for a write that
	// carries a value the storage does not hold: a name, key or text beyond
	// its limit or with NUL, control characters or invalid UTF-8; JSON that
	// the storage cannot keep; a scheduled time outside years 1 to
	// storage.MaxYear; a run, step or job state outside the defined ones (or
	// one a write cannot set, such as a new job that is running); a negative
	// awaiting count; a job priority outside 0..LowestJobPriority; an
	// attempt limit outside 1..math.MaxInt32; an unknown dependency rule.
	// The error names the field and the limit; docs/limits.md lists them
	// all.
	ErrInvalid = errors.New("acidic: invalid value")

	// ErrRetriesExhausted is returned by a transaction that gave up after
	// retrying serialization failures as often as it was allowed to.
	ErrRetriesExhausted = errors.New("acidic: transaction retries exhausted")

	// ErrCommitUnknown is returned when a transaction's COMMIT was sent but
	// its answer never came (the connection broke): the transaction may or
	// may not have committed. Read what it wrote before doing it again.
	ErrCommitUnknown = errors.New("acidic: commit outcome unknown")
)

// ErrUnknownQueue is returned, and nothing is written, when a control names
// a queue the store does not know: no node ever registered it
// (storage.Controls.QueueRegister), it was never controlled, and it has no unfinished
// job. Such a name is most likely a typo.
var ErrUnknownQueue = errors.New("acidic: unknown queue")

// ErrInUse is returned by a driver's RunDelete (and workflow.Engine.DeleteRun) for a run that something still needs:
// the run has not finished (or its finish has not been settled: its OnFinish
// callback staged, its parent counted off), a job of it has not finished (its
// OnFinish callback, say), a child run of it has not finished, or its parent
// has not finished and may still read it. The error says which. Nothing was
// deleted.
var ErrInUse = errors.New("acidic: still in use")
