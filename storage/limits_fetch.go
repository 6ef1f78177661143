package storage

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// LimitedFetcher claims jobs under limits that hold across every client of
// the store: a cap on the jobs of a queue running at once, a cap on the jobs
// started in any window of a period, each for the whole queue or for every
// partition of it, with free slots shared round-robin between partitions.
type LimitedFetcher interface {
	// JobFetchLimited claims up to p.Max eligible jobs of p.Queue as
	// JobFetch does (order, SkipRunJobs, the runs it leases), but never so
	// many that the queue (or a partition of it) would have more than
	// p.Limits.Concurrency jobs running, or more than p.Limits.RateLimit
	// jobs started in any window of p.Limits.RatePeriod, counting every
	// job the limited fetches of the queue claimed, from any client. A
	// claim's AttemptedAt is its start stamp, the time the rate is
	// counted in. Among partitions, the free slots go round-robin: each
	// partition's first waiting job before any partition's second, the
	// partition served longest ago first; priority still comes first. The
	// attempts of p.Complete are completed first, in the same
	// transaction. It returns acidic.ErrInvalid, and writes nothing, for limits
	// Validate refuses.
	//
	// Jobs claimed otherwise (JobFetch, JobClaim) count towards a
	// partitioned queue's limits while they run, but not towards a whole
	// queue's, and start no rate window: every client of a limited queue
	// must fetch with the same limits.
	JobFetchLimited(ctx context.Context, p JobFetchLimitedParams) (JobFetchLimitedResult, error)
}

// JobFetchLimitedParams asks for up to Max jobs of a queue under Limits.
type JobFetchLimitedParams struct {
	JobFetchParams
	Limits FetchLimits
	// Complete lists attempts whose work ended well, to be completed (as
	// JobComplete does) in the fetch's transaction, before the limits are
	// counted: a client passes those it has not written yet, so that
	// their slots are free for the jobs it claims instead of counted as
	// running until its next batch of completions.
	Complete []JobAttempt
}

// FetchLimits are the limits of a limited fetch. At least one of
// Concurrency and RateLimit is set.
type FetchLimits struct {
	// Concurrency caps the jobs of the queue, or of each partition, that
	// are running at once; 0 for none.
	Concurrency int
	// RateLimit caps the jobs of the queue, or of each partition, started
	// in any window of RatePeriod; 0 for none.
	RateLimit  int
	RatePeriod time.Duration
	// PartitionBy names top-level fields of the jobs' args: the limits
	// hold for each combination of their values separately (a job without
	// a field counts as having it null). Empty: the limits hold for the
	// whole queue.
	PartitionBy []string
	// Lookahead is how many waiting jobs of partitions with room a fetch
	// looks at, in fetch order, to find the partitions that get jobs: a
	// job is not found while more than Lookahead waiting jobs of other
	// partitions precede it (jobs of partitions at their limit are passed
	// over without counting). Only partitioned fetches use it; 0 means
	// DefaultLookahead.
	Lookahead int
}

// DefaultLookahead is FetchLimits.Lookahead when it is 0.
const DefaultLookahead = 1000

// MaxPartitionFields is the most fields FetchLimits.PartitionBy may name.
const MaxPartitionFields = 8

// Validate returns acidic.ErrInvalid, naming the field, for limits no fetch can
// keep: no limit at all, a negative Concurrency, a RateLimit below 1 with a
// RatePeriod, a RatePeriod below a millisecond (or above a year) with a
// RateLimit, a partition field that is empty, not UTF-8, longer than
// MaxNameBytes, or named twice, more than MaxPartitionFields fields, a
// negative Lookahead, a RateLimit above MaxRateLimit.
func (l FetchLimits) Validate() error {
	return invalidIf(l.problem())
}

func (l FetchLimits) problem() string {
	switch {
	case l.Concurrency < 0:
		return fmt.Sprintf("limits: concurrency limit %d is below 1", l.Concurrency)
	case l.RateLimit < 0 || (l.RateLimit == 0 && l.RatePeriod != 0):
		return fmt.Sprintf("limits: rate limit %d is below 1", l.RateLimit)
	case l.RateLimit > 0 && l.RatePeriod <= 0:
		return fmt.Sprintf("limits: rate period %s is not positive", l.RatePeriod)
	case l.RateLimit > 0 && l.RatePeriod < time.Millisecond:
		return fmt.Sprintf("limits: rate period %s is shorter than a millisecond", l.RatePeriod)
	case l.RatePeriod > MaxRatePeriod:
		return fmt.Sprintf("limits: rate period %s is longer than %s", l.RatePeriod, MaxRatePeriod)
	case l.Concurrency == 0 && l.RateLimit == 0:
		return "limits: neither a concurrency limit nor a rate limit"
	case len(l.PartitionBy) > MaxPartitionFields:
		return fmt.Sprintf("limits: %d partition fields; at most %d", len(l.PartitionBy), MaxPartitionFields)
	case l.Lookahead < 0:
		return fmt.Sprintf("limits: lookahead %d is negative", l.Lookahead)
	case l.RateLimit > MaxRateLimit:
		return fmt.Sprintf("limits: rate limit %d is above %d", l.RateLimit, MaxRateLimit)
	}
	seen := map[string]bool{}
	for i, f := range l.PartitionBy {
		switch {
		case f == "":
			return fmt.Sprintf("limits: partition field %d is empty", i+1)
		case !utf8.ValidString(f) || len(f) > MaxNameBytes:
			return fmt.Sprintf("limits: partition field %d is not a name of at most %d bytes of UTF-8", i+1, MaxNameBytes)
		case seen[f]:
			return fmt.Sprintf("limits: partition field %s named twice", short(f))
		}
		seen[f] = true
	}
	return ""
}

// MaxRatePeriod is the longest FetchLimits.RatePeriod.
const MaxRatePeriod = 366 * 24 * time.Hour

// MaxRateLimit is the largest FetchLimits.RateLimit: a rate limit keeps as
// many start stamps per partition.
const MaxRateLimit = 100000

// JobFetchLimitedResult is what a limited fetch claimed, and whether the
// limits held back jobs that were eligible.
type JobFetchLimitedResult struct {
	// Jobs are the jobs claimed, in fetch order.
	Jobs []FetchedJob
	// Held is set when fewer than Max jobs were claimed because of the
	// limits while eligible jobs may still wait: a running job must end,
	// or a start leave the rate window, before more are claimed. It may be
	// set when no job is left (the room and the jobs ran out together, or
	// a partition at its limit has none waiting); it is not set when the
	// jobs ran out with room to spare.
	Held bool
	// RetryIn, when a rate limit held jobs back, is how long until the
	// first start in the window leaves it; 0 otherwise.
	RetryIn time.Duration
	// Completed are the ids of the attempts of Complete that were
	// completed: those still running at them.
	Completed []int64
}
