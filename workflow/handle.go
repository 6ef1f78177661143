package workflow

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
)

// RunOf is a run of a workflow with arguments A and persisted state S, as
// the workflow's typed handle returns it (Get, GetByKey, Wait): the run
// record, embedded (ID, State, RecoveryPoint, Steps, Error, Result, ...),
// with its arguments and state decoded. Decode its result with
// acidic.DecodeResult[R](r.Run), a step's with acidic.DecodeStepResult.
type RunOf[A, S any] struct {
	*acidic.Run
	// Args are the run's arguments, decoded. The stored JSON stays in
	// r.Run.Args.
	Args A
	// Attrs is the run's persisted state, decoded: what the steps that
	// committed left in sc.State. The stored JSON stays in r.Run.Attrs.
	Attrs S
}

// Enqueuer enqueues runs of workflows by name. *Engine implements it, and so
// does *acidictest.Harness, which also runs what it enqueues as its mode
// says; a typed handle's Enqueue works with either.
type Enqueuer interface {
	Enqueue(ctx context.Context, workflow string, args any, opts EnqueueOptions) (*EnqueueResult, error)
}

// Enqueue creates a run of w with args, as Engine.Enqueue does (the same
// idempotency, the same errors), with the arguments' type checked by the
// compiler. The engine must have w registered: w itself, or a workflow of
// the same name and the same argument and state types (a second Define of
// it, say). Otherwise the result is ErrUnknownWorkflow and nothing is
// written.
func (w *Workflow[A, S]) Enqueue(ctx context.Context, c Enqueuer, args A, opts EnqueueOptions) (*EnqueueResult, error) {
	return c.Enqueue(ctx, w.name, w.typed(args), opts)
}

// EnqueueTx is Enqueue inside the caller's transaction ex (see
// Engine.EnqueueTx and postgres.Driver.WrapTx): the run and its job exist
// only if it commits.
func (w *Workflow[A, S]) EnqueueTx(ctx context.Context, e *Engine, ex storage.Executor, args A, opts EnqueueOptions) (*EnqueueResult, error) {
	return e.EnqueueTx(ctx, ex, w.name, w.typed(args), opts)
}

// Request asks for a run of w with args from a step of another workflow:
// pass it to sc.Await (the run becomes a child the step awaits) or
// sc.EnqueueRun. Set its Key or Queue before passing it. The engine checks
// that w is registered, as Enqueue does, when the step stages the run.
func (w *Workflow[A, S]) Request(args A) steps.RunRequest {
	return steps.RunRequest{Workflow: w.name, Args: w.typed(args)}
}

// Get returns a run of w with its step log, its arguments and state decoded
// (see Engine.Get). It is ErrUnknownWorkflow when e does not have w
// registered (see Enqueue), an error matching acidic.ErrNotFound when no run
// has the id or the run is of another workflow, and, when the stored JSON
// does not decode, an error matching ErrArgsDecode or ErrStateDecode and
// acidic.ErrDecode (an *acidic.DecodeError).
func (w *Workflow[A, S]) Get(ctx context.Context, e *Engine, id uuid.UUID) (*RunOf[A, S], error) {
	if err := w.registeredIn(e); err != nil {
		return nil, err
	}
	r, err := e.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return w.view(r)
}

// GetByKey returns the run of w with the idempotency key given at enqueue
// (see Engine.GetByKey), decoded as Get does.
func (w *Workflow[A, S]) GetByKey(ctx context.Context, e *Engine, key string) (*RunOf[A, S], error) {
	if err := w.registeredIn(e); err != nil {
		return nil, err
	}
	r, err := e.GetByKey(ctx, w.name, key)
	if err != nil {
		return nil, err
	}
	return w.view(r)
}

// Wait blocks until the run has finished or halted, or ctx ends (see
// Engine.Wait), and returns it decoded as Get does. When ctx ends first,
// the run as last read comes back with ctx's error, decoded when it can be
// (else nil). A run of another workflow is refused at once, before any wait.
func (w *Workflow[A, S]) Wait(ctx context.Context, e *Engine, id uuid.UUID) (*RunOf[A, S], error) {
	if err := w.registeredIn(e); err != nil {
		return nil, err
	}
	first, err := e.drv.RunGet(ctx, storage.RunGetParams{ID: id})
	if err != nil {
		return nil, err
	}
	if err := w.owns(first); err != nil {
		return nil, err
	}
	r, err := e.Wait(ctx, id)
	if err != nil {
		if r == nil {
			return nil, err
		}
		v, decErr := w.view(r)
		if decErr != nil {
			return nil, err
		}
		return v, err
	}
	return w.view(r)
}

// view decodes r, a run of w.
func (w *Workflow[A, S]) view(r *acidic.Run) (*RunOf[A, S], error) {
	if err := w.owns(r); err != nil {
		return nil, err
	}
	v := &RunOf[A, S]{Run: r}
	if len(r.Args) > 0 {
		if err := json.Unmarshal(r.Args, &v.Args); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrArgsDecode, &acidic.DecodeError{What: "args", RunID: r.ID, Type: fmt.Sprintf("%T", v.Args), Err: err})
		}
	}
	if len(r.Attrs) > 0 {
		if err := json.Unmarshal(r.Attrs, &v.Attrs); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStateDecode, &acidic.DecodeError{What: "state", RunID: r.ID, Type: fmt.Sprintf("%T", v.Attrs), Err: err})
		}
	}
	return v, nil
}

// owns refuses a run of another workflow.
func (w *Workflow[A, S]) owns(r *acidic.Run) error {
	if r.Workflow != w.name {
		return fmt.Errorf("workflow: run %s is a run of %q, not %q: %w", r.ID, r.Workflow, w.name, acidic.ErrNotFound)
	}
	return nil
}

// registeredIn reports whether e has w, or a workflow of w's name and types,
// registered: ErrUnknownWorkflow if not.
func (w *Workflow[A, S]) registeredIn(e *Engine) error {
	d, err := e.definition(w.name)
	if err != nil {
		return err
	}
	return w.registeredAs(d)
}

// registeredAs reports whether d, the workflow an engine has under w's name,
// has w's types: ErrUnknownWorkflow if not.
func (w *Workflow[A, S]) registeredAs(d Definition) error {
	if _, ok := d.(*Workflow[A, S]); !ok {
		return fmt.Errorf("%w: %q is registered as %T, this handle is %T", ErrUnknownWorkflow, w.name, d, w)
	}
	return nil
}

// typed wraps args given through w's handle, so that the engine can check
// w against the workflow it has registered under w's name.
func (w *Workflow[A, S]) typed(args A) typedArgs[A, S] {
	return typedArgs[A, S]{w: w, args: args}
}

// handleArgs are arguments given through a typed handle: the engine asks
// them whether the workflow it has under the handle's name is of the
// handle's types before it writes anything.
type handleArgs interface {
	registeredAs(d Definition) error
}

// typedArgs are arguments given through w's handle. They encode to JSON as
// the arguments themselves, so an Enqueuer that is not an Engine (a test
// double) sees ordinary arguments.
type typedArgs[A, S any] struct {
	w    *Workflow[A, S]
	args A
}

func (t typedArgs[A, S]) registeredAs(d Definition) error { return t.w.registeredAs(d) }

// MarshalJSON encodes the arguments.
func (t typedArgs[A, S]) MarshalJSON() ([]byte, error) { return json.Marshal(t.args) }
