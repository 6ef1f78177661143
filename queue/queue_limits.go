package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// QueueLimits caps how many jobs of a queue run and start across every
// client that works the queue, on any node: the limits are kept by the
// database in every fetch (see docs/operations.md#limits). The zero value
// sets no limit. Every client that works the queue must configure the same
// limits: a client without them fetches as if there were none. MaxWorkers
// stays each client's own cap; a client whose jobs end takes their places
// again, so give each client about GlobalLimit divided by the number of
// clients to spread the work.
type QueueLimits struct {
	// GlobalLimit is the most jobs of the queue (of each partition, with
	// PartitionBy) running at once across all clients; 0 for no limit.
	// A job counts from its claim until its end is written: a completion
	// by the client's next fetch of the queue, which starts at once. The
	// jobs of a client that died count until they are rescued
	// (Config.RescueAfter).
	GlobalLimit int
	// Rate caps the jobs of the queue (of each partition) started in any
	// window of Rate.Period across all clients; the zero Rate sets no
	// limit. Every attempt counts, retries included.
	Rate Rate
	// PartitionBy names top-level fields of the jobs' args (for example
	// "merchant_id"): the limits then hold for each combination of their
	// values separately, and free slots go round-robin between the
	// partitions with waiting jobs, so that one busy partition cannot
	// starve the others. A job without a field counts as having it null.
	// At most 8 fields; it needs GlobalLimit or Rate.
	PartitionBy []string
	// Lookahead is, with PartitionBy, how many waiting jobs of partitions
	// that have room one fetch looks at to share the free slots between
	// them; jobs of partitions at their limit are passed over without
	// counting. A job waiting behind more than Lookahead jobs of other
	// partitions with room waits until fewer are ahead of it. Default
	// 1000.
	Lookahead int
}

// Rate is a rate limit: at most Limit jobs started in any window of
// Period (a sliding window, not one that resets on the clock).
type Rate struct {
	Limit  int
	Period time.Duration
}

// ErrInvalidLimits is matched (errors.Is) by the *LimitsError that New
// returns for a queue's limits no fetch can keep.
var ErrInvalidLimits = errors.New("queue: invalid limits")

