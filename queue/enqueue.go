package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// Defaults for enqueued jobs.
const (
	// DefaultQueue is the queue of a job enqueued without one.
	DefaultQueue = "default"
	// DefaultMaxAttempts is the attempt limit of a job enqueued without one.
	DefaultMaxAttempts = 20
	// LowestPriority is the largest Priority value; 0 is the highest.
	LowestPriority = acidic.LowestJobPriority
)

// EnqueueOptions tune one enqueued job. The zero value is usable: the
// options of the job's kind (KindOptions), and where those say nothing
// queue "default", priority 0 (the highest), 20 attempts, eligible now.
type EnqueueOptions struct {
	// Queue to put the job on. Default DefaultQueue. A queue name is 1 to
	// storage.MaxNameBytes bytes of UTF-8 without control characters.
	Queue string
	// Priority from PriorityOf(0) (the highest) to
	// PriorityOf(LowestPriority). Unset takes the kind's priority, or 0.
	// Within a queue, higher priority jobs are fetched first, then earlier
	// scheduled ones.
	Priority Priority
	// MaxAttempts before the job is discarded. Zero means DefaultMaxAttempts;
	// 1 means at most once: the job is discarded after its first failure.
	// Negative values are invalid.
	MaxAttempts int
	// ScheduledAt makes the job eligible at that time. It wins over ScheduleIn.
	// It must fall in years 1 to storage.MaxYear.
	ScheduledAt time.Time
	// ScheduleIn makes the job eligible after this delay.
	ScheduleIn time.Duration
	// Meta is arbitrary JSON kept on the job, for the caller's own use.
	Meta json.RawMessage
	// Unique, when set, makes the job unique; see UniqueOptions.
	Unique *UniqueOptions
	// Replace, with Unique, updates a still-waiting duplicate instead of
	// leaving it as it is; see ReplaceOptions.
	Replace *ReplaceOptions
	// Tags label the job for finding it again (acidic.JobFilter.Tags,
	// acidic jobs list -tag). At most storage.MaxTags, each 1 to
	// storage.MaxTagBytes bytes of printable UTF-8, none twice; otherwise
	// ErrInvalid, and nothing is written. Tags are not part of a unique
	// job's key, and a duplicate keeps its own.
	Tags []string
}

// EnqueueParams is one job for EnqueueMany.
type EnqueueParams struct {
	Kind string
	// Args is encoded to JSON. A json.RawMessage is used as it is.
	Args any
	Opts EnqueueOptions
}

// toInsert validates p and turns it into a row to insert.
func (p EnqueueParams) toInsert(now time.Time) (storage.JobInsert, error) {
	o := p.Opts
	if p.Kind == "" {
		return storage.JobInsert{}, fmt.Errorf("%w: empty kind", ErrInvalid)
	}
	if o.ScheduleIn < 0 {
		return storage.JobInsert{}, fmt.Errorf("%w: kind %q: negative ScheduleIn %s", ErrInvalid, p.Kind, o.ScheduleIn)
	}
	args, err := encodeArgs(p.Args)
	if err != nil {
		return storage.JobInsert{}, fmt.Errorf("%w: kind %q: %w", ErrInvalid, p.Kind, err)
	}
	if len(o.Meta) > 0 && !json.Valid(o.Meta) {
		return storage.JobInsert{}, fmt.Errorf("%w: kind %q: Meta is not valid JSON", ErrInvalid, p.Kind)
	}
	priority, _ := o.Priority.Value() // unset is 0
	in := storage.JobInsert{
		Queue:       o.Queue,
		Kind:        p.Kind,
		Args:        args,
		State:       acidic.JobAvailable,
		Priority:    priority,
		MaxAttempts: o.MaxAttempts,
		ScheduledAt: o.ScheduledAt,
		Meta:        o.Meta,
		Tags:        o.Tags,
	}
	if in.Queue == "" {
		in.Queue = DefaultQueue
	}
	if in.MaxAttempts == 0 {
		in.MaxAttempts = DefaultMaxAttempts
	}
	if in.ScheduledAt.IsZero() && o.ScheduleIn > 0 {
		in.ScheduledAt = now.Add(o.ScheduleIn)
	}
	// Priority and MaxAttempts (0 means DefaultMaxAttempts) as the storage
	// holds them.
	if err := in.Validate(); err != nil {
		return storage.JobInsert{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if o.Replace != nil && o.Unique == nil {
		return storage.JobInsert{}, fmt.Errorf("%w: kind %q: Replace needs Unique", ErrInvalid, p.Kind)
	}
	if o.Unique != nil {
		key, mask, err := o.Unique.uniqueKey(in, now)
		if err != nil {
			return storage.JobInsert{}, err
		}
		in.UniqueKey, in.UniqueStates = key, mask
	}
	return in, nil
}

// withKind fills the options the caller left unset from the kind's
// (KindOptions). The schedule is one option: ScheduleIn is taken from the
// kind only when the caller set neither ScheduledAt nor ScheduleIn. The run
// a job belongs to is never the kind's.
func (o EnqueueOptions) withKind(k KindOptions) EnqueueOptions {
	d := k.enqueueOptions()
	if o.Queue == "" {
		o.Queue = d.Queue
	}
	if o.ScheduledAt.IsZero() && o.ScheduleIn == 0 {
		o.ScheduleIn = d.ScheduleIn
	}
	o.Priority = o.Priority.or(d.Priority)
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.Unique == nil {
		o.Unique = d.Unique
	}
	if o.Replace == nil {
		o.Replace = d.Replace
	}
	if len(o.Meta) == 0 {
		o.Meta = d.Meta
	}
	if o.Tags == nil {
		o.Tags = d.Tags
	}
	return o
}

// encodeArgs turns args into JSON; nil becomes {}.
func encodeArgs(args any) (json.RawMessage, error) {
	switch a := args.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		if !json.Valid(a) {
			return nil, fmt.Errorf("args are not valid JSON")
		}
		return a, nil
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encode args: %w", err)
	}
	return b, nil
}

// Enqueue inserts one job and returns it. A kind, queue, args, meta or
// schedule beyond the storage's limits (docs/limits.md: NUL or invalid UTF-8
// in a name or in the args, a name over 255 bytes, a year past 9999) is
// ErrInvalid, also matching acidic.ErrInvalid, and nothing is written.
func (c *Client) Enqueue(ctx context.Context, kind string, args any, opts EnqueueOptions) (*acidic.Job, error) {
	return c.EnqueueTx(ctx, c.drv, kind, args, opts)
}

// EnqueueTx inserts one job through ex, usually a transaction of the caller's
// (see postgres.Driver.WrapTx): the job exists, and wakes workers, only if
// that transaction commits.
func (c *Client) EnqueueTx(ctx context.Context, ex storage.Executor, kind string, args any, opts EnqueueOptions) (*acidic.Job, error) {
	jobs, err := c.EnqueueManyTx(ctx, ex, []EnqueueParams{{Kind: kind, Args: args, Opts: opts}})
	if err != nil {
		return nil, err
	}
	return jobs[0], nil
}

// EnqueueMany inserts many jobs and returns them in order. Either all are
// inserted or, on error, none. Jobs without unique options go in one
// statement; unique jobs take one statement each, in the same transaction.
func (c *Client) EnqueueMany(ctx context.Context, params []EnqueueParams) ([]*acidic.Job, error) {
	if len(params) < 2 {
		return c.EnqueueManyTx(ctx, c.drv, params)
	}
	var jobs []*acidic.Job
	err := c.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		var err error
		jobs, err = c.EnqueueManyTx(ctx, tx, params)
		return err
	})
	return jobs, err
}

