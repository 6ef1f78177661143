package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/storage"
)

// EnqueueOptions tune one enqueued run. They override the workflow's Options.
type EnqueueOptions struct {
	// Queue overrides the workflow's queue.
	Queue string
	// Priority overrides the workflow's priority (Options.Priority) when
	// set: queue.PriorityOf(0) runs the run's jobs at 0 whatever the
	// workflow's priority.
	Priority queue.Priority
	// ScheduledAt or ScheduleIn delays the run's first step.
	ScheduledAt time.Time
	ScheduleIn  time.Duration
	// Key sets the idempotency key, overriding the workflow's strategy. Keys
	// are namespaced per workflow: the run's stored key is the workflow's
	// name, a colon and Key (as run.By makes it), so the same Key given to
	// two workflows names two runs. A key, given or derived, is 1 to
	// storage.MaxKeyBytes bytes of UTF-8 without NUL.
	Key string
	// State is the run's initial persisted state, which its first step
	// sees in sc.State (AcidicJob's "providing"): a value of the
	// workflow's state type S, or its JSON as a json.RawMessage. Nil starts
	// from S's zero value. State that does not encode, or does not decode
	// into S, is ErrStateDecode, and nothing is written; Workflow.WithState
	// sets it with the compiler checking its type.
	//
	// State is not part of the run's identity: an enqueue whose key names
	// an existing run with the same arguments returns that run (Duplicate)
	// as it is, whatever State it gave, since the existing run's state may
	// have moved on. What tells two requests apart belongs in the
	// arguments, which an existing key compares (run.ErrMismatchedArgs).
	State any
	// Tags label the run for finding it again (acidic.RunFilter.Tags,
	// acidic runs list -tag); the run's jobs do not carry them. At most
	// storage.MaxTags, each 1 to storage.MaxTagBytes bytes of printable
	// UTF-8, none twice; otherwise ErrInvalid, and nothing is written. A
	// duplicate enqueue (same key) keeps the existing run's tags.
	Tags []string
}

// EnqueueResult is what Enqueue did.
type EnqueueResult struct {
	// Run is the new run, or the existing run with the same key.
	Run *acidic.Run
	// Duplicate is true when a run with the key already existed: nothing was
	// enqueued and Run is that run.
	Duplicate bool
}

// Enqueue creates a run of the named workflow and the job that executes it,
// in one transaction. A run with the same idempotency key and the same
// arguments is returned as it is (Duplicate); with other arguments the result
// is run.ErrMismatchedArgs. An unregistered workflow is ErrUnknownWorkflow,
// arguments that do not decode into its argument type ErrArgsDecode, and a
// key, queue, schedule or arguments beyond the storage's limits (invalid
// UTF-8 in the arguments, say; see docs/limits.md) ErrInvalid: in every case
// nothing is written.
//
// Once the run is written, the caller's context no longer cancels the
// COMMIT. If the COMMIT's answer is lost (the connection broke), the result
// is an *EnqueueUnknownError naming the run that may or may not exist.
func (e *Engine) Enqueue(ctx context.Context, workflow string, args any, opts EnqueueOptions) (*EnqueueResult, error) {
	var res *EnqueueResult
	err := e.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		var err error
		res, err = e.EnqueueTx(ctx, tx, workflow, args, opts)
		return err
	})
	if errors.Is(err, acidic.ErrCommitUnknown) && res != nil {
		return nil, &EnqueueUnknownError{RunID: res.Run.ID, Key: res.Run.IdempotencyKey, Err: err}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// EnqueueTx is Enqueue inside the caller's transaction (see
// postgres.Driver.WrapTx): the run and its job exist only if it commits.
func (e *Engine) EnqueueTx(ctx context.Context, ex storage.Executor, workflow string, args any, opts EnqueueOptions) (*EnqueueResult, error) {
	return e.enqueue(ctx, ex, workflow, args, opts, uuid.Nil, "")
}

func (e *Engine) enqueue(ctx context.Context, ex storage.Executor, workflow string, args any, opts EnqueueOptions, parent uuid.UUID, parentStep string) (*EnqueueResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := e.definition(workflow)
	if err != nil {
		return nil, err
	}
	if h, ok := args.(handleArgs); ok {
		if err := h.registeredAs(d); err != nil {
			return nil, err
		}
	}
	raw, err := encodeArgs(args)
	if err != nil {
		return nil, fmt.Errorf("%w: workflow %q: %w", ErrArgsDecode, workflow, err)
	}
	if err := d.decodeArgs(raw); err != nil {
		return nil, fmt.Errorf("%w: workflow %q: %w", ErrArgsDecode, workflow, err)
	}
	attrs, err := initialState(d, opts.State)
	if err != nil {
		return nil, fmt.Errorf("%w: workflow %q: initial state: %w", ErrStateDecode, workflow, err)
	}
	wopts := d.options()
	id := uuid.New()
	key := run.WorkflowKey(workflow, opts.Key)
	if opts.Key == "" {
		if key, err = wopts.Key.Key(workflow, raw, id); err != nil {
			return nil, err
		}
	}
	q := opts.Queue
	if q == "" {
		q = wopts.Queue
	}
	if q == "" {
		q = queue.DefaultQueue
	}
	in := storage.RunInsertParams{
		ID:             id,
		IdempotencyKey: key,
		Workflow:       workflow,
		Args:           raw,
		Queue:          q,
		RecoveryPoint:  d.stepNames()[0],
		DefinitionHash: d.definitionHash(),
		ParentRunID:    parent,
		ParentStep:     parentStep,
		Attrs:          attrs,
		Tags:           opts.Tags,
	}
	priority := wopts.Priority
	if _, set := opts.Priority.Value(); set {
		priority = opts.Priority
	}
	jobOpts := queue.EnqueueOptions{
		Queue:       q,
		Priority:    priority,
		MaxAttempts: wopts.MaxAttempts,
		ScheduledAt: opts.ScheduledAt,
		ScheduleIn:  opts.ScheduleIn,
	}
	// Both rows are checked before either is written, so bad input writes
	// nothing even in the caller's transaction.
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("%w: workflow %q: %w", ErrInvalid, workflow, err)
	}
	job, err := e.q.JobInsertContext(ctx, queue.EnqueueParams{Kind: workflow, Args: json.RawMessage("{}"), Opts: jobOpts})
	if err != nil {
		return nil, fmt.Errorf("%w: workflow %q: %w", ErrInvalid, workflow, err)
	}
	rec, created, err := run.Create(ctx, ex, in)
	if err != nil {
		return nil, err
	}
	if !created {
		return &EnqueueResult{Run: rec, Duplicate: true}, nil
	}
	if err := insertRunJob(ctx, ex, job, rec.ID); err != nil {
		return nil, err
	}
	return &EnqueueResult{Run: rec}, nil
}

