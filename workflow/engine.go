package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
)

// FinishKind is the job kind that runs workflows' OnFinish callbacks.
const FinishKind = "acidic.finish"

// Config configures an Engine.
type Config struct {
	// Queue configures the job queue the engine runs on: which queues this
	// engine works and with how many workers, heartbeats, rescue. Workers may
	// hold your own plain job kinds; the engine adds one kind per workflow.
	Queue queue.Config
	// LockedRetry is how long a job waits before trying again when another
	// worker holds its run's lease. It spends no attempt. Default 1s.
	LockedRetry time.Duration
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger
	// Retention is how long finished runs are kept with their step logs,
	// per final state, and which workflows keep theirs for ever. The zero
	// value keeps succeeded and cancelled runs 7 days and failed runs 30
	// days (see Retention). The engine's queue prunes them in its
	// maintenance passes, with the jobs (Queue.Retention).
	Retention Retention
	// StepMiddleware wraps every step the engine executes, the first
	// outermost; see StepMiddleware. Queue.Middleware wraps every job
	// attempt, the run's included. None by default.
	StepMiddleware []StepMiddleware
	// PublishHooks see every outbox message staged through the engine (a
	// step's Publish, Engine.PublishTx) and may set its Meta; see
	// PublishHook. None by default.
	PublishHooks []PublishHook
}

// Engine registers workflows, enqueues runs and executes them on the queue.
// It is safe for concurrent use.
type Engine struct {
	drv storage.Driver
	q   *queue.Client
	cfg Config
	ws  *queue.Workers

	mu      sync.RWMutex
	defs    map[string]Definition
	started bool
}

// NewEngine returns an engine on drv.
func NewEngine(drv storage.Driver, cfg Config) (*Engine, error) {
	if cfg.LockedRetry == 0 {
		cfg.LockedRetry = time.Second
	}
	if cfg.LockedRetry < 0 {
		return nil, fmt.Errorf("%w: negative LockedRetry", queue.ErrInvalid)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var err error
	if cfg.Retention, err = cfg.Retention.withDefaults(); err != nil {
		return nil, err
	}
	if cfg.Queue.Logger == nil {
		cfg.Queue.Logger = cfg.Logger
	}
	if cfg.Queue.Workers == nil {
		cfg.Queue.Workers = queue.NewWorkers()
	}
	e := &Engine{drv: drv, cfg: cfg, ws: cfg.Queue.Workers, defs: map[string]Definition{}}
	if err := e.ws.Handle(FinishKind, e.runFinishCallback, queue.KindOptions{}); err != nil {
		return nil, err
	}
	// Jobs that carry runs end their runs with them: the engine's queue
	// client passes every job it ends for good through jobsEnded, in the
	// same transaction.
	qcfg := cfg.Queue
	userEnded := qcfg.EndedFunc
	qcfg.EndedFunc = func(ctx context.Context, tx storage.Tx, jobs []*acidic.Job) error {
		if err := e.jobsEnded(ctx, tx, jobs); err != nil {
			return err
		}
		if userEnded != nil {
			return userEnded(ctx, tx, jobs)
		}
		return nil
	}
	// Finished runs are pruned where finished jobs are.
	userMaintain := qcfg.MaintainFunc
	qcfg.MaintainFunc = func(ctx context.Context) error {
		_, err := e.PruneRuns(ctx)
		if userMaintain != nil {
			return errors.Join(err, userMaintain(ctx))
		}
		return err
	}
	q, err := queue.New(drv, qcfg)
	if err != nil {
		return nil, err
	}
	e.q = q
	return e, nil
}

// Register adds workflows. Register every workflow before Start, in every
// process that enqueues or works it.
func (e *Engine) Register(defs ...Definition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return ErrStarted
	}
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			return err
		}
		if _, dup := e.defs[d.Name()]; dup {
			return fmt.Errorf("%w: %q", ErrAlreadyRegistered, d.Name())
		}
		opts := d.options()
		if err := e.validateOptions(d.Name(), opts); err != nil {
			return err
		}
		err := e.ws.Handle(d.Name(), func(ctx context.Context, job *acidic.Job) error {
			return d.execute(ctx, e, job)
		}, queue.KindOptions{Queue: opts.Queue, Priority: opts.Priority, MaxAttempts: opts.MaxAttempts, Backoff: opts.Backoff, Timeout: opts.Timeout})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrAlreadyRegistered, err)
		}
		d.seal()
		e.defs[d.Name()] = d
	}
	return nil
}

