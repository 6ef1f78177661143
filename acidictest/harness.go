package acidictest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/canonical"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// Mode says when the work an Enqueue or EnqueueJob of the harness creates
// runs. Switch it inside a test with WithMode.
type Mode int

const (
	// Manual stores enqueued jobs and runs nothing until the test drains a
	// queue or performs work. The default.
	Manual Mode = iota
	// Inline runs the work an Enqueue or EnqueueJob made runnable at once,
	// in the test's goroutine, before it returns: each job it inserted, and
	// each job those jobs made runnable in turn (children, staged jobs, a
	// workflow's next job), is attempted once, whatever its scheduled time.
	// A retry or snooze of a job is left stored, not run: drain to run it.
	// Jobs that were waiting before the enqueue are left alone.
	Inline
	// InlineUntilDone is Inline that does not stop at one attempt per job:
	// it works every queue, scheduled retries and snoozes included and
	// without waiting for them, until nothing is left to run (or 10,000
	// attempts were made, so a job that always snoozes cannot loop
	// forever), as DrainAll does. Jobs that were waiting before the
	// enqueue run too.
	InlineUntilDone
)

func (m Mode) String() string {
	switch m {
	case Manual:
		return "manual"
	case Inline:
		return "inline"
	case InlineUntilDone:
		return "inline until done"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Options configure a Harness. The zero value is usable.
type Options struct {
	// Mode is Manual (default), Inline or InlineUntilDone.
	Mode Mode
	// Workers defines the plain job kinds the code under test uses: their
	// functions and options (queue.KindOptions), which every enqueue
	// through the harness honours.
	Workers *queue.Workers
	// Logger receives the engine's logs; default discards them.
	Logger *slog.Logger
	// Driver is the store the harness runs on: a driver on an empty,
	// migrated store of this test's own, so tests run on whichever database
	// the code under test runs on. Default NewDriver(t): a PostgreSQL
	// schema of the test's own, dropped when it ends.
	Driver storage.Driver
}

// Harness is an engine on a schema of its own, with helpers for tests.
type Harness struct {
	t testing.TB
	// Driver is the storage driver the harness runs on (Options.Driver).
	Driver storage.Driver
	// Engine is the workflow engine; it is never started.
	Engine *workflow.Engine
	// Workers is the registry of plain job kinds (Options.Workers, or a new
	// one): register the kinds under test here before draining.
	Workers *queue.Workers
	mode    Mode
	// workflows are the kinds of the registered workflows' jobs, which
	// PerformWorker refuses.
	workflows map[string]bool
	// drv is what the engine runs on: Driver, or a driver wrapping it (the
	// fault injection of EachFault).
	drv storage.Driver
}

// NewDriver returns a driver on a fresh, migrated schema that is dropped
// when the test ends. The schema is its pool's search_path, as
// storeurl.Open sets it: the test's own SQL names its tables plainly.
func NewDriver(t testing.TB) *postgres.Driver {
	t.Helper()
	return testdb.New(t, testdb.Options{})
}

// New returns a harness with the workflows registered.
func New(t testing.TB, opts Options, defs ...workflow.Definition) *Harness {
	t.Helper()
	drv := opts.Driver
	if drv == nil {
		drv = NewDriver(t)
	}
	return newHarness(t, drv, drv, opts, queue.Config{}, defs...)
}

// newHarness returns a harness whose engine runs on drv, a driver on the
// store of base (itself, or the driver it wraps), with the queue settings of
// qcfg that are not the harness's own.
func newHarness(t testing.TB, drv storage.Driver, base storage.Driver, opts Options, qcfg queue.Config, defs ...workflow.Definition) *Harness {
	t.Helper()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ws := opts.Workers
	if ws == nil {
		ws = queue.NewWorkers()
	}
	qcfg.Workers, qcfg.Logger = ws, logger
	if qcfg.ID == "" {
		qcfg.ID = "acidictest"
	}
	eng, err := workflow.NewEngine(drv, workflow.Config{
		Queue:       qcfg,
		Logger:      logger,
		LockedRetry: time.Millisecond,
	})
	if err != nil {
		t.Fatalf("acidictest: engine: %v", err)
	}
	if err := eng.Register(defs...); err != nil {
		t.Fatalf("acidictest: register: %v", err)
	}
	workflows := map[string]bool{workflow.FinishKind: true}
	for _, d := range defs {
		workflows[d.Name()] = true
	}
	return &Harness{t: t, Driver: base, Engine: eng, Workers: ws, mode: opts.Mode, workflows: workflows, drv: drv}
}

// Queue is the harness's job queue client.
func (h *Harness) Queue() *queue.Client { return h.Engine.Queue() }

func (h *Harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	h.t.Cleanup(cancel)
	return ctx
}

// Mode returns the harness's mode.
func (h *Harness) Mode() Mode { return h.mode }

// WithMode runs fn with the harness in mode m, then puts back the mode it
// had, also when fn fails the test or panics.
func (h *Harness) WithMode(m Mode, fn func()) {
	prev := h.mode
	h.mode = m
	defer func() { h.mode = prev }()
	fn()
}

// Enqueue enqueues a run (see workflow.Engine.Enqueue); in the Inline modes
// it also runs the work that became runnable (see Mode) and returns the run
// as that left it.
func (h *Harness) Enqueue(ctx context.Context, wf string, args any, opts workflow.EnqueueOptions) (*workflow.EnqueueResult, error) {
	var res *workflow.EnqueueResult
	ran, err := h.enqueue(ctx, func() (err error) {
		res, err = h.Engine.Enqueue(ctx, wf, args, opts)
		return err
	})
	if err != nil || !ran {
		return res, err
	}
	r, err := h.Engine.Get(ctx, res.Run.ID)
	if err != nil {
		return res, err
	}
	res.Run = r
	return res, nil
}

// EnqueueTx enqueues a run inside tx (see workflow.Engine.EnqueueTx), a
// transaction of the test's own (postgres.Driver.WrapTx makes one of a
// pgx.Tx). Nothing runs, whatever the mode: the run exists only once the
// test commits tx, which the harness does not see. Drain after the commit.
func (h *Harness) EnqueueTx(ctx context.Context, tx storage.Tx, wf string, args any, opts workflow.EnqueueOptions) (*workflow.EnqueueResult, error) {
	return h.Engine.EnqueueTx(ctx, tx, wf, args, opts)
}

// EnqueueJob enqueues a plain job (see queue.Client.Enqueue); in the Inline
// modes it also runs the work that became runnable (see Mode) and returns
// the job as that left it.
func (h *Harness) EnqueueJob(ctx context.Context, kind string, args any, opts queue.EnqueueOptions) (*acidic.Job, error) {
	var job *acidic.Job
	ran, err := h.enqueue(ctx, func() (err error) {
		job, err = h.Queue().Enqueue(ctx, kind, args, opts)
		return err
	})
	if err != nil || !ran {
		return job, err
	}
	after, err := h.Queue().Get(ctx, job.ID)
	if err != nil {
		return job, err
	}
	after.Duplicate = job.Duplicate // a property of the enqueue, not stored
	return after, nil
}

// EnqueueJobTx enqueues a plain job inside tx (see queue.Client.EnqueueTx),
// a transaction of the test's own. Nothing runs, whatever the mode: the job
// exists only once the test commits tx. Drain after the commit.
func (h *Harness) EnqueueJobTx(ctx context.Context, tx storage.Tx, kind string, args any, opts queue.EnqueueOptions) (*acidic.Job, error) {
	return h.Queue().EnqueueTx(ctx, tx, kind, args, opts)
}

// runnable are the states of jobs that can run: the Inline modes run them
// whatever their scheduled time.
var runnable = []acidic.JobState{acidic.JobAvailable, acidic.JobScheduled, acidic.JobRetryable}

// enqueue calls insert, then runs the work it made runnable as the mode
// says. It reports whether it ran anything (whether the mode is an Inline
// one).
func (h *Harness) enqueue(ctx context.Context, insert func() error) (bool, error) {
	switch h.mode {
	case Inline:
		waiting, err := h.runnableJobs(ctx)
		if err != nil {
			return false, err
		}
		if err := insert(); err != nil {
			return false, err
		}
		skip := make(map[int64]bool, len(waiting))
		for _, j := range waiting {
			skip[j.ID] = true
		}
		return true, h.runEachOnce(ctx, skip)
	case InlineUntilDone:
		if err := insert(); err != nil {
			return false, err
		}
		_, err := h.drainAll(ctx, queue.DrainOptions{WithScheduled: true})
		return true, err
	}
	return false, insert()
}

// runnableJobs lists the jobs that could run, oldest first.
func (h *Harness) runnableJobs(ctx context.Context) ([]*acidic.Job, error) {
	return h.drv.JobList(ctx, acidic.JobFilter{States: runnable, Limit: 100000})
}

// runEachOnce attempts every runnable job not in skip once, oldest first,
// and then those that made runnable, until a round finds none. Each job it
// attempts joins skip, so its retry or snooze is left stored.
func (h *Harness) runEachOnce(ctx context.Context, skip map[int64]bool) error {
	for {
		jobs, err := h.runnableJobs(ctx)
		if err != nil {
			return err
		}
		ran := false
		for _, j := range jobs {
			if skip[j.ID] {
				continue
			}
			skip[j.ID] = true
			claimed, err := h.drv.JobClaim(ctx, storage.JobClaimParams{ID: j.ID, WorkerID: h.Queue().ID()})
			if errors.Is(err, acidic.ErrNotFound) {
				continue // ended by an earlier job of this round
			}
			if err != nil {
				return err
			}
			if _, err := h.Queue().WorkClaimed(ctx, claimed); err != nil {
				return err
			}
			ran = true
		}
		if !ran {
			return nil
		}
	}
}

// Drain runs the queue's eligible jobs in the test's goroutine until none is
// left and returns the outcomes (see queue.Client.Drain). It fails the test
// on a database error.
func (h *Harness) Drain(queueName string, opts queue.DrainOptions) queue.DrainResult {
	h.t.Helper()
	res, err := h.Queue().Drain(h.ctx(), queueName, opts)
	if err != nil {
		h.t.Fatalf("acidictest: drain %s: %v", queueName, err)
	}
	return res
}

// DrainAll drains every queue that has eligible jobs, again and again until
// none has: a workflow whose children run on other queues finishes. It
// returns the outcomes summed over all queues. opts.MaxJobs (default
// 10,000) caps the attempts of the whole call, not of each queue.
func (h *Harness) DrainAll(opts queue.DrainOptions) queue.DrainResult {
	h.t.Helper()
	res, err := h.drainAll(h.ctx(), opts)
	if err != nil {
		h.t.Fatalf("acidictest: drain: %v", err)
	}
	return res
}

func (h *Harness) drainAll(ctx context.Context, opts queue.DrainOptions) (queue.DrainResult, error) {
	budget := opts.MaxJobs
	if budget <= 0 {
		budget = 10000
	}
	var total queue.DrainResult
	for {
		queues, err := h.waitingQueues(ctx)
		if err != nil {
			return total, err
		}
		progress := 0
		for _, q := range queues {
			left := budget - total.Total()
			if left <= 0 {
				return total, nil
			}
			r, err := h.Queue().Drain(ctx, q, queue.DrainOptions{WithScheduled: opts.WithScheduled, MaxJobs: left})
			if err != nil {
				return total, err
			}
			total.Success += r.Success
			total.Failure += r.Failure
			total.Snoozed += r.Snoozed
			total.Cancelled += r.Cancelled
			total.Discarded += r.Discarded
			progress += r.Total()
		}
		if progress == 0 {
			return total, nil
		}
	}
}

// waitingQueues lists the queues holding jobs that could run.
func (h *Harness) waitingQueues(ctx context.Context) ([]string, error) {
	stats, err := h.drv.JobStats(ctx)
	if err != nil {
		return nil, err
	}
	var queues []string
	for _, s := range stats {
		switch s.State {
		case acidic.JobAvailable, acidic.JobScheduled, acidic.JobRetryable:
			if s.Count > 0 && !slices.Contains(queues, s.Queue) {
				queues = append(queues, s.Queue)
			}
		}
	}
	return queues, nil
}

// Perform enqueues a run and works every queue in the test's goroutine
// (scheduled retries included) until nothing is left to run, then returns the
// run with its step log. A run that is still unfinished after that (it
// halted, or awaits work nobody can do) is returned as it is.
func (h *Harness) Perform(ctx context.Context, wf string, args any) (*acidic.Run, error) {
	res, err := h.Engine.Enqueue(ctx, wf, args, workflow.EnqueueOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := h.drainAll(ctx, queue.DrainOptions{WithScheduled: true}); err != nil {
		return nil, err
	}
	return h.Engine.Get(ctx, res.Run.ID)
}

// PerformJob enqueues one plain job and runs just that job once, in the
// test's goroutine, returning its outcome and the job as it is afterwards
// (its state, its error history). The job stays stored; a unique job that
// is already stored makes it fail. To test a worker alone, writing
// nothing, use PerformWorker.
func (h *Harness) PerformJob(ctx context.Context, kind string, args any, opts queue.EnqueueOptions) (queue.Outcome, *acidic.Job, error) {
	job, err := h.Queue().Enqueue(ctx, kind, args, opts)
	if err != nil {
		return "", nil, err
	}
	if job.Duplicate {
		return "", job, fmt.Errorf("acidictest: job %d is a duplicate of an existing unique job", job.ID)
	}
	claimed, err := h.drv.JobClaim(ctx, storage.JobClaimParams{ID: job.ID, WorkerID: "acidictest"})
	if err != nil {
		return "", nil, err
	}
	outcome, err := h.Queue().WorkClaimed(ctx, claimed)
	if err != nil {
		return outcome, nil, err
	}
	after, err := h.Queue().Get(ctx, job.ID)
	return outcome, after, err
}

// JobFilter selects jobs in the enqueue assertions. Zero fields match
// everything.
type JobFilter struct {
	Kind  string
	Queue string
	// Args matches jobs whose args contain these values: every key given
	// must be present with an equal value (recursively for objects).
	Args any
	// RunID matches the jobs of one workflow run.
	RunID uuid.UUID
	// ScheduledAfter and ScheduledBefore bound ScheduledAt (inclusive).
	ScheduledAfter, ScheduledBefore time.Time
	// States to match. Default: the states of work still to do: pending,
	// available, scheduled and retryable.
	States []acidic.JobState
}

// AllEnqueued returns the jobs matching f, oldest first.
func (h *Harness) AllEnqueued(f JobFilter) []*acidic.Job {
	h.t.Helper()
	states := f.States
	if len(states) == 0 {
		states = []acidic.JobState{acidic.JobPending, acidic.JobAvailable, acidic.JobScheduled, acidic.JobRetryable}
	}
	jobs, err := h.Driver.JobList(h.ctx(), acidic.JobFilter{States: states, Queue: f.Queue, Kind: f.Kind, RunID: f.RunID, Limit: 100000})
	if err != nil {
		h.t.Fatalf("acidictest: list jobs: %v", err)
	}
	var want any
	if f.Args != nil {
		b, err := json.Marshal(f.Args)
		if err == nil {
			want, err = canonical.Decode(b)
		}
		if err != nil {
			h.t.Fatalf("acidictest: filter args: %v", err)
		}
	}
	var out []*acidic.Job
	for _, j := range jobs {
		if !f.ScheduledAfter.IsZero() && j.ScheduledAt.Before(f.ScheduledAfter) {
			continue
		}
		if !f.ScheduledBefore.IsZero() && j.ScheduledAt.After(f.ScheduledBefore) {
			continue
		}
		if want != nil {
			got, err := canonical.Decode(j.Args)
			if err != nil || !contains(got, want) {
				continue
			}
		}
		out = append(out, j)
	}
	return out
}

// RequireEnqueued fails the test unless a job matches f, and returns the
// first match.
func (h *Harness) RequireEnqueued(f JobFilter) *acidic.Job {
	h.t.Helper()
	jobs := h.AllEnqueued(f)
	if len(jobs) == 0 {
		h.t.Fatalf("acidictest: no job enqueued matching %+v", f)
	}
	return jobs[0]
}

// RequireEnqueued fails the test unless a job matches f, and returns the
// args of the first match decoded into A, as queue.HandleArgs decodes them
// for the worker. It fails the test if they do not decode.
func RequireEnqueued[A any](h *Harness, f JobFilter) A {
	h.t.Helper()
	job := h.RequireEnqueued(f)
	var args A
	if err := json.Unmarshal(job.Args, &args); err != nil {
		h.t.Fatalf("acidictest: job %d (%s): args %s into %T: %v", job.ID, job.Kind, job.Args, args, err)
	}
	return args
}

// RequireNotEnqueued fails the test if a job matches f.
func (h *Harness) RequireNotEnqueued(f JobFilter) {
	h.t.Helper()
	if jobs := h.AllEnqueued(f); len(jobs) > 0 {
		h.t.Fatalf("acidictest: %d job(s) enqueued matching %+v, want none; first: %d %s %s", len(jobs), f, jobs[0].ID, jobs[0].Kind, jobs[0].Args)
	}
}

// contains reports whether got holds every part of want: objects by key,
// recursively; anything else by equality.
func contains(got, want any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		return string(gb) == string(wb)
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, wv := range wm {
		gv, present := gm[k]
		if !present || !contains(gv, wv) {
			return false
		}
	}
	return true
}