// encodeArgs turns args into JSON; run.Create stores it in canonical form.
func encodeArgs(args any) (json.RawMessage, error) {
	if raw, ok := args.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(args)
}

// Get returns a run with its step log, or an error matching
// acidic.ErrNotFound.
func (e *Engine) Get(ctx context.Context, id uuid.UUID) (*acidic.Run, error) {
	rec, err := e.drv.RunGet(ctx, storage.RunGetParams{ID: id})
	if err != nil {
		return nil, err
	}
	return e.withSteps(ctx, rec)
}

// GetByKey returns the run of a workflow with an idempotency key, with its
// step log, or an error matching acidic.ErrNotFound. The key is the one
// given as EnqueueOptions.Key (or that a run.By strategy's function
// returned): keys are namespaced per workflow, and the stored key
// (Run.IdempotencyKey) is the workflow's name, a colon and the key.
func (e *Engine) GetByKey(ctx context.Context, workflow, key string) (*acidic.Run, error) {
	rec, err := e.drv.RunGetByKey(ctx, storage.RunGetByKeyParams{Key: run.WorkflowKey(workflow, key)})
	if err != nil {
		return nil, err
	}
	return e.withSteps(ctx, rec)
}

// withSteps returns rec with its step log.
func (e *Engine) withSteps(ctx context.Context, rec *acidic.Run) (*acidic.Run, error) {
	log, err := storage.StepsWithDetails(ctx, e.drv, rec.ID)
	if err != nil {
		return nil, err
	}
	return withLog(rec, log), nil
}

// List returns runs matching f, oldest first, without their step logs.
func (e *Engine) List(ctx context.Context, f acidic.RunFilter) ([]*acidic.Run, error) {
	return e.drv.RunList(ctx, f)
}

// Retry resumes a failed, cancelled or halted run from its recovery point:
// the run becomes pending and a new job is enqueued. Steps that committed
// do not run again. A pending run's waiting job is made due now. A
// succeeded, running or awaiting run is ErrNotRetryable.
func (e *Engine) Retry(ctx context.Context, id uuid.UUID) (*acidic.Run, error) {
	var out *acidic.Run
	err := e.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		rec, changed, err := tx.RunSetState(ctx, storage.RunSetStateParams{ID: id, From: []acidic.RunState{acidic.RunFailed, acidic.RunCancelled, acidic.RunHalted, acidic.RunPending}, To: acidic.RunPending, Error: ""})
		if err != nil {
			return err
		}
		if !changed {
			return fmt.Errorf("%w: run %s is %s", ErrNotRetryable, id, rec.State)
		}
		// A job waiting to run is made due now; otherwise a new job is
		// enqueued. A job still running is not enough: it may be the one
		// that just halted or failed the run, about to complete. (A second
		// job is harmless: the lease lets one execute, the other finds
		// nothing to do.)
		waiting, err := tx.JobList(ctx, acidic.JobFilter{RunID: id, Kind: rec.Workflow, States: []acidic.JobState{
			acidic.JobAvailable, acidic.JobScheduled, acidic.JobRetryable}})
		if err != nil {
			return err
		}
		if len(waiting) == 0 {
			if err := e.enqueueRunJob(ctx, tx, rec); err != nil {
				return err
			}
		}
		for _, j := range waiting {
			if _, err := tx.JobRetry(ctx, storage.JobRetryParams{ID: j.ID}); err != nil {
				return err
			}
		}
		out = rec
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workflow: retry %s: %w", id, err)
	}
	return out, nil
}

