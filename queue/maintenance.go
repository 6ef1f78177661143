package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/aftercommit"
	"github.com/acidic-go/acidic/internal/base/tick"
	"github.com/acidic-go/acidic/storage"
)

// heartbeatLoop refreshes the heartbeat of the jobs this client runs, so no
// other client rescues them, and the node's row (recorded first at once).
func (c *Client) heartbeatLoop(ctx context.Context) {
	c.recordNode(ctx)
	tick.Every(ctx, c.cfg.HeartbeatInterval, c.heartbeat)
}

// heartbeat refreshes the running attempts and stops those that are no
// longer this client's, then the node's row.
func (c *Client) heartbeat(ctx context.Context) {
	lost, err := c.drv.JobHeartbeat(ctx, storage.JobHeartbeatParams{Attempts: c.runningAttempts()})
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: heartbeat failed", "err", err)
	}
	c.stopLost(lost)
	c.recordNode(ctx)
}

// maintenanceLoop rescues jobs of dead workers and prunes old finished jobs
// and dead nodes, while this node leads (see leader.go); a node that does
// not lead runs no maintenance query.
func (c *Client) maintenanceLoop(ctx context.Context) {
	tick.Every(ctx, c.cfg.MaintenanceInterval, func(ctx context.Context) {
		lead := c.IsLeader()
		if lead {
			c.Maintain(ctx)
		}
		if c.node.maintained != nil {
			c.node.maintained(lead)
		}
	})
}

// MaintenanceResult tells what one maintenance pass did.
type MaintenanceResult struct {
	Rescued []*acidic.Job
	Pruned  int
	// NodesPruned counts the rows of dead nodes deleted.
	NodesPruned int
}

// Maintain runs one maintenance pass now: rescue jobs whose worker stopped
// heartbeating more than RescueAfter ago, settle jobs whose dependencies
// ended, prune finished jobs older than Retention, free the keys of unique
// graphs whose jobs are all pruned, and delete the rows of
// nodes that stopped heartbeating, each in bounded batches. A started
// client calls it every MaintenanceInterval while it leads its schema's
// nodes (IsLeader). Maintain itself does not check the lead: tests and tools
// may call it directly, on any client, started or not. Every query of the
// pass is safe to run on several clients at once (they skip rows another
// holds); the lead only keeps the other nodes from running them for
// nothing.
func (c *Client) Maintain(ctx context.Context) MaintenanceResult {
	var res MaintenanceResult
	rescued, after, err := c.rescue(ctx)
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: rescue failed", "err", err)
	}
	res.Rescued = rescued
	c.publishRescued(rescued)
	// After the job.rescued events: what the rescues' ends did (runs that
	// ended with their jobs).
	for _, l := range after {
		l.Run()
	}
	for _, j := range rescued {
		c.cfg.Logger.Warn("queue: rescued job of a worker that stopped heartbeating",
			"job", j.ID, "kind", j.Kind, "worker", j.AttemptedBy, "state", j.State)
		if j.State == acidic.JobRetryable {
			c.wakeProducer(j.Queue)
		}
	}
	if _, _, err := c.drv.JobResolveDependencies(ctx, storage.JobResolveDependenciesParams{Ended: nil}); err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: resolve dependencies failed", "err", err)
	}
	pruned, err := c.prune(ctx)
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: prune failed", "err", err)
	}
	res.Pruned = pruned
	c.pruneGraphKeys(ctx)
	nodes, err := c.drv.NodePrune(ctx, storage.NodePruneParams{Limit: 1000})
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: prune of dead nodes failed", "err", err)
	}
	res.NodesPruned = nodes
	return res
}

// rescue rescues the jobs of workers that stopped heartbeating; those it
// discards (their last attempt) are passed to EndedFunc in the same
// transaction. A client without EndedFunc rescues no job that carries a
// workflow run.
//
// The jobs are rescued in one transaction. Should EndedFunc fail, they are
// rescued again one at a time, and a job whose end cannot be written is set
// aside for this pass (logged as an error; it stays running, and the next
// pass tries again), so that one job cannot hold back the rescue of all the
// others.
//
// It also returns, for each transaction that committed, what EndedFunc
// left to do once it had (see aftercommit): run them after publishing the
// rescues.
func (c *Client) rescue(ctx context.Context) ([]*acidic.Job, []*aftercommit.List, error) {
	if c.cfg.EndedFunc == nil {
		// Without EndedFunc this client cannot end a run with its job: it
		// leaves jobs that carry runs to the engines' clients.
		rescued, err := c.drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: c.cfg.RescueAfter, Limit: 1000, SkipRunJobs: true})
		return rescued, nil, err
	}
	rescued, after, err := c.rescueTx(ctx, 1000, nil)
	var ended *endedError
	if !errors.As(err, &ended) {
		return rescued, []*aftercommit.List{after}, err
	}
	var afters []*aftercommit.List
	var skip []int64
	for len(skip) < 100 {
		got, after, err := c.rescueTx(ctx, 1, skip)
		if errors.As(err, &ended) {
			c.cfg.Logger.Error("queue: could not end a rescued job; it stays running until its end can be written",
				"jobs", ended.ids, "err", ended.err)
			skip = append(skip, ended.ids...)
			continue
		}
		if err != nil || len(got) == 0 {
			return rescued, afters, err
		}
		rescued, afters = append(rescued, got...), append(afters, after)
	}
	return rescued, afters, nil
}

// endedError is EndedFunc's failure for the jobs ids.
type endedError struct {
	ids []int64
	err error
}

func (e *endedError) Error() string { return fmt.Sprintf("end jobs %v: %v", e.ids, e.err) }
func (e *endedError) Unwrap() error { return e.err }

// rescueTx rescues up to limit jobs, except those in skip, and passes those
// it discards to EndedFunc, in one transaction. It returns what EndedFunc
// left to run once that transaction committed.
func (c *Client) rescueTx(ctx context.Context, limit int, skip []int64) ([]*acidic.Job, *aftercommit.List, error) {
	var rescued []*acidic.Job
	var after *aftercommit.List
	err := c.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		// A list of its own for every run of the transaction: only the
		// one that commits is kept.
		ctx, after = aftercommit.With(ctx)
		var err error
		if rescued, err = tx.JobRescue(ctx, storage.JobRescueParams{StaleAfter: c.cfg.RescueAfter, Limit: limit, Except: skip}); err != nil {
			return err
		}
		var ended []*acidic.Job
		var ids []int64
		for _, j := range rescued {
			if j.State.Final() {
				ended, ids = append(ended, j), append(ids, j.ID)
			}
		}
		if len(ended) == 0 {
			return nil
		}
		if err := c.cfg.EndedFunc(ctx, tx, ended); err != nil {
			return &endedError{ids: ids, err: err}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return rescued, after, nil
}
