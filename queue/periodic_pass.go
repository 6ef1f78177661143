package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// PeriodicResult tells what one periodic pass did.
type PeriodicResult struct {
	// Enqueued lists the periods this pass enqueued a job (or, through
	// EnqueueFunc, other work) for, by schedule name.
	Enqueued []Period
	// Jobs holds the job enqueued for each period of Enqueued, in the same
	// order: nil for work enqueued by EnqueueFunc. A job whose Duplicate is
	// set already existed (the period's job was enqueued before, and the
	// schedule not moved on: after a registration that changed its spec,
	// say).
	Jobs []*acidic.Job
	// Skipped lists the latest period of each schedule whose due periods
	// this pass dropped (MissedSkip), with Missed counting the earlier
	// ones.
	Skipped []Period
	// NextRunAt is the earliest next run among the client's schedules as
	// this pass left them; zero when the client has none. It may be in the
	// past when another client held a due schedule during the pass.
	NextRunAt time.Time
}

// periodicMaxWait bounds how long the periodic loop sleeps, so a schedule
// that another node registered anew (with an earlier next run) is seen.
const periodicMaxWait = time.Minute

// periodicMinWait keeps a pass that found a schedule due but held by
// another node (which moves it on in a moment) from spinning.
const periodicMinWait = 50 * time.Millisecond

// periodicLoop registers the client's periodic jobs (its first pass) and
// then, while the client leads, runs a pass at each due period until ctx
// ends. The lead only saves queries: the pass's transactions make one job
// per period however many clients run it at once (a lead that just passed
// on, say).
func (c *Client) periodicLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait := c.cfg.PollInterval
		if c.periodicRegistered.Load() && !c.IsLeader() {
			// Periodic passes are maintenance: only the leader runs them,
			// for the schedules of its own configuration. Every node still
			// registers its schedules (the first pass), so they are listed.
			timer.Reset(wait)
			continue
		}
		res, err := c.EnqueuePeriodic(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.cfg.Logger.Warn("queue: periodic pass failed", "err", err)
		} else if !res.NextRunAt.IsZero() {
			wait = min(max(res.NextRunAt.Sub(c.cfg.Now()), periodicMinWait), periodicMaxWait)
		}
		timer.Reset(wait)
	}
}

// registerPeriodic writes the client's schedules to the database (see
// storage.PeriodicExecutor.PeriodicRegister): a new schedule starts at its
// first period after now; a known one keeps its stored next run unless its
// spec or time zone changed.
func (c *Client) registerPeriodic(ctx context.Context, jobs []*periodic) error {
	now := c.cfg.Now()
	ins := make([]storage.PeriodicInsert, len(jobs))
	for i, p := range jobs {
		ins[i] = storage.PeriodicInsert{Name: p.job.Name, Kind: p.job.Kind, Spec: p.sched.spec, TimeZone: p.sched.zone,
			Missed: p.job.Missed, NextRunAt: p.sched.first(now)}
	}
	changed, err := c.drv.PeriodicRegister(ctx, storage.PeriodicRegisterParams{Schedules: ins})
	if err != nil {
		return fmt.Errorf("queue: register periodic jobs: %w", err)
	}
	for _, s := range changed {
		c.cfg.Logger.Info("queue: periodic job registered", "name", s.Name, "spec", s.Spec, "tz", s.TimeZone, "next_run_at", s.NextRunAt)
	}
	c.periodicRegistered.Store(true)
	return nil
}

