package queue

import (
	"context"
	"sync"
	"time"

	"github.com/acidic-go/acidic/internal/base/leased"
	"github.com/acidic-go/acidic/storage"
)

// producer fetches jobs of one queue while it has free slots.
type producer struct {
	c     *Client
	queue string
	max   int

	wake    chan struct{} // a notification or a freed slot
	mu      sync.Mutex
	active  int
	mayHave bool // the last fetch was full, or a wake-up came: more work may wait
	// wakes counts wake-ups. A fetch compares it before and after: a
	// wake-up that arrived while the fetch ran may announce a job the
	// fetch's snapshot did not see, so it forces another fetch instead of
	// being overwritten by the fetch's result.
	wakes uint64
	// backlog is true while the last fetch filled every free slot: jobs are
	// known to be waiting, so a freed slot is refilled without the cooldown
	// that debounces notifications.
	backlog bool
	// The queue's controls (see controls.go): max above is the workers in
	// force, configured those of QueueConfig; nothing is fetched until the
	// controls were read once (controlsAt set), nor while paused.
	configured int
	paused     bool
	controlsAt time.Time
	// limits, when set, makes every fetch a limited one (QueueLimits);
	// held is true while the last one left eligible jobs to the limits.
	limits *storage.FetchLimits
	held   bool
	// done holds the completions of a limited queue that the next fetch
	// writes (see completed); stopped is set once the fetch loop ended.
	done    []storage.JobAttempt
	stopped bool
}

func newProducer(c *Client, queue string, q QueueConfig) *producer {
	p := &producer{c: c, queue: queue, max: q.MaxWorkers, configured: q.MaxWorkers, wake: make(chan struct{}, 1), mayHave: true}
	if q.Limits.set() {
		l := q.Limits.fetchLimits()
		p.limits = &l
	}
	return p
}

// wakeUp tells the producer that jobs may be waiting.
func (p *producer) wakeUp() {
	p.mu.Lock()
	p.mayHave = true
	p.wakes++
	p.mu.Unlock()
	p.signal()
}

func (p *producer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *producer) jobDone() {
	p.mu.Lock()
	p.active--
	more := p.mayHave
	p.mu.Unlock()
	if more {
		p.signal()
	}
}

func (p *producer) run(fetchCtx, workCtx context.Context) {
	poll := time.NewTimer(0)
	defer poll.Stop()
	cooldown := time.NewTimer(time.Hour)
	cooldown.Stop()
	defer cooldown.Stop()
	var lastFetch time.Time
	defer p.stop()
	for {
		select {
		case <-fetchCtx.Done():
			return
		case <-poll.C:
			p.mu.Lock()
			p.mayHave = true
			p.mu.Unlock()
		case <-p.wake:
		}
		p.mu.Lock()
		backlog := p.backlog
		p.mu.Unlock()
		if wait := p.c.cfg.FetchCooldown - time.Since(lastFetch); wait > 0 && !backlog {
			cooldown.Reset(wait)
			select {
			case <-fetchCtx.Done():
				return
			case <-cooldown.C:
			}
		}
		p.mu.Lock()
		free := max(p.max-p.active, 0)
		if p.paused || p.controlsAt.IsZero() {
			free = 0 // a fetch may still write the completions it holds
		}
		want := (p.mayHave && free > 0) || len(p.done) > 0
		wakes := p.wakes
		p.mu.Unlock()
		if !want {
			continue
		}
		lastFetch = time.Now()
		// The claim itself is not cancelled by Stop: a fetch cut off after the
		// database claimed rows would leave them running until rescued.
		claimCtx, cancel := context.WithTimeout(context.WithoutCancel(fetchCtx), p.c.cfg.RescueAfter)
		jobs, held, retryIn, err := p.fetch(claimCtx, free)
		cancel()
		if err != nil {
			if fetchCtx.Err() == nil {
				p.c.cfg.Logger.Warn("queue: fetch failed", "queue", p.queue, "err", err)
			}
			poll.Reset(p.c.cfg.PollInterval)
			continue
		}
		p.mu.Lock()
		p.active += len(jobs)
		p.backlog = free > 0 && len(jobs) == free
		p.mayHave = p.backlog || p.wakes != wakes
		p.held = held && !p.backlog
		more := p.mayHave && p.active < p.max
		p.mu.Unlock()
		for _, job := range jobs {
			p.c.startWork(leased.WithRun(workCtx, job.LeasedRun), job.Job, p.jobDone)
		}
		if more {
			p.signal()
		}
		if held && !more {
			poll.Reset(p.c.nextFetchAfterHeld(retryIn))
			continue
		}
		poll.Reset(p.c.cfg.PollInterval)
	}
}

// fetch claims up to free jobs, under the queue's limits when it has them,
// and reports whether the limits held eligible jobs back and, for a rate
// limit, how long until a start leaves the window.
func (p *producer) fetch(ctx context.Context, free int) ([]storage.FetchedJob, bool, time.Duration, error) {
	f := storage.JobFetchParams{Queue: p.queue, Max: free, WorkerID: p.c.cfg.ID, SkipRunJobs: p.c.cfg.EndedFunc == nil}
	if p.limits == nil {
		jobs, err := p.c.drv.JobFetch(ctx, f)
		return jobs, false, 0, err
	}
	// The completions of this queue not written yet go with the fetch:
	// until written, their jobs count as running and hold slots.
	p.mu.Lock()
	done := p.done
	p.done = nil
	p.mu.Unlock()
	res, err := p.c.drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{JobFetchParams: f, Limits: *p.limits, Complete: done})
	if err != nil {
		p.handOver(done)
		return nil, false, 0, err
	}
	p.c.untrack(done...)
	return res.Jobs, res.Held, res.RetryIn, nil
}
