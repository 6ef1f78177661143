package queue

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/canonical"
	"github.com/acidic-go/acidic/storage"
)

// UniqueField is a part of a job that counts when comparing unique jobs.
type UniqueField string

// Fields a unique job can be compared on.
const (
	UniqueByKind  UniqueField = "kind"
	UniqueByQueue UniqueField = "queue"
	UniqueByArgs  UniqueField = "args"
)

// UniqueOptions make a job unique: while a job with the same key exists in
// one of States, enqueueing another returns that job (marked Duplicate)
// instead of inserting. The database enforces it with a unique index, so
// concurrent enqueues make exactly one job.
//
// Uniqueness lasts forever (while the job is stored and in one of States),
// or for a Period, counted one of two ways (PeriodFrom):
//
//   - WindowStart, the default: time is cut into fixed windows of Period
//     from the Unix epoch, and the key names its window. With a Period of
//     a minute, jobs enqueued at 10:00:10 and 10:00:50 are one job, while
//     jobs enqueued at 10:00:50 and 10:01:10 are two, 20 seconds apart.
//     The key is computed by the enqueuing client, with its clock.
//   - FirstInsert: Oban's "unique for 60 seconds". A duplicate enqueued
//     less than Period after the job holding the key was inserted is
//     refused; from then on, the next enqueue inserts a new job, which
//     holds the key for the next Period (the old job keeps running, if it
//     runs, but no longer counts). Measured by the database's clock from
//     the holder's insert (Job.CreatedAt); concurrent enqueues still make
//     one job.
type UniqueOptions struct {
	// Period is how long uniqueness lasts, counted as PeriodFrom says. Zero
	// means forever.
	Period time.Duration
	// PeriodFrom says how Period is counted: WindowStart (fixed windows,
	// the default) or FirstInsert (from the insert of the job holding the
	// key; needs a Period).
	PeriodFrom PeriodStart
	// Fields compared. Default: kind, queue and args.
	Fields []UniqueField
	// ArgKeys, when set, compares only these top-level keys of the args
	// (an order id, say) instead of the whole args.
	ArgKeys []string
	// States in which an existing job counts as a duplicate. Default: every
	// state but cancelled and discarded. AllStates() makes a job unique over
	// its whole life: with MaxAttempts 1 that is "at most once, ever".
	States []acidic.JobState
}

// PeriodStart says how a unique job's Period is counted; see UniqueOptions.
type PeriodStart string

// How a unique Period is counted.
const (
	// WindowStart counts Period in fixed windows of its length from the
	// Unix epoch. The default.
	WindowStart PeriodStart = "window"
	// FirstInsert counts Period from the insert of the job holding the key.
	FirstInsert PeriodStart = "first_insert"
)

// ReplaceOptions debounce a unique job: when an enqueue finds the existing
// job still available or scheduled, it overwrites these fields with the new
// enqueue's values.
type ReplaceOptions struct {
	ScheduledAt bool
	Args        bool
	Priority    bool
	MaxAttempts bool
}

// AllStates returns every job state, for UniqueOptions.States.
func AllStates() []acidic.JobState {
	return append([]acidic.JobState(nil), acidic.AllJobStates...)
}

// DefaultUniqueStates are the states that count as duplicates unless
// UniqueOptions.States says otherwise: all but cancelled and discarded.
func DefaultUniqueStates() []acidic.JobState {
	var out []acidic.JobState
	for _, s := range acidic.AllJobStates {
		if s != acidic.JobCancelled && s != acidic.JobDiscarded {
			out = append(out, s)
		}
	}
	return out
}

// uniqueKey hashes the compared fields of a job and the period window it
// falls in, and returns the states mask.
func (u *UniqueOptions) uniqueKey(in storage.JobInsert, now time.Time) ([]byte, acidic.JobStates, error) {
	if u.Period < 0 {
		return nil, 0, fmt.Errorf("%w: kind %q: negative unique Period", ErrInvalid, in.Kind)
	}
	switch u.PeriodFrom {
	case "", WindowStart:
	case FirstInsert:
		if u.Period == 0 {
			return nil, 0, fmt.Errorf("%w: kind %q: unique PeriodFrom FirstInsert needs a Period", ErrInvalid, in.Kind)
		}
	default:
		return nil, 0, fmt.Errorf("%w: kind %q: unknown unique PeriodFrom %q", ErrInvalid, in.Kind, u.PeriodFrom)
	}
	fields := u.Fields
	if len(fields) == 0 {
		fields = []UniqueField{UniqueByKind, UniqueByQueue, UniqueByArgs}
	}
	parts := map[string]any{}
	for _, f := range fields {
		switch f {
		case UniqueByKind:
			parts["kind"] = in.Kind
		case UniqueByQueue:
			parts["queue"] = in.Queue
		case UniqueByArgs:
			args, err := canonical.Decode(in.Args)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: kind %q: args: %w", ErrInvalid, in.Kind, err)
			}
			if len(u.ArgKeys) > 0 {
				obj, ok := args.(map[string]any)
				if !ok {
					return nil, 0, fmt.Errorf("%w: kind %q: unique ArgKeys need args that are a JSON object", ErrInvalid, in.Kind)
				}
				picked := map[string]any{}
				for _, k := range u.ArgKeys {
					picked[k] = obj[k]
				}
				args = picked
			}
			parts["args"] = args
		default:
			return nil, 0, fmt.Errorf("%w: kind %q: unknown unique field %q", ErrInvalid, in.Kind, f)
		}
	}
	switch {
	case u.fromFirstInsert():
		// Never the key of a job unique forever or in windows: the holder
		// of this key gives it up once its period has passed.
		parts["period_from"] = string(FirstInsert)
	case u.Period > 0:
		parts["window"] = now.UnixNano() / int64(u.Period)
	}
	// encoding/json sorts map keys: the encoding is canonical.
	b, err := json.Marshal(parts)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: kind %q: unique key: %w", ErrInvalid, in.Kind, err)
	}
	sum := sha256.Sum256(b)
	states := u.States
	if len(states) == 0 {
		states = DefaultUniqueStates()
	}
	for _, s := range states {
		if !s.Valid() {
			return nil, 0, fmt.Errorf("%w: kind %q: unknown state %q in unique States", ErrInvalid, in.Kind, s)
		}
	}
	return sum[:], acidic.NewJobStates(states...), nil
}

// fromFirstInsert reports whether the period is counted from the holder's
// insert.
func (u *UniqueOptions) fromFirstInsert() bool {
	return u != nil && u.PeriodFrom == FirstInsert && u.Period > 0
}
