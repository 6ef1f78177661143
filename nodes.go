package acidic

import "time"

// Leader is the node that leads, with its lease.
type Leader struct {
	// NodeID is the leading node's ID (a queue client's ID).
	NodeID string
	// ElectedAt is when the node took the lead, on the store's clock.
	ElectedAt time.Time
	// ExpiresAt is when its lease runs out unless renewed, on the store's
	// clock.
	ExpiresAt time.Time
	// ExpiresIn is ExpiresAt less the store's clock at the read: zero or
	// less once the lease has run out. Wait this long, on any clock, for
	// the lease to run out.
	ExpiresIn time.Duration
}

// Node is one running node: a started queue client.
type Node struct {
	// ID is the node's ID, its queue client's ID (recorded in the jobs it
	// claims).
	ID string
	// Hostname and PID name the process.
	Hostname string
	PID      int
	// Version is the version of Acidic the node runs.
	Version string
	// Queues are the queues the node works, by name.
	Queues []NodeQueue
	// StartedAt is when the node started (its first record), HeartbeatAt
	// when it last recorded its row, and ExpiresAt when the row counts as a
	// dead node's unless recorded again; on the store's clock.
	StartedAt   time.Time
	HeartbeatAt time.Time
	ExpiresAt   time.Time
	// ExpiresIn is ExpiresAt less the store's clock at the read: zero or
	// less for a node that stopped heartbeating.
	ExpiresIn time.Duration
}

// Live reports whether the node was heartbeating at the read.
func (n *Node) Live() bool { return n.ExpiresIn > 0 }

// WorkersBusy returns how many jobs the node was running, over its queues.
func (n *Node) WorkersBusy() int {
	busy := 0
	for _, q := range n.Queues {
		busy += q.Busy
	}
	return busy
}

// WorkersFree returns how many more jobs the node could have started, over
// its queues.
func (n *Node) WorkersFree() int {
	free := 0
	for _, q := range n.Queues {
		free += max(q.MaxWorkers-q.Busy, 0)
	}
	return free
}

// NodeQueue is one queue a node works.
type NodeQueue struct {
	Queue string
	// MaxWorkers is how many of the queue's jobs the node runs at once at
	// most; Busy how many it was running.
	MaxWorkers int
	Busy       int
}
