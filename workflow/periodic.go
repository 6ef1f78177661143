package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/storage"
)

// Periodic is a workflow run enqueued on a schedule: one run per period,
// across every engine that registers it. It works as queue.PeriodicJob does
// (see there, and docs/operations.md, "Periodic jobs"), with a run in place
// of a job: each period's run has the idempotency key the period's
// queue.Period.Key names, so a period makes one run.
type Periodic struct {
	// Name identifies the schedule across engines and restarts; it shares
	// one namespace with the engine's queue.PeriodicJob names.
	Name string
	// Spec is the cron expression, TimeZone its time zone (default UTC);
	// see queue.PeriodicJob.
	Spec     string
	TimeZone string
	// Workflow is the workflow to run, registered with the engine before.
	Workflow string
	// Args are the run's arguments, checked against the workflow's
	// argument type at registration.
	Args any
	// Opts are the run's options. Key and ScheduledAt are refused: the
	// period names the run and sets its time (ScheduleIn delays it).
	Opts EnqueueOptions
	// Missed and MissedAfter say what is done with periods found late; see
	// queue.PeriodicJob. Default: one run now for them all.
	Missed      acidic.MissedPolicy
	MissedAfter time.Duration
}

// RegisterPeriodic registers periodic workflows, after their workflows
// (Register) and before Start. A workflow not registered is
// ErrUnknownWorkflow, arguments that do not decode into its argument type
// ErrArgsDecode, a Key or ScheduledAt in Opts ErrInvalid; the schedule's own
// errors are those of queue.Client.AddPeriodic (queue.ErrInvalidSpec,
// queue.ErrUnknownTimeZone, queue.ErrDuplicatePeriodic, queue.ErrInvalid).
// On any error none of ps is registered. Nothing is written to the database
// until Start.
func (e *Engine) RegisterPeriodic(ps ...Periodic) error {
	e.mu.RLock()
	started := e.started
	e.mu.RUnlock()
	if started {
		return ErrStarted
	}
	jobs := make([]queue.PeriodicJob, len(ps))
	for i, p := range ps {
		if err := e.checkPeriodic(p); err != nil {
			return err
		}
		jobs[i] = queue.PeriodicJob{
			Name: p.Name, Spec: p.Spec, TimeZone: p.TimeZone, Kind: p.Workflow,
			Missed: p.Missed, MissedAfter: p.MissedAfter,
			EnqueueFunc: e.periodicRun(p),
		}
	}
	if err := e.q.AddPeriodic(jobs...); err != nil {
		if errors.Is(err, queue.ErrAlreadyStarted) {
			return ErrStarted
		}
		return err
	}
	return nil
}

// checkPeriodic refuses a periodic workflow whose runs every enqueue would
// refuse.
func (e *Engine) checkPeriodic(p Periodic) error {
	if p.Workflow == "" {
		return fmt.Errorf("%w: periodic workflow %q: empty Workflow", ErrInvalid, p.Name)
	}
	d, err := e.definition(p.Workflow)
	if err != nil {
		return fmt.Errorf("periodic workflow %q: %w", p.Name, err)
	}
	switch {
	case p.Opts.Key != "":
		return fmt.Errorf("%w: periodic workflow %q: Key is not allowed: each period names its run", ErrInvalid, p.Name)
	case !p.Opts.ScheduledAt.IsZero():
		return fmt.Errorf("%w: periodic workflow %q: ScheduledAt is not allowed (ScheduleIn delays the run after its period)", ErrInvalid, p.Name)
	}
	raw, err := encodeArgs(p.Args)
	if err == nil {
		err = d.decodeArgs(raw)
	}
	if err != nil {
		return fmt.Errorf("%w: periodic workflow %q: %w", ErrArgsDecode, p.Name, err)
	}
	q := p.Opts.Queue
	if q == "" {
		q = d.options().Queue
	}
	_, err = e.q.JobInsert(queue.EnqueueParams{Kind: p.Workflow, Opts: queue.EnqueueOptions{Queue: q, Priority: p.Opts.Priority, ScheduleIn: p.Opts.ScheduleIn}})
	if err != nil {
		return fmt.Errorf("%w: periodic workflow %q: %w", ErrInvalid, p.Name, err)
	}
	return nil
}

// periodicRun enqueues the run of one period in the pass's transaction,
// keyed by the period, so a period makes one run: a run already there (the
// period enqueued before) is left as it is, also when its arguments differ
// (the schedule's arguments changed since), so the schedule moves on.
func (e *Engine) periodicRun(p Periodic) func(ctx context.Context, tx storage.Tx, period queue.Period) error {
	return func(ctx context.Context, tx storage.Tx, period queue.Period) error {
		opts := p.Opts
		opts.Key = period.Key()
		res, err := e.EnqueueTx(ctx, tx, p.Workflow, p.Args, opts)
		if errors.Is(err, run.ErrMismatchedArgs) {
			e.cfg.Logger.Warn("workflow: the run of this period exists with other arguments; leaving it", "periodic", p.Name, "period", period.At, "key", opts.Key)
			return nil
		}
		if err != nil {
			return err
		}
		if res.Duplicate {
			e.cfg.Logger.Info("workflow: the run of this period already existed", "periodic", p.Name, "period", period.At, "run", res.Run.ID)
		}
		return nil
	}
}
