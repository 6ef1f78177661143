package queue

import (
	"cmp"
	"context"
	"os"
	"slices"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// recordNode writes this node's row: the queues it works with their
// workers busy and free, refreshed with every heartbeat (see
// storage.Nodes.NodeRecord). The row stays live for nodeLiveBeats
// heartbeat intervals.
func (c *Client) recordNode(ctx context.Context) {
	c.node.mu.Lock()
	started, host := c.node.startedAt, c.node.hostname
	c.node.mu.Unlock()
	n, err := c.drv.NodeRecord(ctx, storage.NodeRecordParams{
		ID:        c.cfg.ID,
		Hostname:  host,
		PID:       os.Getpid(),
		Version:   acidic.Version,
		Queues:    c.nodeQueues(),
		StartedAt: started,
		TTL:       nodeLiveBeats * c.cfg.HeartbeatInterval,
	})
	if err != nil {
		if ctx.Err() == nil {
			c.cfg.Logger.Warn("queue: could not record this node", "client", c.cfg.ID, "err", err)
		}
		return
	}
	if started.IsZero() {
		c.node.mu.Lock()
		c.node.startedAt = n.StartedAt
		c.node.mu.Unlock()
	}
}

// nodeQueues returns the queues the client works, by name, with their
// workers.
func (c *Client) nodeQueues() []acidic.NodeQueue {
	c.mu.Lock()
	out := make([]acidic.NodeQueue, 0, len(c.producers))
	for name, p := range c.producers {
		p.mu.Lock()
		out = append(out, acidic.NodeQueue{Queue: name, MaxWorkers: p.max, Busy: p.active})
		p.mu.Unlock()
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b acidic.NodeQueue) int { return cmp.Compare(a.Queue, b.Queue) })
	return out
}
