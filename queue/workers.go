package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// WorkFunc works one job. Return nil to complete it, an error to retry it
// with backoff (until MaxAttempts), or the errors made by Snooze, Cancel and
// Discard. ctx is cancelled when the job times out, is cancelled by an
// operator, or the client stops hard.
type WorkFunc func(ctx context.Context, job *acidic.Job) error

// KindOptions define a job kind in one place, together with the function
// Handle registers for it (Oban's "use Oban.Worker, queue: ..., priority:
// ..., max_attempts: ..., unique: ..."): how its jobs are enqueued and how
// they are worked. The zero value is usable.
//
// The enqueue options (Queue, Priority, MaxAttempts, ScheduleIn, Unique,
// Replace, Meta) are honoured by every enqueue of the kind through a client
// whose Config.Workers holds the kind: Enqueue, EnqueueTx, EnqueueMany,
// EnqueueGraph, the jobs a workflow step stages (steps.Context.Enqueue)
// and the acidictest helpers. For each option, an enqueue that sets it wins
// and one that leaves it unset (zero, nil, an unset Priority) takes the
// kind's. The schedule is one option: ScheduleIn comes from here only when
// the enqueue sets neither ScheduledAt nor ScheduleIn, so a kind can be
// debounced everywhere (ScheduleIn with Unique and Replace.ScheduledAt).
//
//	ws.Handle("refund", refund, queue.KindOptions{
//		MaxAttempts: 1,
//		Unique:      &queue.UniqueOptions{ArgKeys: []string{"order_id"}, States: queue.AllStates()},
//	})
//
// A client that only enqueues needs the kinds in its Config.Workers too, or
// their options are not applied.
type KindOptions struct {
	// Queue the kind's jobs go on. Default DefaultQueue.
	Queue string
	// Priority of the kind's jobs. Unset means 0, the highest.
	Priority Priority
	// MaxAttempts before a job of the kind is discarded. Zero means
	// DefaultMaxAttempts; 1 means at most once.
	MaxAttempts int
	// ScheduleIn delays every job of the kind that gives no schedule of its
	// own.
	ScheduleIn time.Duration
	// Unique makes every job of the kind unique; see UniqueOptions.
	Unique *UniqueOptions
	// Replace, with Unique, updates a still-waiting duplicate; see
	// ReplaceOptions.
	Replace *ReplaceOptions
	// Meta is kept on every job of the kind that gives none.
	Meta json.RawMessage

	// Backoff spaces retries. Default DefaultBackoff.
	Backoff BackoffFunc
	// Timeout bounds one attempt; zero means no limit.
	Timeout time.Duration
}

// enqueueOptions are the enqueue options of the kind, as EnqueueOptions.
func (o KindOptions) enqueueOptions() EnqueueOptions {
	return EnqueueOptions{Queue: o.Queue, Priority: o.Priority, MaxAttempts: o.MaxAttempts, ScheduleIn: o.ScheduleIn,
		Unique: o.Unique, Replace: o.Replace, Meta: o.Meta}
}

// validate returns ErrInvalid for options every enqueue of the kind would
// refuse.
func (o KindOptions) validate(kindName string) error {
	if o.Timeout < 0 {
		return fmt.Errorf("%w: kind %q: negative Timeout %s", ErrInvalid, kindName, o.Timeout)
	}
	p := EnqueueParams{Kind: kindName, Args: json.RawMessage("{}"), Opts: o.enqueueOptions()}
	if _, err := p.toInsert(time.Now()); err != nil {
		return err
	}
	return nil
}

type kind struct {
	work WorkFunc
	opts KindOptions
}

// Workers maps job kinds to their definitions: the functions that work them
// and their KindOptions. Register every kind before starting the client (or
// enqueueing through it).
type Workers struct {
	mu    sync.RWMutex
	kinds map[string]kind
}

// NewWorkers returns an empty registry.
func NewWorkers() *Workers { return &Workers{kinds: map[string]kind{}} }

// Handle defines kind: fn works its jobs, and opts say how they are
// enqueued and worked (see KindOptions). It returns ErrDuplicateKind if the
// kind already has a worker, and ErrInvalid for a nil fn, a kind that is not
// a valid name (storage.CheckName: no job could have it), or options every
// enqueue of the kind would refuse (a bad queue name or priority, negative
// attempts, delay or timeout, Replace without Unique, bad unique options or
// meta).
func (w *Workers) Handle(kindName string, fn WorkFunc, opts KindOptions) error {
	if kindName == "" || fn == nil {
		return fmt.Errorf("%w: a worker needs a kind and a function", ErrInvalid)
	}
	if err := storage.CheckName("kind", kindName); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := opts.validate(kindName); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
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
	w.mu.RLock()
	defer w.mu.RUnlock()
	k, ok := w.kinds[kindName]
	return k, ok
}
