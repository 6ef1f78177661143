package queue

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

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

	// ErrNotStarted is returned by Stop on a client that was never
	// started. (Stop on a client that has stopped returns nil.)
	ErrNotStarted = errors.New("queue: client not started")

	// ErrAlreadyStarted is returned by Start on a client that is running,
	// or whose Stop has not finished.
	ErrAlreadyStarted = errors.New("queue: client already started")

	// ErrStopTimeout is returned by Stop when, its context having no
	// deadline, Config.StopTimeout passed before the running jobs finished:
	// their contexts were cancelled.
	ErrStopTimeout = errors.New("queue: stop timeout passed; running jobs were cancelled")
)

// RunningJob is a job that was still running when Stop returned.
type RunningJob struct {
	ID      int64
	Kind    string
	Attempt int
	// Running is how long the attempt had been running when Stop gave up.
	Running time.Duration
}

// JobsRunningError is returned by Stop when jobs ignored the cancellation of
// their context and were still running when Stop returned. They run on in
// the background; once their heartbeat lapses (RescueAfter), another client
// rescues them. Err is why Stop stopped waiting: its context's error or
// ErrStopTimeout, which errors.Is finds through this error.
type JobsRunningError struct {
	Jobs []RunningJob
	Err  error
}

func (e *JobsRunningError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "queue: stop: %v; %d job(s) still running:", e.Err, len(e.Jobs))
	for i, j := range e.Jobs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " job %d (kind %s, attempt %d, running %s)", j.ID, j.Kind, j.Attempt, j.Running.Round(time.Millisecond))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *JobsRunningError) Unwrap() error { return e.Err }
