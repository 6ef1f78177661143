package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
)

// Options tune a workflow. The zero value is usable.
type Options struct {
	// Queue runs the workflow's jobs. Default queue.DefaultQueue.
	Queue string
	// Priority of the workflow's jobs, queue.PriorityOf(0) (the highest)
	// to queue.PriorityOf(3). Unset is 0.
	Priority queue.Priority
	// MaxAttempts is how many times a failing step is tried before the run
	// fails for good. Default queue.DefaultMaxAttempts.
	MaxAttempts int
	// Backoff spaces the retries of a failed step. Default queue.DefaultBackoff.
	Backoff queue.BackoffFunc
	// Timeout bounds one job attempt (all the steps it runs); zero means none.
	Timeout time.Duration
	// Key derives the idempotency key of a new run. Default run.ByJobID():
	// every enqueue is a new run.
	Key run.Strategy
	// OnFinish is called once a run has succeeded, failed for good, or been
	// cancelled. It runs as a job of its own, so it is retried until it
	// returns nil and survives crashes: make it idempotent.
	OnFinish func(ctx context.Context, r *acidic.Run) error
}

// Workflow is a named, ordered list of steps with arguments of type A and
// persisted state of type S. Make one with Define and register it with an
// Engine. A and S must encode to and decode from JSON.
//
// A Workflow is also the workflow's typed handle: its Enqueue, EnqueueTx,
// Get, GetByKey, Wait and Request take and return arguments of type A and
// state of type S, so the compiler checks what Engine.Enqueue (by name, with
// any arguments) checks only at run time. See handle.go.
type Workflow[A, S any] struct {
	name  string
	opts  Options
	steps []steps.Step[A, S]
	hash  string
	// sealed is set by Register: the steps no longer change.
	sealed atomic.Bool
}

// Definition is a workflow of any argument and state types, as Register takes
// it. Only this package implements it.
type Definition interface {
	// Name is the workflow's name, also the kind of its jobs.
	Name() string
	// Validate reports why the workflow cannot run, if it cannot.
	Validate() error

	options() Options
	stepNames() []string
	definitionHash() string
	decodeArgs(raw json.RawMessage) error
	decodeState(raw json.RawMessage) error
	execute(ctx context.Context, e *Engine, job *acidic.Job) error
	seal()
}

// Define returns a workflow. Nothing is checked until Register (or
// Validate). Steps may also be added after Define, until Register, with
// Step, Await, AwaitRuns and Add; then the types are given once, explicitly:
//
//	payment := workflow.Define[PaymentArgs, PaymentState]("payment", opts).
//		Step("charge", charge).
//		Step("receipt", receipt)
func Define[A, S any](name string, opts Options, list ...steps.Step[A, S]) *Workflow[A, S] {
	w := &Workflow[A, S]{name: name, opts: opts}
	return w.Add(list...)
}

// Name is the workflow's name.
func (w *Workflow[A, S]) Name() string { return w.name }

// Validate reports why the workflow cannot run: an empty name, no steps, a
// step without a name or function, or two steps with one name; or a
// workflow, step or queue name that is not a valid name (storage.CheckName).
func (w *Workflow[A, S]) Validate() error {
	if strings.TrimSpace(w.name) == "" {
		return fmt.Errorf("%w: empty workflow name", ErrInvalidDefinition)
	}
	if err := storage.CheckName("workflow name", w.name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDefinition, err)
	}
	if w.opts.Queue != "" {
		if err := storage.CheckName("queue", w.opts.Queue); err != nil {
			return fmt.Errorf("%w: workflow %q: %w", ErrInvalidDefinition, w.name, err)
		}
	}
	if err := steps.Validate(w.steps); err != nil {
		return fmt.Errorf("%w: workflow %q: %w", ErrInvalidDefinition, w.name, err)
	}
	return nil
}

func (w *Workflow[A, S]) options() Options { return w.opts }

func (w *Workflow[A, S]) seal() { w.sealed.Store(true) }

func (w *Workflow[A, S]) definitionHash() string { return w.hash }

func (w *Workflow[A, S]) stepNames() []string {
	names := make([]string, len(w.steps))
	for i, s := range w.steps {
		names[i] = s.Name()
	}
	return names
}

func (w *Workflow[A, S]) decodeArgs(raw json.RawMessage) error {
	_, err := decode[A](raw)
	return err
}

func (w *Workflow[A, S]) index(step string) int {
	for i, s := range w.steps {
		if s.Name() == step {
			return i
		}
	}
	return -1
}

// hashSteps identifies a list of step names; it changes when a step is
// renamed, added, removed or moved.
func hashSteps(names []string) string {
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// decode unmarshals JSON into a new T; JSON null leaves T zero.
func decode[T any](raw json.RawMessage) (T, error) {
	var v T
	if len(raw) == 0 {
		return v, nil
	}
	err := json.Unmarshal(raw, &v)
	return v, err
}
