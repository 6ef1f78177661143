package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
)

// PeriodicExecutor reads and writes periodic schedules: one row per
// schedule registered in code (queue.PeriodicJob, workflow.Periodic), with
// its next and last period. The queue's periodic pass locks a due row with
// PeriodicDue, enqueues the period's job and moves the row on with
// PeriodicAdvance, all in one transaction, so each period is enqueued once
// however many nodes run the pass.
type PeriodicExecutor interface {
	// PeriodicRegister writes the given schedules: a missing one is
	// inserted as given; an existing one takes the given kind, spec, time
	// zone and policy, and its next run becomes the given NextRunAt only
	// when its spec or time zone changed (otherwise the stored next run
	// stays, so a period that came due while no node ran is not lost). It
	// returns the rows it inserted or changed, by name; a schedule stored
	// exactly as given is not written again. Two schedules with one name
	// are acidic.ErrInvalid, and nothing is written.
	PeriodicRegister(ctx context.Context, p PeriodicRegisterParams) ([]*acidic.Periodic, error)
	// PeriodicList returns the schedules named in p.Names (every schedule
	// when Names is empty), by name.
	PeriodicList(ctx context.Context, p PeriodicListParams) ([]*acidic.Periodic, error)
	// PeriodicDue returns up to p.Limit schedules named in p.Names whose
	// next run is at or before p.Now, earliest first, and locks them until
	// the transaction ends, skipping rows another transaction holds. Use it
	// inside a transaction (outside one the lock ends with the statement).
	PeriodicDue(ctx context.Context, p PeriodicDueParams) ([]*acidic.Periodic, error)
	// PeriodicAdvance moves a schedule on to p.NextRunAt, and its last run
	// to p.LastRunAt when that is set, if its next run is still p.From;
	// otherwise (another node moved it, or it was registered anew) it
	// changes nothing and returns false. It returns the row as it is after
	// the call (nil when the schedule does not exist).
	PeriodicAdvance(ctx context.Context, p PeriodicAdvanceParams) (*acidic.Periodic, bool, error)
}

// PeriodicInsert is a schedule to register.
type PeriodicInsert struct {
	Name     string
	Kind     string
	Spec     string
	TimeZone string
	Missed   acidic.MissedPolicy
	// NextRunAt is the first period, used for a new schedule or one whose
	// spec or time zone changed.
	NextRunAt time.Time
}

// Validate returns acidic.ErrInvalid for a schedule the storage cannot hold: a
// name, kind, spec or time zone that is not a valid name (CheckName), an
// unknown policy, a NextRunAt that is zero or outside years 1 to MaxYear.
func (p PeriodicInsert) Validate() error {
	if pr := p.problem(); pr != "" {
		return invalidIf("periodic schedule " + short(p.Name) + ": " + pr)
	}
	return nil
}

func (p PeriodicInsert) problem() string {
	for _, f := range []struct{ field, s string }{{"name", p.Name}, {"kind", p.Kind}, {"spec", p.Spec}, {"time zone", p.TimeZone}} {
		if pr := nameProblem(f.field, f.s); pr != "" {
			return pr
		}
	}
	if !p.Missed.Valid() {
		return fmt.Sprintf("unknown missed-period policy %q", p.Missed)
	}
	return periodicTimeProblem("NextRunAt", p.NextRunAt)
}

func periodicTimeProblem(field string, t time.Time) string {
	if t.IsZero() {
		return field + " is zero"
	}
	return timeProblem(field, t)
}

// PeriodicRegisterParams are the schedules PeriodicRegister writes.
type PeriodicRegisterParams struct {
	Schedules []PeriodicInsert
}

// Validate returns acidic.ErrInvalid for a schedule Validate refuses or a name
// given twice.
func (p PeriodicRegisterParams) Validate() error {
	seen := map[string]bool{}
	for _, s := range p.Schedules {
		if err := s.Validate(); err != nil {
			return err
		}
		if seen[s.Name] {
			return invalidIf("periodic schedule " + short(s.Name) + " given twice")
		}
		seen[s.Name] = true
	}
	return nil
}

// PeriodicListParams select schedules to list.
type PeriodicListParams struct {
	// Names lists only these schedules; empty lists every one.
	Names []string
}

// PeriodicDueParams select due schedules to lock.
type PeriodicDueParams struct {
	// Names limits the search to these schedules (those the caller can
	// enqueue); empty finds none.
	Names []string
	// Now is the caller's clock: a schedule is due when its next run is at
	// or before it.
	Now time.Time
	// Limit caps the rows returned; zero means 1.
	Limit int
}

// PeriodicAdvanceParams move one schedule on.
type PeriodicAdvanceParams struct {
	Name string
	// From is the next run the caller read (with PeriodicDue): the write
	// happens only if it is still stored.
	From time.Time
	// LastRunAt, when set, becomes the schedule's last run: the period just
	// enqueued. Nil keeps the stored one (the periods were skipped).
	LastRunAt *time.Time
	// NextRunAt becomes the schedule's next run.
	NextRunAt time.Time
}

// Validate returns acidic.ErrInvalid for times outside years 1 to MaxYear, a zero
// NextRunAt or an invalid name.
func (p PeriodicAdvanceParams) Validate() error {
	problem := nameProblem("name", p.Name)
	if problem == "" {
		problem = periodicTimeProblem("NextRunAt", p.NextRunAt)
	}
	if problem == "" && p.LastRunAt != nil {
		problem = periodicTimeProblem("LastRunAt", *p.LastRunAt)
	}
	if problem != "" {
		return invalidIf("advance periodic schedule " + short(p.Name) + ": " + problem)
	}
	return nil
}
