package queue

import (
	"context"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/notifier"
	"github.com/acidic-go/acidic/storage"
)

// Notifications are hints to look, never commands: any role that can
// connect to the database may send them and listen to them. An insert
// wake-up names its queue by a keyed hash (storage.Driver.QueueHints) that
// only roles that may read the key can compute, and makes the producer of
// that queue fetch; the fetch finds what is really there. A control hint
// has no payload and makes the client re-read the rows of the attempts it
// runs (storage.Executor.JobLostAttempts); only a job that the jobs table
// says is cancelled (or no longer this attempt's) has its context cancelled.
// A leader hint (a resignation) has no payload and makes the client try for
// the lead at once; the leader table alone decides (storage.Nodes), so a
// forged hint costs one election query.
// A queue hint has no payload either and makes the client read the controls
// of its queues (storage.Controls.QueueControls).

// hintsTimeout bounds the query that loads the queues' hints when the
// listener (re)connects.
const hintsTimeout = 5 * time.Second

// listenLoop keeps a LISTEN connection open: insert wake-ups wake the
// producer of their queue, control hints make the client check its running
// attempts, leader hints (a resignation) make it try for the lead, queue
// hints make it read the queues' controls (controls.go). While it
// is down (the database restarted, say), polling still
// finds work and heartbeats still find cancellations; after it reconnects
// every producer is woken, the attempts are checked and the client tries
// for the lead, as notifications may have been missed.
func (c *Client) listenLoop(ctx context.Context) {
	// hints maps the payload of each worked queue's insert wake-up to the
	// queue; nil while unknown (the query failed), when any insert wake-up
	// wakes every producer. Only the listener's goroutine uses it.
	var hints map[string]string
	notifier.Run(ctx, c.drv, notifier.Config{
		// TopicControl last: tests wait for its LISTEN to know all are in place.
		Topics: []string{storage.TopicInsert, storage.TopicLeader, storage.TopicQueues, storage.TopicControl},
		OnConnect: func() {
			hints = c.loadHints(ctx)
			c.wakeAll()
			c.checkAttemptsSoon()
			c.electSoon()
			c.readControlsSoon()
		},
		OnNotify: func(n storage.Notification) {
			switch n.Topic {
			case storage.TopicInsert:
				if hints == nil {
					c.wakeAll()
				} else if q, ok := hints[n.Payload]; ok {
					c.wakeProducer(q)
				}
			case storage.TopicControl:
				c.checkAttemptsSoon()
			case storage.TopicLeader:
				c.electSoon()
			case storage.TopicQueues:
				c.readControlsSoon()
			}
		},
		Logger: c.cfg.Logger,
		Name:   "queue",
	})
}

// loadHints returns the insert wake-up payload of each queue the client
// works, mapped to the queue, or nil if the database would not say.
func (c *Client) loadHints(ctx context.Context) map[string]string {
	c.mu.Lock()
	queues := make([]string, 0, len(c.producers))
	for q := range c.producers {
		queues = append(queues, q)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, hintsTimeout)
	defer cancel()
	got, err := c.drv.QueueHints(ctx, storage.QueueHintsParams{Queues: queues})
	if err != nil || len(got) != len(queues) {
		if ctx.Err() == nil {
			c.cfg.Logger.Warn("queue: could not load the queues' wake-up hints; every insert wakes every queue", "err", err)
		}
		return nil
	}
	hints := make(map[string]string, len(queues))
	for i, q := range queues {
		hints[got[i]] = q
	}
	return hints
}

// checkAttemptsSoon asks the control loop to check the running attempts.
// Hints that arrive while a check runs make one more check, so a
// cancellation committed during a check is not missed; any number of them
// make only one.
func (c *Client) checkAttemptsSoon() {
	select {
	case c.checkKick <- struct{}{}:
	default:
	}
}

// controlLoop checks the running attempts whenever checkAttemptsSoon asks.
func (c *Client) controlLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.checkKick:
		}
		attempts := c.runningAttempts()
		if len(attempts) == 0 {
			continue
		}
		lost, err := c.drv.JobLostAttempts(ctx, storage.JobLostAttemptsParams{Attempts: attempts})
		if err != nil {
			if ctx.Err() == nil {
				c.cfg.Logger.Warn("queue: checking running jobs failed", "err", err)
			}
			continue
		}
		c.stopLost(lost)
	}
}

// stopLost cancels the contexts of attempts that are no longer this
// client's: cancelled by an operator (cause ErrJobCancelled) or rescued
// (ErrClaimLost).
func (c *Client) stopLost(lost []storage.JobStatus) {
	for _, s := range lost {
		if s.State == acidic.JobRunning && s.CurrentAttempt == s.Attempt {
			// Still ours in a snapshot older than the change that stopped
			// the refresh (a cancellation committing right now): the
			// next heartbeat sees what happened.
			continue
		}
		cause := ErrClaimLost
		if s.State == acidic.JobCancelled {
			cause = ErrJobCancelled
		}
		c.cancelAttempt(s.JobAttempt, cause)
	}
}
