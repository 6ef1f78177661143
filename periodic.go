package acidic

import "time"

// MissedPolicy says what the periodic pass does with a period it finds
// late: its time passed more than the schedule's grace ago (nodes were down,
// say), or later periods are due too.
type MissedPolicy string

// Missed-period policies.
const (
	// MissedRunOnce enqueues one job now for every period found due, however
	// many and however late: one job, not one per missed period.
	MissedRunOnce MissedPolicy = "run_once"
	// MissedSkip enqueues nothing for periods found late and waits for the
	// next one; the latest due period is still enqueued when it is within
	// the grace.
	MissedSkip MissedPolicy = "skip"
)

// Valid reports whether p is one of the policies.
func (p MissedPolicy) Valid() bool { return p == MissedRunOnce || p == MissedSkip }

// Periodic is one periodic schedule as stored.
type Periodic struct {
	// Name identifies the schedule across nodes and restarts.
	Name string
	// Kind is the job kind, or the workflow, the schedule enqueues.
	Kind string
	// Spec is the cron expression, without a CRON_TZ= prefix.
	Spec string
	// TimeZone is the IANA zone Spec is read in ("UTC" when none was given).
	TimeZone string
	// Missed is what the pass does with periods found late.
	Missed MissedPolicy
	// LastRunAt is the scheduled time of the last period enqueued; nil
	// before the first.
	LastRunAt *time.Time
	// NextRunAt is the scheduled time of the next period to enqueue. A
	// time in the past means the period is due (or was missed).
	NextRunAt time.Time
	// UpdatedAt is when the row last changed.
	UpdatedAt time.Time
}
