package queue

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var (
	// ErrInvalidSpec is returned, also matching ErrInvalid, when a periodic
	// job's Spec is not a cron expression this package accepts: five fields
	// (minute, hour, day of month, month, day of week) or a descriptor
	// (@yearly, @monthly, @weekly, @daily, @hourly, @every D with D a whole
	// number of seconds), optionally after a CRON_TZ= prefix, and firing at
	// least once. Nothing is written.
	ErrInvalidSpec = errors.New("queue: invalid cron expression")

	// ErrUnknownTimeZone is returned, also matching ErrInvalid, when a
	// periodic job's time zone is not an IANA zone this machine knows, or
	// is "Local" (which would differ between nodes). Nothing is written.
	ErrUnknownTimeZone = errors.New("queue: unknown time zone")

	// ErrDuplicatePeriodic is returned when a periodic job's name is
	// registered twice with one client. Nothing is written.
	ErrDuplicatePeriodic = errors.New("queue: periodic job already registered")
)

// DefaultMissedAfter is how late a period may be found and still count as
// on time, unless PeriodicJob.MissedAfter says otherwise.
const DefaultMissedAfter = time.Minute

// PeriodicJob is a job enqueued on a schedule: once per period of Spec,
// read in TimeZone, across every client that registers it.
//
// A client registers its periodic jobs (Config.Periodic, AddPeriodic) in
// the database when it starts, and then runs a pass at each period: in one
// transaction, the pass locks the schedule's row, enqueues the period's job
// (unique by the schedule's name and the period's time, enforced by the
// database) and moves the row on to the next period. However many clients
// run the pass, each period makes one job. The next period is stored, so a
// period that comes due while no client runs is found when one starts
// again; Missed says what is done with it. See docs/operations.md,
// "Periodic jobs".
type PeriodicJob struct {
	// Name identifies the schedule across clients and restarts: a valid
	// name (storage.CheckName), unique among a client's periodic jobs.
	// Clients that register one name should register the same schedule;
	// see docs/operations.md for what happens during a deploy that changes
	// it.
	Name string
	// Spec is a cron expression: five fields (minute, hour, day of month,
	// month, day of week, as in crontab), or a descriptor: @yearly
	// (@annually), @monthly, @weekly, @daily (@midnight), @hourly, or
	// @every D for a period of D (a whole number of seconds, at least 1s,
	// counted from the schedule's first registration). It may start with
	// CRON_TZ=Zone (or TZ=Zone) and a space instead of setting TimeZone.
	Spec string
	// TimeZone is the IANA time zone (Europe/Paris) Spec is read in.
	// Default UTC: a schedule means the same on every node whatever its
	// local zone, which is why "Local" is refused. Across daylight saving
	// changes a period is at its wall-clock time; an hour that does not
	// exist that day is skipped and one that happens twice may run twice
	// (as cron does).
	TimeZone string
	// Kind is the job kind to enqueue. Required.
	Kind string
	// Args are the job's arguments, encoded to JSON once, at registration.
	Args any
	// Opts are the job's options, with the kind's options (KindOptions)
	// filling what they leave unset. The period makes the job unique:
	// Unique and Replace are refused, as is ScheduledAt; ScheduleIn delays
	// the job after its period.
	Opts EnqueueOptions
	// Missed says what a pass does with periods it finds late. Default
	// acidic.MissedRunOnce: one job for all of them, now. With
	// acidic.MissedSkip, periods found more than MissedAfter late are not
	// enqueued, and the schedule waits for its next period.
	Missed acidic.MissedPolicy
	// MissedAfter is how late a pass may find a period and still count it
	// as on time (MissedSkip enqueues it). Default DefaultMissedAfter (a
	// minute); it must not be negative.
	MissedAfter time.Duration
	// EnqueueFunc, when set, is called to enqueue each period's work
	// instead of Kind, Args and Opts (which are then ignored; Kind still
	// names the schedule's work in listings). It runs in the transaction
	// that moves the schedule on, and must write through tx only: its
	// writes commit with the schedule's advance, or not at all. It should
	// make its writes unique by p.Key() (a workflow run's idempotency key,
	// say), so a write repeated for one period finds the first. An error
	// rolls back the transaction: the period stays due and the next pass
	// tries again. Package workflow uses it for periodic workflows.
	EnqueueFunc func(ctx context.Context, tx storage.Tx, p Period) error
}

// Period is one period of a periodic job, as its pass enqueues it.
type Period struct {
	// Name is the schedule's name.
	Name string
	// At is the period's scheduled time, in the schedule's time zone. For
	// a job that stands for missed periods it is the latest of them.
	At time.Time
	// Missed counts earlier periods that were found due together with
	// this one: under MissedRunOnce this period's job stands for them too;
	// under MissedSkip they were dropped.
	Missed int
}

// Key is the period's identity: "periodic:", the schedule's name, "@" and
// At in UTC (RFC 3339). A periodic job's unique key is its SHA-256; a
// periodic workflow run's idempotency key is Key itself.
func (p Period) Key() string {
	return "periodic:" + p.Name + "@" + p.At.UTC().Format(time.RFC3339Nano)
}