// EnqueueManyTx is EnqueueMany through ex; see EnqueueTx.
func (c *Client) EnqueueManyTx(ctx context.Context, ex storage.Executor, params []EnqueueParams) ([]*acidic.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	rows := make([]storage.JobInsert, len(params))
	replaces := make([]storage.JobReplace, len(params))
	expiries := make([]time.Duration, len(params))
	var plain []int // rows without unique options: inserted in one statement
	for i, p := range params {
		in, r, err := c.insertFor(p, now)
		if err != nil {
			return nil, err
		}
		if len(c.cfg.EnqueueHooks) > 0 {
			if err := c.applyEnqueueHooks(ctx, &in); err != nil {
				return nil, err
			}
		}
		rows[i], replaces[i], expiries[i] = in, r, c.keyExpiry(p)
		if in.UniqueKey == nil {
			plain = append(plain, i)
		}
	}
	jobs := make([]*acidic.Job, len(rows))
	if len(plain) > 0 {
		batch := make([]storage.JobInsert, len(plain))
		for k, i := range plain {
			batch[k] = rows[i]
		}
		inserted, err := ex.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: batch})
		if err != nil {
			return nil, fmt.Errorf("queue: enqueue: %w", err)
		}
		for k, i := range plain {
			jobs[i] = inserted[k]
		}
	}
	// Unique jobs go one statement each: every one may conflict on its own.
	for i, in := range rows {
		if in.UniqueKey == nil {
			continue
		}
		if expiries[i] > 0 {
			// Unique for a period from the first insert: a holder older
			// than that gives up the key first (see UniqueOptions).
			if _, err := ex.JobUniqueRelease(ctx, storage.JobUniqueReleaseParams{Key: in.UniqueKey, OlderThan: expiries[i]}); err != nil {
				return nil, fmt.Errorf("queue: enqueue: %w", err)
			}
		}
		var err error
		if jobs[i], err = ex.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: in, Replace: replaces[i]}); err != nil {
			return nil, fmt.Errorf("queue: enqueue: %w", err)
		}
	}
	return jobs, nil
}

// JobInsert returns the row EnqueueTx would insert for p, with its kind's
// options (KindOptions) applied, without writing anything; a kind, args or options
// EnqueueTx would refuse are the same error (ErrInvalid wrapped with the
// reason, also matching acidic.ErrInvalid when a storage limit is broken).
// Code that inserts jobs of its own through a storage.Executor starts from
// it: package workflow sets the RunID of the job that carries a run.
func (c *Client) JobInsert(p EnqueueParams) (storage.JobInsert, error) {
	in, _, err := c.insertFor(p, c.cfg.Now())
	return in, err
}

// insertFor turns p, with its kind's options applied, into the row to
// insert and what a conflicting unique job gets replaced with.
func (c *Client) insertFor(p EnqueueParams, now time.Time) (storage.JobInsert, storage.JobReplace, error) {
	if k, ok := c.cfg.Workers.lookup(p.Kind); ok {
		p.Opts = p.Opts.withKind(k.opts)
	}
	in, err := p.toInsert(now)
	if err != nil {
		return storage.JobInsert{}, storage.JobReplace{}, err
	}
	var r storage.JobReplace
	if p.Opts.Replace != nil {
		r = storage.JobReplace(*p.Opts.Replace)
	}
	return in, r, nil
}

// keyExpiry is how long the holder of p's unique key keeps it when p is
// unique for a period from the first insert (UniqueOptions.PeriodFrom
// FirstInsert), with its kind's options applied; zero otherwise.
func (c *Client) keyExpiry(p EnqueueParams) time.Duration {
	if k, ok := c.cfg.Workers.lookup(p.Kind); ok {
		p.Opts = p.Opts.withKind(k.opts)
	}
	if u := p.Opts.Unique; u.fromFirstInsert() {
		return u.Period
	}
	return 0
}
