package queue

import (
	"context"
	"sync"
	"time"

	"github.com/acidic-go/acidic/storage"
)

// completer records completed attempts in batches: one UPDATE for many jobs
// is what keeps completion cheap under load.
type completer struct {
	c       *Client
	mu      sync.Mutex
	pending []storage.JobAttempt
	kick    chan struct{}
	flushed sync.WaitGroup // completions added but not yet written
}

func newCompleter(c *Client) *completer {
	return &completer{c: c, kick: make(chan struct{}, 1)}
}

func (cp *completer) add(id int64, attempt int) {
	cp.flushed.Add(1)
	cp.mu.Lock()
	cp.pending = append(cp.pending, storage.JobAttempt{ID: id, Attempt: attempt})
	cp.mu.Unlock()
	select {
	case cp.kick <- struct{}{}:
	default:
	}
}

func (cp *completer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			cp.flush()
			return
		case <-cp.kick:
		}
		// Let concurrent completions join this batch.
		select {
		case <-time.After(cp.c.cfg.CompleteFlushInterval):
		case <-ctx.Done():
		}
		cp.flush()
	}
}

// drain waits until every completion added so far is written.
func (cp *completer) drain() {
	select {
	case cp.kick <- struct{}{}:
	default:
	}
	cp.flushed.Wait()
}

func (cp *completer) flush() {
	for {
		cp.mu.Lock()
		n := min(len(cp.pending), cp.c.cfg.CompleteBatchSize)
		batch := cp.pending[:n:n]
		cp.pending = cp.pending[n:]
		cp.mu.Unlock()
		if n == 0 {
			return
		}
		cp.c.retryWrite(func(ctx context.Context) error {
			_, err := cp.c.drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: batch})
			return err
		})
		cp.c.untrack(batch...)
		cp.flushed.Add(-n)
		cp.c.wakeHeld()
	}
}
