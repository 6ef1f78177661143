package queue

import "errors"

var (
	// ErrInvalid is returned, wrapped with the reason, when an enqueue's kind,
	// args or options are not acceptable. Nothing is written.
	ErrInvalid = errors.New("queue: invalid job")

	// ErrArgsDecode is recorded on a job whose args could not be decoded into
	// its worker's args type. Such a job is discarded, not retried.
	ErrArgsDecode = errors.New("queue: job args do not decode")

	// ErrUnknownKind is recorded on a job that no registered worker handles.
	// The attempt fails and is retried with backoff, in case another process
	// that knows the kind picks it up.
	ErrUnknownKind = errors.New("queue: no worker for job kind")

	// ErrDuplicateKind is returned when a kind is registered twice.
	ErrDuplicateKind = errors.New("queue: kind already registered")

	// ErrNotStarted is returned by Stop on a client that is not running.
	ErrNotStarted = errors.New("queue: client not started")

	// ErrAlreadyStarted is returned by Start on a client that is running.
	ErrAlreadyStarted = errors.New("queue: client already started")
)
