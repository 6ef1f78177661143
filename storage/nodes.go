package storage

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/acidic-go/acidic"
)

// Nodes keeps the nodes of a store (every started queue client is one) and
// which of them leads: the leader runs the store's maintenance (rescue,
// pruning) so that the other nodes need not. Every time it reads or writes
// is the store's own clock, never a node's, so nodes whose clocks disagree
// still agree on who leads.
//
// The lead is a lease: the leader holds it for a term it chose and renews
// it well before the term ends; a node that dies stops renewing, and once
// the term has run out another node takes the lead. Holding the lead grants
// nothing a query relies on: every maintenance query stays safe to run on
// several nodes at once (a leader that lost the lead without knowing it
// yet, say); the lead only keeps the others from running it for nothing.
type Nodes interface {
	// LeaderElect makes p.NodeID the leader for p.TTL from now if nobody
	// leads or the leader's lease has run out, and renews the lease if
	// p.NodeID already leads (whether or not its lease ran out: nobody took
	// it meanwhile); a renewal keeps ElectedAt. Another node's running
	// lease is left alone. It returns the leader after the attempt, which
	// is p.NodeID exactly when it leads now, or nil in the rare case that
	// the leader could not be read (the lead changed hands during the
	// attempt): try again.
	LeaderElect(ctx context.Context, p LeaderElectParams) (*acidic.Leader, error)
	// LeaderResign ends p.NodeID's lead at once, if it leads (whether or
	// not its lease ran out), and then tells the other nodes so
	// (TopicLeader), so that one of them takes the lead without waiting for
	// the lease to run out. It reports whether p.NodeID led.
	LeaderResign(ctx context.Context, p LeaderResignParams) (bool, error)
	// LeaderGet returns the leader, or acidic.ErrNotFound when no node leads. A
	// leader whose lease ran out (a node that died) is returned, with
	// ExpiresIn zero or less, until another node takes the lead.
	LeaderGet(ctx context.Context, p LeaderGetParams) (*acidic.Leader, error)

	// NodeRecord writes a node's row, created or replaced whole, and
	// returns it as stored: HeartbeatAt is now, ExpiresAt p.TTL from now,
	// and StartedAt p.StartedAt, or now when that is zero (the node's first
	// record).
	NodeRecord(ctx context.Context, p NodeRecordParams) (*acidic.Node, error)
	// NodeDelete deletes a node's row (the node stopped cleanly) and
	// reports whether there was one.
	NodeDelete(ctx context.Context, p NodeDeleteParams) (bool, error)
	// NodeList returns every node's row, dead ones (ExpiresIn zero or less)
	// included, by start time and then ID.
	NodeList(ctx context.Context, p NodeListParams) ([]*acidic.Node, error)
	// NodePrune deletes up to p.Limit rows of dead nodes (their ExpiresAt
	// has passed) and returns how many it deleted.
	NodePrune(ctx context.Context, p NodePruneParams) (int, error)
}

// TopicLeader tells nodes that the leader resigned: whoever hears it tries
// to take the lead at once (LeaderElect, which decides by the leader table
// alone); it has no payload.
const TopicLeader = "leader"

// LeaderElectParams are the arguments of Nodes.LeaderElect.
type LeaderElectParams struct {
	// NodeID is the node that wants the lead (a valid name, CheckName).
	NodeID string
	// TTL is the lease's term, at least a microsecond.
	TTL time.Duration
}

// Validate returns acidic.ErrInvalid for a NodeID that is not a valid name or a
// TTL under a microsecond.
func (p LeaderElectParams) Validate() error {
	if err := CheckName("node ID", p.NodeID); err != nil {
		return fmt.Errorf("leader elect: %w", err)
	}
	if p.TTL < time.Microsecond {
		return invalidIf(fmt.Sprintf("leader elect: lease %s is under a microsecond", p.TTL))
	}
	return nil
}

// LeaderResignParams are the arguments of Nodes.LeaderResign.
type LeaderResignParams struct {
	// NodeID is the node that resigns.
	NodeID string
}

// LeaderGetParams are the arguments of Nodes.LeaderGet (none yet).
type LeaderGetParams struct{}

// NodeRecordParams are the arguments of Nodes.NodeRecord: the node's row.
type NodeRecordParams struct {
	// ID names the node (a valid name, CheckName).
	ID string
	// Hostname is the node's host: at most MaxNameBytes of UTF-8 without
	// NUL, empty when unknown.
	Hostname string
	// PID is the node's process ID, 0 to math.MaxInt32.
	PID int
	// Version is the version of Acidic the node runs (a valid name).
	Version string
	// Queues are the queues the node works: valid names, each once, with
	// MaxWorkers and Busy 0 to math.MaxInt32.
	Queues []acidic.NodeQueue
	// StartedAt is the StartedAt of the node's first record, zero on that
	// first record (the store's clock then sets it). Years 1 to MaxYear.
	StartedAt time.Time
	// TTL is how long the row counts as a live node's without another
	// record: a few of the node's heartbeat intervals. At least a
	// microsecond.
	TTL time.Duration
}

// Validate returns acidic.ErrInvalid for a row the store does not hold (see the
// fields' limits).
func (p NodeRecordParams) Validate() error {
	if err := CheckName("node ID", p.ID); err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	if problem := p.problem(); problem != "" {
		return invalidIf("node " + short(p.ID) + ": " + problem)
	}
	return nil
}

func (p NodeRecordParams) problem() string {
	if problem := textProblem("hostname", p.Hostname, MaxNameBytes); problem != "" {
		return problem
	}
	if problem := nameProblem("version", p.Version); problem != "" {
		return problem
	}
	if problem := timeProblem("StartedAt", p.StartedAt); problem != "" {
		return problem
	}
	switch {
	case p.PID < 0 || p.PID > math.MaxInt32:
		return fmt.Sprintf("PID %d outside 0..%d", p.PID, math.MaxInt32)
	case p.TTL < time.Microsecond:
		return fmt.Sprintf("TTL %s is under a microsecond", p.TTL)
	}
	seen := make(map[string]bool, len(p.Queues))
	for _, q := range p.Queues {
		if problem := nameProblem("queue", q.Queue); problem != "" {
			return problem
		}
		if seen[q.Queue] {
			return fmt.Sprintf("queue %s listed twice", short(q.Queue))
		}
		seen[q.Queue] = true
		if q.MaxWorkers < 0 || q.MaxWorkers > math.MaxInt32 || q.Busy < 0 || q.Busy > math.MaxInt32 {
			return fmt.Sprintf("queue %s: MaxWorkers %d and Busy %d must be within 0..%d", short(q.Queue), q.MaxWorkers, q.Busy, math.MaxInt32)
		}
	}
	return ""
}

// NodeDeleteParams are the arguments of Nodes.NodeDelete.
type NodeDeleteParams struct {
	// ID is the node whose row is deleted.
	ID string
}

// NodeListParams are the arguments of Nodes.NodeList (none yet).
type NodeListParams struct{}

// NodePruneParams are the arguments of Nodes.NodePrune.
type NodePruneParams struct {
	// Limit caps how many rows one call deletes, at least 1.
	Limit int
}
