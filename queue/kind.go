package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// Kind is a job kind whose jobs carry arguments of type A: a typed handle
// for enqueueing and working them, so that the compiler checks the
// arguments that Client.Enqueue (by name, with any arguments) takes as they
// come. Declare one per kind, next to its argument type, and use it
// wherever the kind is enqueued or worked:
//
//	var sendEmail = queue.NewKind[EmailArgs]("send_email")
//
//	err := sendEmail.Handle(workers, func(ctx context.Context, job *acidic.Job, args EmailArgs) error { ... }, queue.KindOptions{})
//	job, err := sendEmail.Enqueue(ctx, client, EmailArgs{To: "ada@example.com"}, queue.EnqueueOptions{})
//
// The zero Kind has no name; enqueueing it is ErrInvalid.
type Kind[A any] struct {
	name string
}

// NewKind returns the kind named name, with arguments of type A. The name
// is checked where it is used (Enqueue, Handle): ErrInvalid for a name no
// job can have.
func NewKind[A any](name string) Kind[A] { return Kind[A]{name: name} }

// Name is the kind's name, stored as each job's Kind.
func (k Kind[A]) Name() string { return k.name }

// Enqueuer enqueues jobs by kind: a *Client, and a workflow step's context
// (*steps.Context), which stages the job in the step's transaction so that
// it exists only if the step commits.
type Enqueuer interface {
	Enqueue(ctx context.Context, kind string, args any, opts EnqueueOptions) (*acidic.Job, error)
}

// Enqueue inserts a job of the kind with args through c (see
// Client.Enqueue: the kind's defaults, unique options and errors apply).
func (k Kind[A]) Enqueue(ctx context.Context, c Enqueuer, args A, opts EnqueueOptions) (*acidic.Job, error) {
	return c.Enqueue(ctx, k.name, args, opts)
}

// EnqueueTx inserts a job of the kind with args through ex, a transaction
// of the caller's (see Client.EnqueueTx): the job exists only if it
// commits.
func (k Kind[A]) EnqueueTx(ctx context.Context, c *Client, ex storage.Executor, args A, opts EnqueueOptions) (*acidic.Job, error) {
	return c.EnqueueTx(ctx, ex, k.name, args, opts)
}

// Params returns a job of the kind with args for Client.EnqueueMany.
func (k Kind[A]) Params(args A, opts EnqueueOptions) EnqueueParams {
	return EnqueueParams{Kind: k.name, Args: args, Opts: opts}
}

// Handle registers fn as the worker of the kind in w, decoding each job's
// args into A first (see HandleArgs: a job whose args do not decode is
// discarded with ErrArgsDecode). A kind already registered in w is
// ErrDuplicateKind.
func (k Kind[A]) Handle(w *Workers, fn func(ctx context.Context, job *acidic.Job, args A) error, opts KindOptions) error {
	return HandleArgs(w, k.name, fn, opts)
}

// Args returns job's args decoded into A, for code that reads jobs (tests,
// tools). A job of another kind, or whose args do not decode, is
// ErrArgsDecode; the latter also matches acidic.ErrDecode (an
// *acidic.DecodeError).
func (k Kind[A]) Args(job *acidic.Job) (A, error) {
	var args A
	if job.Kind != k.name {
		return args, fmt.Errorf("%w: job %d is of kind %q, not %q", ErrArgsDecode, job.ID, job.Kind, k.name)
	}
	if err := json.Unmarshal(job.Args, &args); err != nil {
		return args, fmt.Errorf("%w: %w", ErrArgsDecode, &acidic.DecodeError{What: "job args", JobID: job.ID, Type: fmt.Sprintf("%T", args), Err: err})
	}
	return args, nil
}