// EnqueuePeriodic runs one periodic pass now: it registers the client's
// periodic jobs in the database if this run of the client has not yet (or a
// schedule's row is gone), then enqueues the job of every schedule that is
// due (as Config.Now tells), each in its own transaction, and moves the
// schedule on. A started client runs it at each due period; tests and tools
// may call it directly, also on a client never started, and from several
// clients at once: each period is enqueued once.
//
// A schedule whose enqueue fails stays due and is tried again by the next
// pass; the pass goes on with the others and returns the errors joined.
func (c *Client) EnqueuePeriodic(ctx context.Context) (PeriodicResult, error) {
	var res PeriodicResult
	jobs := c.periodicJobs()
	if len(jobs) == 0 {
		return res, nil
	}
	if !c.periodicRegistered.Load() {
		if err := c.registerPeriodic(ctx, jobs); err != nil {
			return res, err
		}
	}
	names := make([]string, len(jobs))
	for i, p := range jobs {
		names[i] = p.job.Name
	}
	rows, err := c.drv.PeriodicList(ctx, storage.PeriodicListParams{Names: names})
	if err != nil {
		return res, fmt.Errorf("queue: periodic pass: %w", err)
	}
	if len(rows) < len(jobs) {
		// A row was deleted (by an operator, or a migration down and up).
		if err := c.registerPeriodic(ctx, jobs); err != nil {
			return res, err
		}
		if rows, err = c.drv.PeriodicList(ctx, storage.PeriodicListParams{Names: names}); err != nil {
			return res, fmt.Errorf("queue: periodic pass: %w", err)
		}
	}
	byName := make(map[string]*periodic, len(jobs))
	for _, p := range jobs {
		byName[p.job.Name] = p
	}
	now := c.cfg.Now()
	var errs []error
	for _, row := range rows {
		p := byName[row.Name]
		next := row.NextRunAt
		if p != nil && !next.After(now) {
			fired, err := c.firePeriodic(ctx, p, now)
			switch {
			case err != nil:
				errs = append(errs, err)
			case fired.advanced:
				next = fired.next
				if fired.skipped {
					res.Skipped = append(res.Skipped, fired.period)
				} else {
					res.Enqueued = append(res.Enqueued, fired.period)
					res.Jobs = append(res.Jobs, fired.job)
				}
			}
		}
		if res.NextRunAt.IsZero() || next.Before(res.NextRunAt) {
			res.NextRunAt = next
		}
	}
	return res, errors.Join(errs...)
}

// fired is what firePeriodic did with one schedule.
type fired struct {
	advanced bool // the schedule was due and this pass moved it on
	skipped  bool
	period   Period
	job      *acidic.Job
	next     time.Time
}

// firePeriodic enqueues the due period of one schedule and moves the
// schedule on, in one transaction: the schedule's row is locked first
// (skipped when another client holds it), so of the clients that find a
// period due at once, one enqueues it and the others find it moved on. The
// job's unique key (the period's) keeps a second job out even if two passes
// read the same period, and the advance is guarded by the next run read.
func (c *Client) firePeriodic(ctx context.Context, p *periodic, now time.Time) (fired, error) {
	var f fired
	err := c.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		f = fired{}
		due, err := tx.PeriodicDue(ctx, storage.PeriodicDueParams{Names: []string{p.job.Name}, Now: now, Limit: 1})
		if err != nil || len(due) == 0 {
			return err
		}
		row := due[0]
		at, count := p.sched.lastDue(row.NextRunAt, now)
		f.period = Period{Name: p.job.Name, At: at.In(p.sched.loc), Missed: count - 1}
		late := now.Sub(at) > p.job.MissedAfter
		f.skipped = p.job.Missed == acidic.MissedSkip && late
		var last *time.Time
		if !f.skipped {
			if p.job.EnqueueFunc != nil {
				err = p.job.EnqueueFunc(ctx, tx, f.period)
			} else {
				f.job, err = c.enqueuePeriod(ctx, tx, p, f.period, now)
			}
			if err != nil {
				return err
			}
			last = &at
		}
		f.next = p.sched.following(at)
		_, ok, err := tx.PeriodicAdvance(ctx, storage.PeriodicAdvanceParams{Name: p.job.Name, From: row.NextRunAt, LastRunAt: last, NextRunAt: f.next})
		if err != nil {
			return err
		}
		if !ok {
			// Not while the row is locked; should it happen, enqueue nothing.
			return fmt.Errorf("queue: periodic job %q: schedule moved on during the pass", p.job.Name)
		}
		f.advanced = true
		return nil
	})
	if err != nil {
		return fired{}, fmt.Errorf("queue: periodic job %q: %w", p.job.Name, err)
	}
	if f.advanced {
		c.logFired(p, f, now)
	}
	return f, nil
}

func (c *Client) logFired(p *periodic, f fired, now time.Time) {
	log := c.cfg.Logger.With("name", p.job.Name, "period", f.period.At, "late", now.Sub(f.period.At).Round(time.Millisecond), "next_run_at", f.next)
	switch {
	case f.skipped:
		log.Warn("queue: periodic job skipped missed periods", "missed", f.period.Missed+1, "policy", p.job.Missed)
	case f.period.Missed > 0 && p.job.Missed == acidic.MissedSkip:
		log.Warn("queue: periodic job skipped missed periods; enqueued the latest", "missed", f.period.Missed, "policy", p.job.Missed)
	case f.period.Missed > 0:
		log.Warn("queue: periodic job enqueued once for missed periods", "missed", f.period.Missed, "policy", p.job.Missed)
	case f.job != nil && f.job.Duplicate:
		log.Info("queue: periodic job of this period already existed", "job", f.job.ID)
	default:
		log.Debug("queue: periodic job enqueued")
	}
}