// validateOptions refuses workflow options that every enqueue of the
// workflow would refuse, at registration.
func (e *Engine) validateOptions(name string, opts Options) error {
	if opts.Timeout < 0 {
		return fmt.Errorf("%w: workflow %q: negative Timeout %s", ErrInvalidDefinition, name, opts.Timeout)
	}
	_, err := e.q.JobInsert(queue.EnqueueParams{Kind: name, Opts: queue.EnqueueOptions{Queue: opts.Queue, Priority: opts.Priority, MaxAttempts: opts.MaxAttempts}})
	if err != nil {
		return fmt.Errorf("%w: workflow %q: %w", ErrInvalidDefinition, name, err)
	}
	return nil
}

// Start works the configured queues until Stop.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	e.started = true
	e.mu.Unlock()
	if err := e.q.Start(ctx); err != nil {
		// Not started: workflows may still be registered.
		e.mu.Lock()
		e.started = false
		e.mu.Unlock()
		return err
	}
	return nil
}

// Stop stops working: running steps finish (or, past ctx's deadline, are
// cancelled and roll back), see queue.Client.Stop.
func (e *Engine) Stop(ctx context.Context) error { return e.q.Stop(ctx) }

// Queue returns the engine's job queue client, for plain jobs.
func (e *Engine) Queue() *queue.Client { return e.q }

// IsLeader reports whether this engine leads its schema's nodes now, and so
// runs the maintenance: see queue.Client.IsLeader.
func (e *Engine) IsLeader() bool { return e.q.IsLeader() }

// Driver returns the engine's storage driver.
func (e *Engine) Driver() storage.Driver { return e.drv }

func (e *Engine) definition(name string) (Definition, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	d, ok := e.defs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownWorkflow, name)
	}
	return d, nil
}

type finishArgs struct {
	RunID uuid.UUID `json:"run_id"`
}

// enqueueFromStep stages a run requested by a step of rec, in the step's
// transaction; awaited runs become rec's children.
func (e *Engine) enqueueFromStep(ctx context.Context, tx storage.Tx, rec *acidic.Run, step string, req steps.RunRequest, awaited bool) (uuid.UUID, error) {
	parent, parentStep := uuid.Nil, ""
	if awaited {
		parent, parentStep = rec.ID, step
	}
	res, err := e.enqueue(ctx, tx, req.Workflow, req.Args, EnqueueOptions{Queue: req.Queue, Key: req.Key, State: req.State}, parent, parentStep)
	if err != nil {
		return uuid.Nil, err
	}
	if awaited && res.Duplicate {
		// An existing run would never count itself off this parent.
		return uuid.Nil, fmt.Errorf("%w: key of awaited run %s already names run %s", ErrAwaitExisting, req.Workflow, res.Run.ID)
	}
	return res.Run.ID, nil
}

func (e *Engine) runFinishCallback(ctx context.Context, job *acidic.Job) error {
	var args finishArgs
	if err := json.Unmarshal(job.Args, &args); err != nil {
		return queue.Discard(fmt.Errorf("%w: %w", queue.ErrArgsDecode, err))
	}
	r, err := e.Get(ctx, args.RunID)
	if errors.Is(err, acidic.ErrNotFound) && job.RunID == uuid.Nil {
		// The run was deleted after this job was staged (the deletion
		// detached the job): by this callback, which cannot run again
		// without it (see DeleteRun).
		e.cfg.Logger.Info("workflow: finish callback of a deleted run; nothing to do", "run", args.RunID, "job", job.ID)
		return nil
	}
	if errors.Is(err, acidic.ErrNotFound) {
		return queue.Discard(err)
	}
	if err != nil {
		return err
	}
	d, err := e.definition(r.Workflow)
	if err != nil {
		// Another engine on this queue may know the workflow (a rolling
		// deploy): wait for it without spending the job's attempts.
		e.cfg.Logger.Info("workflow: finish callback of a workflow this engine does not know; snoozing", "run", r.ID, "workflow", r.Workflow)
		return queue.Snooze(e.cfg.LockedRetry)
	}
	if fn := d.options().OnFinish; fn != nil {
		return fn(withFinishing(ctx, r.ID, job.ID), r)
	}
	return nil
}