// Cancel stops a run that has not finished: it becomes cancelled, its
// pending jobs are cancelled, a step running now cannot commit, and its
// unfinished child runs are cancelled too. OnFinish runs. A finished run is
// returned unchanged.
func (e *Engine) Cancel(ctx context.Context, id uuid.UUID) (*acidic.Run, error) {
	out, _, err := e.cancel(ctx, id, "cancelled by operator")
	return out, err
}

// cancelTx cancels run id in tx and reports whether it did (a finished run
// is returned unchanged).
func (e *Engine) cancelTx(ctx context.Context, tx storage.Tx, id uuid.UUID, reason string) (*acidic.Run, bool, error) {
	rec, changed, err := tx.RunSetState(ctx, storage.RunSetStateParams{ID: id, From: []acidic.RunState{acidic.RunPending, acidic.RunRunning, acidic.RunAwaiting, acidic.RunHalted}, To: acidic.RunCancelled, Error: reason})
	if err != nil || !changed {
		return rec, false, err
	}
	live, err := tx.JobList(ctx, acidic.JobFilter{RunID: id, States: []acidic.JobState{
		acidic.JobPending, acidic.JobAvailable, acidic.JobScheduled, acidic.JobRunning, acidic.JobRetryable}})
	if err != nil {
		return rec, true, err
	}
	for _, j := range live {
		if j.Kind == FinishKind {
			continue
		}
		if _, err := e.q.CancelTx(ctx, tx, j.ID); err != nil {
			return rec, true, err
		}
	}
	if err := e.cancelAwaitedJobs(ctx, tx, id); err != nil {
		return rec, true, err
	}
	unfinished := acidic.RunFilter{ParentRunID: id, States: []acidic.RunState{acidic.RunPending, acidic.RunRunning, acidic.RunAwaiting, acidic.RunHalted}}
	err = storage.EachRunPage(ctx, tx, unfinished, func(children []*acidic.Run) error {
		for _, c := range children {
			if _, _, err := e.cancelTx(ctx, tx, c.ID, "parent run cancelled"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rec, true, err
	}
	// A workflow unknown in this process is nil: see hasFinish.
	return rec, true, e.settle(ctx, tx, e.definitionOrNil(rec.Workflow), rec)
}

// Wait blocks until the run has finished (succeeded, failed or cancelled)
// or halted, or ctx ends, and returns the run with its step log. A halted
// run does not move on by itself (only Retry or Cancel move it), so Wait
// returns it too. It polls, starting at 10ms and backing off to 250ms.
func (e *Engine) Wait(ctx context.Context, id uuid.UUID) (*acidic.Run, error) {
	delay := 10 * time.Millisecond
	for {
		r, err := e.drv.RunGet(ctx, storage.RunGetParams{ID: id})
		if err != nil {
			return nil, err
		}
		if r.State.Final() || r.State == acidic.RunHalted {
			return e.withSteps(ctx, r)
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("workflow: wait for run %s (%s at %s): %w", id, r.State, r.RecoveryPoint, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// RetryMany retries every failed or cancelled run matching f (see Retry) and
// returns the runs it resumed. It stops at the first error, returning the
// runs retried so far.
func (e *Engine) RetryMany(ctx context.Context, f acidic.RunFilter) ([]*acidic.Run, error) {
	if len(f.States) == 0 {
		f.States = []acidic.RunState{acidic.RunFailed, acidic.RunCancelled}
	}
	var out []*acidic.Run
	err := storage.EachRunPage(ctx, e.drv, f, func(page []*acidic.Run) error {
		for _, r := range page {
			resumed, err := e.Retry(ctx, r.ID)
			if err != nil {
				return err
			}
			out = append(out, resumed)
		}
		return nil
	})
	return out, err
}

// withLog returns a copy of r carrying its step log.
func withLog(r *acidic.Run, log []acidic.Step) *acidic.Run {
	c := *r
	c.Steps = log
	return &c
}
