package queue

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/acidic-go/acidic/storage"
)

// Every started client is a node of its schema. One node leads and runs the
// schema's maintenance (Maintain); the others run none of its queries. The
// lead is a lease row on the database's clock (storage.Nodes):
//
//	               elected (the row is free, or its lease ran out)
//	  follower ─────────────────────────────────────────────────► leader
//	   ▲   ▲                                                     │  │  │
//	   │   │  another node holds the row (it took the lead       │  │  │ renewed every
//	   │   └──────── after this node's lease ran out) ───────────┘  │  │ LeaderLease/3
//	   │                                                            │  ◄┘
//	   │      the renewals failed until the lease ran out           │
//	   └──────────────── (database unreachable) ────────────────────┘
//
//	Stop: the leader deletes the row (LeaderResign) and the followers that
//	listen hear it (storage.TopicLeader) and elect one of them at once.
//
// A follower asks again when the leader's lease runs out (the database says
// when), and at least every LeaderLease/3; so a leader that dies is replaced
// within its lease. The leader counts its own lease from just before it asked
// for it, on its own clock, so it stops believing it leads before the
// database lets another node take over (clocks may disagree on the time of
// day, not on how long a second is). Nothing relies on there being one
// leader: every maintenance query is safe to run on several nodes at once;
// the lead only saves the others from running them for nothing.

// nodeLiveBeats is how many heartbeat intervals a node's row stays live
// without a heartbeat; past that the leader deletes it as a dead node's.
const nodeLiveBeats = 5

// leaveTimeout bounds the writes a stopping node makes to leave: its
// resignation and the delete of its row.
const leaveTimeout = 5 * time.Second

// nodeState is the client's life as a node: its lead and its row.
type nodeState struct {
	kick chan struct{} // asks leaderLoop to try for the lead now

	mu        sync.Mutex
	leadUntil time.Time // this node leads until then (local clock); zero when it does not
	startedAt time.Time // the row's StartedAt, from the first record (database clock)
	hostname  string

	// maintained, when set (by tests, before Start), is called after every
	// tick of the maintenance loop with whether the tick ran a pass.
	maintained func(ran bool)
}

// IsLeader reports whether this client leads its schema's nodes now: only
// the leader runs the maintenance (rescue of jobs of dead workers, pruning)
// in the background. Use it to run other work that should run on one node
// only. It is false for a client that is not started. The lead may move to
// another node at any time (this one stops or loses the database), so work
// done because of it must still be safe to do twice.
func (c *Client) IsLeader() bool {
	c.node.mu.Lock()
	defer c.node.mu.Unlock()
	return time.Now().Before(c.node.leadUntil)
}

// joinNodes readies the node state for a run of the client.
func (c *Client) joinNodes() {
	host, _ := os.Hostname()
	if storage.CheckName("hostname", host) != nil {
		host = ""
	}
	c.node.mu.Lock()
	c.node.leadUntil, c.node.startedAt, c.node.hostname = time.Time{}, time.Time{}, host
	c.node.mu.Unlock()
}

// leaderLoop keeps trying for the lead, and renews it while it holds it,
// until ctx ends.
func (c *Client) leaderLoop(ctx context.Context) {
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		case <-c.node.kick:
		}
		next.Reset(c.elect(ctx))
	}
}

// electSoon asks the leader loop to try for the lead now: the leader
// resigned.
func (c *Client) electSoon() {
	select {
	case c.node.kick <- struct{}{}:
	default:
	}
}

// elect tries for the lead (renews it when this node holds it) and returns
// how long to wait before the next try.
func (c *Client) elect(ctx context.Context) time.Duration {
	lease := c.cfg.LeaderLease
	renew := lease / 3
	asked := time.Now()
	l, err := c.drv.LeaderElect(ctx, storage.LeaderElectParams{NodeID: c.cfg.ID, TTL: lease})
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.cfg.Logger.Warn("queue: leader election failed", "client", c.cfg.ID, "err", err)
		}
		c.leadLapses()
		return max(lease/10, time.Millisecond)
	case l != nil && l.NodeID == c.cfg.ID:
		c.lead(asked.Add(lease))
		return renew
	case l == nil:
		// The lead changed hands during the attempt: ask again soon.
		c.follow("")
		return max(min(renew, 10*time.Millisecond), time.Millisecond)
	default:
		c.follow(l.NodeID)
		// Ask again when the leader's lease runs out, should it not be
		// renewed.
		return min(max(l.ExpiresIn+time.Millisecond, time.Millisecond), renew)
	}
}

// lead records that this node leads until until.
func (c *Client) lead(until time.Time) {
	c.node.mu.Lock()
	was := time.Now().Before(c.node.leadUntil)
	c.node.leadUntil = until
	c.node.mu.Unlock()
	if !was {
		c.cfg.Logger.Info("queue: this node leads; it runs the maintenance", "client", c.cfg.ID)
	}
}

// follow records that another node (leader, "" if unknown) leads.
func (c *Client) follow(leader string) {
	c.node.mu.Lock()
	was := time.Now().Before(c.node.leadUntil)
	c.node.leadUntil = time.Time{}
	c.node.mu.Unlock()
	if was {
		c.cfg.Logger.Warn("queue: this node lost the lead", "client", c.cfg.ID, "leader", leader)
	}
}

// leadLapses ends the lead once its lease ran out without a renewal.
func (c *Client) leadLapses() {
	c.node.mu.Lock()
	lapsed := !c.node.leadUntil.IsZero() && !time.Now().Before(c.node.leadUntil)
	if lapsed {
		c.node.leadUntil = time.Time{}
	}
	c.node.mu.Unlock()
	if lapsed {
		c.cfg.Logger.Warn("queue: this node's lead ran out before it could renew it", "client", c.cfg.ID)
	}
}

// leaveNodes ends the node's life at a clean stop, once its maintenance has
// stopped: it gives up the lead (so that another node takes it at once) and
// deletes its row. The database decides whether this node leads: an
// election whose answer was lost may have made it the leader.
func (c *Client) leaveNodes(work context.Context) {
	c.node.mu.Lock()
	c.node.leadUntil = time.Time{}
	c.node.mu.Unlock()
	ctx, cancel := context.WithTimeout(work, leaveTimeout)
	defer cancel()
	if resigned, err := c.drv.LeaderResign(ctx, storage.LeaderResignParams{NodeID: c.cfg.ID}); err != nil {
		c.cfg.Logger.Warn("queue: could not resign the lead; another node takes it when the lease runs out", "client", c.cfg.ID, "err", err)
	} else if resigned {
		c.cfg.Logger.Info("queue: this node resigned the lead", "client", c.cfg.ID)
	}
	if _, err := c.drv.NodeDelete(ctx, storage.NodeDeleteParams{ID: c.cfg.ID}); err != nil {
		c.cfg.Logger.Warn("queue: could not delete this node's row; the leader deletes it once it expires", "client", c.cfg.ID, "err", err)
	}
}