// uniqueKey is the unique key of the period's job.
func (p Period) uniqueKey() []byte {
	sum := sha256.Sum256([]byte(p.Key()))
	return sum[:]
}

// periodic is a registered PeriodicJob, checked and parsed.
type periodic struct {
	job   PeriodicJob
	sched schedule
	args  json.RawMessage
}

// AddPeriodic registers periodic jobs with the client, before Start (then
// it returns ErrAlreadyStarted). A malformed Spec is ErrInvalidSpec, an
// unknown time zone ErrUnknownTimeZone (both also match ErrInvalid), a name
// registered before ErrDuplicatePeriodic, an empty kind or name, args or
// options that could not be enqueued ErrInvalid: then none of jobs is
// registered. Nothing is written to the database until Start.
func (c *Client) AddPeriodic(jobs ...PeriodicJob) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.periodicFrozen {
		return ErrAlreadyStarted
	}
	now := c.cfg.Now()
	var add []*periodic
	for _, j := range jobs {
		p, err := c.checkPeriodic(j, now)
		if err != nil {
			return err
		}
		dup := slices.ContainsFunc(add, func(o *periodic) bool { return o.job.Name == j.Name })
		if _, known := c.periodic[j.Name]; known || dup {
			return fmt.Errorf("%w: %q", ErrDuplicatePeriodic, j.Name)
		}
		add = append(add, p)
	}
	if c.periodic == nil {
		c.periodic = map[string]*periodic{}
	}
	for _, p := range add {
		c.periodic[p.job.Name] = p
	}
	return nil
}

// checkPeriodic validates j and parses its schedule.
func (c *Client) checkPeriodic(j PeriodicJob, now time.Time) (*periodic, error) {
	if err := storage.CheckName("periodic job name", j.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if j.Kind == "" {
		return nil, fmt.Errorf("%w: periodic job %q: empty kind", ErrInvalid, j.Name)
	}
	if err := storage.CheckName("kind", j.Kind); err != nil {
		return nil, fmt.Errorf("%w: periodic job %q: %w", ErrInvalid, j.Name, err)
	}
	if j.Missed == "" {
		j.Missed = acidic.MissedRunOnce
	}
	if !j.Missed.Valid() {
		return nil, fmt.Errorf("%w: periodic job %q: unknown Missed policy %q", ErrInvalid, j.Name, j.Missed)
	}
	if j.MissedAfter < 0 {
		return nil, fmt.Errorf("%w: periodic job %q: negative MissedAfter %s", ErrInvalid, j.Name, j.MissedAfter)
	}
	if j.MissedAfter == 0 {
		j.MissedAfter = DefaultMissedAfter
	}
	sched, err := parseSchedule(j.Spec, j.TimeZone, now)
	if err != nil {
		return nil, fmt.Errorf("periodic job %q: %w", j.Name, err)
	}
	p := &periodic{job: j, sched: sched}
	if j.EnqueueFunc != nil {
		return p, nil
	}
	switch {
	case j.Opts.Unique != nil || j.Opts.Replace != nil:
		return nil, fmt.Errorf("%w: periodic job %q: Unique and Replace are not allowed: each period makes one job", ErrInvalid, j.Name)
	case !j.Opts.ScheduledAt.IsZero():
		return nil, fmt.Errorf("%w: periodic job %q: ScheduledAt is not allowed (ScheduleIn delays the job after its period)", ErrInvalid, j.Name)
	}
	if p.args, err = encodeArgs(j.Args); err != nil {
		return nil, fmt.Errorf("%w: periodic job %q: %w", ErrInvalid, j.Name, err)
	}
	if _, _, err := c.insertFor(EnqueueParams{Kind: j.Kind, Args: p.args, Opts: j.Opts}, now); err != nil {
		return nil, fmt.Errorf("periodic job %q: %w", j.Name, err)
	}
	return p, nil
}

// periodicJobs returns the registered periodic jobs by name.
func (c *Client) periodicJobs() []*periodic {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*periodic, 0, len(c.periodic))
	for _, p := range c.periodic {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *periodic) int {
		if a.job.Name < b.job.Name {
			return -1
		}
		if a.job.Name > b.job.Name {
			return 1
		}
		return 0
	})
	return out
}

// enqueuePeriod enqueues the job of one period through tx: unique by the
// period, in every state, so a period's job is never enqueued twice (a
// duplicate returns the existing job). The kind's options apply as to any
// enqueue, but the period's key replaces the kind's Unique.
func (c *Client) enqueuePeriod(ctx context.Context, tx storage.Tx, p *periodic, period Period, now time.Time) (*acidic.Job, error) {
	in, _, err := c.insertFor(EnqueueParams{Kind: p.job.Kind, Args: p.args, Opts: p.job.Opts}, now)
	if err != nil {
		return nil, err
	}
	in.UniqueKey = period.uniqueKey()
	in.UniqueStates = acidic.NewJobStates(acidic.AllJobStates...)
	job, err := tx.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: in, Replace: storage.JobReplace{}})
	if err != nil {
		return nil, fmt.Errorf("queue: enqueue periodic job %q: %w", p.job.Name, err)
	}
	return job, nil
}