// LimitsError is returned by New (and workflow.NewEngine) for a queue whose
// QueueLimits no fetch can keep: a limit below 1 (0 means none), a rate
// limit without a period or with a period of 0, a partition field that is
// empty or named twice. Nothing has been written. It matches
// ErrInvalidLimits and ErrInvalid.
type LimitsError struct {
	// Queue is the queue whose limits are wrong.
	Queue string
	// Field names the setting: "GlobalLimit", "Rate.Limit", "Rate.Period",
	// "PartitionBy" or "Lookahead".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *LimitsError) Error() string {
	return fmt.Sprintf("queue: queue %q: limits: %s %s", e.Queue, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidLimits and ErrInvalid.
func (e *LimitsError) Unwrap() []error { return []error{ErrInvalidLimits, ErrInvalid} }

// set reports whether any limit is configured.
func (l QueueLimits) set() bool {
	return l.GlobalLimit != 0 || l.Rate != (Rate{}) || len(l.PartitionBy) > 0 || l.Lookahead != 0
}

// check returns a *LimitsError for limits no fetch can keep.
func (l QueueLimits) check(queue string) error {
	bad := func(field, format string, args ...any) error {
		return &LimitsError{Queue: queue, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case l.GlobalLimit < 0:
		return bad("GlobalLimit", "%d is below 1 (0 sets no limit)", l.GlobalLimit)
	case l.Rate.Limit < 0 || (l.Rate.Limit == 0 && l.Rate.Period != 0):
		return bad("Rate.Limit", "%d is below 1 (the zero Rate sets no limit)", l.Rate.Limit)
	case l.Rate.Limit > storage.MaxRateLimit:
		return bad("Rate.Limit", "%d is above %d", l.Rate.Limit, storage.MaxRateLimit)
	case l.Rate.Limit > 0 && l.Rate.Period <= 0:
		return bad("Rate.Period", "%s is not a period; a rate needs one of at least a millisecond", l.Rate.Period)
	case l.Rate.Limit > 0 && l.Rate.Period < time.Millisecond:
		return bad("Rate.Period", "%s is shorter than a millisecond", l.Rate.Period)
	case l.Rate.Period > storage.MaxRatePeriod:
		return bad("Rate.Period", "%s is longer than %s", l.Rate.Period, storage.MaxRatePeriod)
	case l.Lookahead < 0:
		return bad("Lookahead", "%d is negative", l.Lookahead)
	case l.GlobalLimit == 0 && l.Rate.Limit == 0:
		field := "PartitionBy"
		if len(l.PartitionBy) == 0 {
			field = "Lookahead"
		}
		return bad(field, "is set without GlobalLimit or Rate")
	case len(l.PartitionBy) > storage.MaxPartitionFields:
		return bad("PartitionBy", "names %d fields; at most %d", len(l.PartitionBy), storage.MaxPartitionFields)
	}
	for i, f := range l.PartitionBy {
		if f == "" {
			return bad("PartitionBy", "field %d is empty", i+1)
		}
		for _, g := range l.PartitionBy[:i] {
			if f == g {
				return bad("PartitionBy", "names field %q twice", f)
			}
		}
	}
	if err := l.fetchLimits().Validate(); err != nil {
		return bad("PartitionBy", "is refused by the storage: %v", err)
	}
	return nil
}

// fetchLimits is the storage's form of l.
func (l QueueLimits) fetchLimits() storage.FetchLimits {
	return storage.FetchLimits{
		Concurrency: l.GlobalLimit,
		RateLimit:   l.Rate.Limit,
		RatePeriod:  l.Rate.Period,
		PartitionBy: append([]string(nil), l.PartitionBy...),
		Lookahead:   l.Lookahead,
	}
}

// heldRecheck is how soon a producer whose fetch the limits held back
// fetches again when nothing wakes it sooner (a completion written by its
// own client does): the running jobs that hold the slots may be other
// clients', whose ends it does not hear of.
const heldRecheck = 25 * time.Millisecond

// nextFetchAfterHeld is how long a producer held back by its limits waits
// before it fetches again, at most its poll interval: until the first start
// leaves the rate window (retryIn), or heldRecheck.
func (c *Client) nextFetchAfterHeld(retryIn time.Duration) time.Duration {
	wait := heldRecheck
	if retryIn > 0 {
		wait = max(retryIn, c.cfg.FetchCooldown)
	}
	return min(wait, c.cfg.PollInterval)
}

// wakeHeld wakes the producers whose last fetch the limits held back: a
// completion this client just wrote may have freed a slot.
func (c *Client) wakeHeld() {
	c.mu.Lock()
	var held []*producer
	for _, p := range c.producers {
		if p.limits != nil {
			p.mu.Lock()
			if p.held {
				held = append(held, p)
			}
			p.mu.Unlock()
		}
	}
	c.mu.Unlock()
	for _, p := range held {
		p.wakeUp()
	}
}

// complete records the completion of job, whose work function returned nil.
// A limited queue's producer writes it with its next fetch, which it starts
// at once: until written, the job counts as running and holds its slot, and
// the fetch that writes it may give the slot to the next job in the same
// transaction. Other completions, and those that come after the producer
// stopped, go to cp, the completer of the run that fetched the job.
func (c *Client) complete(cp *completer, job *acidic.Job) {
	c.mu.Lock()
	p := c.producers[job.Queue]
	c.mu.Unlock()
	if p != nil && p.limits != nil && p.completed(attemptOf(job)) {
		return
	}
	cp.add(job.ID, job.Attempt)
}

// completed queues a completion for the next fetch and wakes the producer;
// false once the producer has stopped fetching.
func (p *producer) completed(a storage.JobAttempt) bool {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return false
	}
	p.done = append(p.done, a)
	p.mu.Unlock()
	p.signal()
	return true
}

// handOver gives completions that no fetch wrote to the completer.
func (p *producer) handOver(done []storage.JobAttempt) {
	if len(done) == 0 {
		return
	}
	p.c.mu.Lock()
	cp := p.c.completer
	p.c.mu.Unlock()
	for _, a := range done {
		cp.add(a.ID, a.Attempt)
	}
}

// stop ends the producer's fetching: later completions go to the
// completer, and so do those still waiting for a fetch.
func (p *producer) stop() {
	p.mu.Lock()
	p.stopped = true
	done := p.done
	p.done = nil
	p.mu.Unlock()
	p.handOver(done)
}
