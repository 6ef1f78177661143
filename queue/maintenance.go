package queue

import (
	"context"

	"github.com/acidic-go/acidic/internal/tick"
	"github.com/acidic-go/acidic/storage"
)

// heartbeatLoop refreshes the heartbeat of the jobs this client runs, so no
// other client rescues them.
func (c *Client) heartbeatLoop(ctx context.Context) {
	tick.Every(ctx, c.cfg.HeartbeatInterval, c.heartbeat)
}

// heartbeat refreshes the running attempts and stops those that are no
// longer this client's.
func (c *Client) heartbeat(ctx context.Context) {
	lost, err := c.drv.JobHeartbeat(ctx, c.runningAttempts())
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: heartbeat failed", "err", err)
	}
	c.stopLost(lost)
}

// maintenanceLoop rescues jobs of dead workers and prunes old finished jobs.
func (c *Client) maintenanceLoop(ctx context.Context) {
	tick.Every(ctx, c.cfg.MaintenanceInterval, func(ctx context.Context) { c.Maintain(ctx) })
}

// MaintenanceResult tells what one maintenance pass did.
type MaintenanceResult struct {
	Rescued []*Job
	Pruned  int
}

// Maintain runs one maintenance pass now: rescue jobs whose worker stopped
// heartbeating more than RescueAfter ago, and prune finished jobs older than
// Retention. Started clients call it every MaintenanceInterval; tests and
// tools may call it directly.
func (c *Client) Maintain(ctx context.Context) MaintenanceResult {
	var res MaintenanceResult
	rescued, err := c.rescue(ctx)
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: rescue failed", "err", err)
	}
	res.Rescued = rescued
	for _, j := range rescued {
		c.cfg.Logger.Warn("queue: rescued job of a worker that stopped heartbeating",
			"job", j.ID, "kind", j.Kind, "worker", j.AttemptedBy, "state", j.State)
		if j.State == storage.JobRetryable {
			c.wakeProducer(j.Queue)
		}
	}
	if _, _, err := c.drv.JobResolveDependencies(ctx, nil); err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: resolve dependencies failed", "err", err)
	}
	pruned, err := c.drv.JobPrune(ctx, c.cfg.Retention, 10000)
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: prune failed", "err", err)
	}
	res.Pruned = pruned
	return res
}

// rescue rescues the jobs of workers that stopped heartbeating; those it
// discards (their last attempt) are passed to EndedFunc in the same
// transaction. A client without EndedFunc rescues no job that carries a
// workflow run.
func (c *Client) rescue(ctx context.Context) ([]*Job, error) {
	if c.cfg.EndedFunc == nil {
		// Without EndedFunc this client cannot end a run with its job: it
		// leaves jobs that carry runs to the engines' clients.
		return c.drv.JobRescue(ctx, storage.JobRescue{StaleAfter: c.cfg.RescueAfter, Limit: 1000, SkipRunJobs: true})
	}
	var rescued []*Job
	err := c.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		var err error
		if rescued, err = tx.JobRescue(ctx, storage.JobRescue{StaleAfter: c.cfg.RescueAfter, Limit: 1000}); err != nil {
			return err
		}
		var ended []*Job
		for _, j := range rescued {
			if j.State.Final() {
				ended = append(ended, j)
			}
		}
		if len(ended) == 0 {
			return nil
		}
		return c.cfg.EndedFunc(ctx, tx, ended)
	})
	if err != nil {
		return nil, err
	}
	return rescued, nil
}
