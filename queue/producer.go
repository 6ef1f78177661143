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
}

func newProducer(c *Client, queue string, max int) *producer {
	return &producer{c: c, queue: queue, max: max, configured: max, wake: make(chan struct{}, 1), mayHave: true}
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
		free := p.max - p.active
		want := p.mayHave && free > 0 && !p.paused && !p.controlsAt.IsZero()
		wakes := p.wakes
		p.mu.Unlock()
		if !want {
			continue
		}
		lastFetch = time.Now()
		// The claim itself is not cancelled by Stop: a fetch cut off after the
		// database claimed rows would leave them running until rescued.
		claimCtx, cancel := context.WithTimeout(context.WithoutCancel(fetchCtx), p.c.cfg.RescueAfter)
		jobs, err := p.c.drv.JobFetch(claimCtx, storage.JobFetchParams{Queue: p.queue, Max: free, WorkerID: p.c.cfg.ID, SkipRunJobs: p.c.cfg.EndedFunc == nil})
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
		p.backlog = len(jobs) == free
		p.mayHave = p.backlog || p.wakes != wakes
		more := p.mayHave && p.active < p.max
		p.mu.Unlock()
		for _, job := range jobs {
			p.c.startWork(leased.WithRun(workCtx, job.LeasedRun), job.Job, p.jobDone)
		}
		if more {
			p.signal()
		}
		poll.Reset(p.c.cfg.PollInterval)
	}
}
