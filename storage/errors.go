package storage

import "errors"

var (
	// ErrNotFound is returned when a job or run with the given id or key does not exist.
	ErrNotFound = errors.New("storage: not found")

	// ErrClosed is returned when the driver's connection pool has been closed.
	ErrClosed = errors.New("storage: driver closed")

	// ErrLeaseLost is returned by a fenced run write when the caller no longer
	// holds the run's lock lease: another worker took the run over after the
	// lease expired. Nothing was written.
	ErrLeaseLost = errors.New("storage: run lease lost")

	// ErrSerialization marks an error that aborted a transaction because of a
	// serialization failure (SQLSTATE 40001) or a deadlock (40P01). Running the
	// transaction again may succeed. Drivers wrap such errors so that
	// errors.Is(err, ErrSerialization) holds and the original error is kept.
	ErrSerialization = errors.New("storage: serialization failure")

	// ErrConflict is returned when a write would break a uniqueness rule,
	// such as retrying a unique job while another job holds its key.
	ErrConflict = errors.New("storage: conflicts with an existing row")

	// ErrInvalid is returned, before anything is written, for a write that
	// carries a value the storage does not hold: a name, key or text beyond
	// its limit or with NUL, control characters or invalid UTF-8; JSON that
	// jsonb cannot store; a scheduled time outside years 1 to MaxYear; a run,
	// step or job state outside the defined ones (or one a write cannot set,
	// such as a new job that is running); a negative awaiting count; a job
	// priority outside 0..LowestJobPriority; an attempt limit outside
	// 1..math.MaxInt32; an unknown dependency rule. The error names the field
	// and the limit; docs/limits.md lists them all.
	ErrInvalid = errors.New("storage: invalid value")

	// ErrRetriesExhausted is returned by a transaction helper that gave up
	// after retrying serialization failures as often as it was allowed to.
	ErrRetriesExhausted = errors.New("storage: transaction retries exhausted")

	// ErrCommitUnknown is returned when a transaction's COMMIT was sent but
	// its answer never came (the connection broke): the transaction may or
	// may not have committed. Read what it wrote before doing it again.
	ErrCommitUnknown = errors.New("storage: commit outcome unknown")
)
