package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// WorkFunc works one job. Return nil to complete it, an error to retry it
// with backoff (until MaxAttempts), or the errors made by Snooze, Cancel and
// Discard. ctx is cancelled when the job times out, is cancelled by an
// operator, or the client stops hard.
type WorkFunc func(ctx context.Context, job *acidic.Job) error

// KindOptions tune how jobs of one kind are worked. The zero value is usable.
type KindOptions struct {
	// Backoff spaces retries. Default DefaultBackoff.
	Backoff BackoffFunc
	// Timeout bounds one attempt; zero means no limit.
	Timeout time.Duration
}

type kind struct {
	work WorkFunc
	opts KindOptions
}

// Workers maps job kinds to the functions that work them. Register every kind
// before starting the client; it is not safe to register while jobs run.
type Workers struct {
	kinds map[string]kind
}

// NewWorkers returns an empty registry.
func NewWorkers() *Workers { return &Workers{kinds: map[string]kind{}} }

// Handle registers fn for jobs of kind. It returns ErrDuplicateKind if the
// kind already has a worker, and ErrInvalid for a nil fn or a kind that is
// not a valid name (storage.CheckName: no job could have it).
func (w *Workers) Handle(kindName string, fn WorkFunc, opts KindOptions) error {
	if kindName == "" || fn == nil {
		return fmt.Errorf("%w: a worker needs a kind and a function", ErrInvalid)
	}
	if err := storage.CheckName("kind", kindName); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, dup := w.kinds[kindName]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateKind, kindName)
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	w.kinds[kindName] = kind{work: fn, opts: opts}
	return nil
}

// HandleArgs registers fn for jobs of kind, decoding each job's args into A
// first. A job whose args do not decode is discarded with ErrArgsDecode
// recorded, since retrying cannot fix it.
func HandleArgs[A any](w *Workers, kindName string, fn func(ctx context.Context, job *acidic.Job, args A) error, opts KindOptions) error {
	if fn == nil {
		return fmt.Errorf("%w: a worker needs a function", ErrInvalid)
	}
	return w.Handle(kindName, func(ctx context.Context, job *acidic.Job) error {
		var args A
		if err := json.Unmarshal(job.Args, &args); err != nil {
			return Discard(fmt.Errorf("%w: kind %q into %T: %w", ErrArgsDecode, job.Kind, args, err))
		}
		return fn(ctx, job, args)
	}, opts)
}

// Work runs the function registered for job.Kind on job as a client does:
// with the kind's Timeout applied to ctx, and a panic returned as an error.
// It returns the function's own error (ErrUnknownKind when the kind has no
// worker) and records nothing: what that error means for the job is the
// caller's business. Tests use it to run a worker on a job built in memory.
func (w *Workers) Work(ctx context.Context, job *acidic.Job) (err error) {
	k, ok := w.lookup(job.Kind)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownKind, job.Kind)
	}
	if k.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, k.opts.Timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("queue: job %d (%s) panicked: %v\n%s", job.ID, job.Kind, r, debug.Stack())
		}
	}()
	return k.work(ctx, job)
}

func (w *Workers) lookup(kindName string) (kind, bool) {
	if w == nil {
		return kind{}, false
	}
	k, ok := w.kinds[kindName]
	return k, ok
}
