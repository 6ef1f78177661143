package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// ErrInvalidGraph is returned, wrapped with the reason, for a graph that
// cannot be enqueued: a job without a name, two jobs with one name, a
// dependency on a name the graph does not have, or a cycle.
var ErrInvalidGraph = errors.New("queue: invalid job graph")

// DependencyFailure says what a failed dependency does to a job that waits
// for it.
type DependencyFailure string

// What a failed (cancelled or discarded) dependency does to its dependents.
const (
	// CancelDependents cancels the dependent job, and in turn its own
	// dependents. The default.
	CancelDependents DependencyFailure = "cancel"
	// DiscardDependents discards the dependent job, and in turn its own
	// dependents.
	DiscardDependents DependencyFailure = "discard"
	// IgnoreFailure runs the dependent anyway once every dependency has
	// finished, however it finished.
	IgnoreFailure DependencyFailure = "ignore"
)

// GraphJob is one job of a Graph.
type GraphJob struct {
	// Name identifies the job within its graph.
	Name string
	Kind string
	Args any
	Opts EnqueueOptions
	// After names the jobs of the graph that must complete before this one
	// runs.
	After []string
	// OnDependencyFailure applies when a job in After fails for good.
	// Default CancelDependents.
	OnDependencyFailure DependencyFailure
}

// Graph is a set of jobs where some wait for others: a fan-out, a fan-in,
// or any directed acyclic graph. The zero value is an empty graph.
//
//	var g queue.Graph
//	g.Add(queue.GraphJob{Name: "a", Kind: "fetch"})
//	g.Add(queue.GraphJob{Name: "b", Kind: "fetch"})
//	g.Add(queue.GraphJob{Name: "c", Kind: "merge", After: []string{"a", "b"}})
//	jobs, err := client.EnqueueGraph(ctx, &g)
//
// A graph with a Key is unique: see Key.
type Graph struct {
	// Key, when set, makes the whole graph unique by it: an enqueue of a
	// graph whose Key another graph holds inserts nothing and returns that
	// graph's jobs, by the names they were enqueued under, each marked
	// Duplicate (whatever jobs this graph holds). A redelivered webhook
	// that enqueues the graph again with the webhook's id as Key makes no
	// second graph. The database decides, so concurrent enqueues of one
	// Key make one graph. A key is held for as long as a job of its graph
	// is stored, whatever the jobs' states, and freed once all of them have
	// been pruned (Config.Retention after they finished). It is 1 to
	// storage.MaxKeyBytes bytes of UTF-8 without NUL; keys are shared by
	// every graph of the schema, so prefix them with what the graph does
	// ("licence:" + id).
	Key string

	jobs []GraphJob
}

// Add appends a job and returns the graph, for chaining.
func (g *Graph) Add(j GraphJob) *Graph {
	g.jobs = append(g.jobs, j)
	return g
}

// Validate reports why the graph cannot be enqueued, if it cannot.
func (g *Graph) Validate() error {
	_, err := g.order()
	return err
}

// order returns the jobs' indexes grouped in levels: every job's
// dependencies sit in earlier levels.
func (g *Graph) order() ([][]int, error) {
	if len(g.jobs) == 0 {
		return nil, fmt.Errorf("%w: no jobs", ErrInvalidGraph)
	}
	index := map[string]int{}
	for i, j := range g.jobs {
		if j.Name == "" {
			return nil, fmt.Errorf("%w: job %d (%s) has no name", ErrInvalidGraph, i+1, j.Kind)
		}
		if _, dup := index[j.Name]; dup {
			return nil, fmt.Errorf("%w: two jobs named %q", ErrInvalidGraph, j.Name)
		}
		switch j.OnDependencyFailure {
		case "", CancelDependents, DiscardDependents, IgnoreFailure:
		default:
			return nil, fmt.Errorf("%w: job %q: unknown OnDependencyFailure %q", ErrInvalidGraph, j.Name, j.OnDependencyFailure)
		}
		index[j.Name] = i
	}
	remaining := make([]int, len(g.jobs)) // unplaced dependencies per job
	dependents := make([][]int, len(g.jobs))
	for i, j := range g.jobs {
		for _, dep := range j.After {
			d, ok := index[dep]
			if !ok {
				return nil, fmt.Errorf("%w: job %q runs after %q, which the graph does not have", ErrInvalidGraph, j.Name, dep)
			}
			if d == i {
				return nil, fmt.Errorf("%w: job %q runs after itself", ErrInvalidGraph, j.Name)
			}
			remaining[i]++
			dependents[d] = append(dependents[d], i)
		}
	}
	var levels [][]int
	var ready []int
	for i := range g.jobs {
		if remaining[i] == 0 {
			ready = append(ready, i)
		}
	}
	placed := 0
	for len(ready) > 0 {
		levels = append(levels, ready)
		placed += len(ready)
		var next []int
		for _, i := range ready {
			for _, d := range dependents[i] {
				if remaining[d]--; remaining[d] == 0 {
					next = append(next, d)
				}
			}
		}
		ready = next
	}
	if placed != len(g.jobs) {
		var cyclic []string
		for i, j := range g.jobs {
			if remaining[i] > 0 {
				cyclic = append(cyclic, j.Name)
			}
		}
		slices.Sort(cyclic)
		return nil, fmt.Errorf("%w: a cycle runs through %s", ErrInvalidGraph, strings.Join(cyclic, ", "))
	}
	return levels, nil
}

// EnqueueGraph inserts every job of the graph in one transaction and returns
// them by name. Jobs with dependencies wait (pending) until every job they
// run after has completed. A graph whose Key another graph holds inserts
// nothing and returns that graph's jobs (see Graph.Key).
func (c *Client) EnqueueGraph(ctx context.Context, g *Graph) (map[string]*acidic.Job, error) {
	var out map[string]*acidic.Job
	err := c.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		var err error
		out, err = c.EnqueueGraphTx(ctx, tx, g)
		return err
	})
	return out, err
}

// EnqueueGraphTx is EnqueueGraph through ex, a transaction of the caller's.
// A graph with a Key needs ex to be a transaction (a storage.Tx), so that
// the key and the jobs commit together; anything else is ErrInvalid, and
// nothing is written.
func (c *Client) EnqueueGraphTx(ctx context.Context, ex storage.Executor, g *Graph) (map[string]*acidic.Job, error) {
	levels, err := g.order()
	if err != nil {
		return nil, err
	}
	tx, isTx := ex.(storage.Tx)
	if g.Key != "" {
		if err := (storage.JobGraphReserveParams{Key: g.Key}).Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if !isTx {
			return nil, fmt.Errorf("%w: graph %q: a graph with a Key is enqueued in a transaction", ErrInvalid, g.Key)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	// Validate every job before writing any.
	rows := make([]storage.JobInsert, len(g.jobs))
	for i, j := range g.jobs {
		in, _, err := c.insertFor(EnqueueParams{Kind: j.Kind, Args: j.Args, Opts: j.Opts}, now)
		if err != nil {
			return nil, fmt.Errorf("job %q: %w", j.Name, err)
		}
		if in.UniqueKey != nil {
			// A duplicate would leave its dependents waiting on a job of
			// another graph; uniqueness and graphs do not mix.
			return nil, fmt.Errorf("%w: job %q is unique (its options or its kind's); graph jobs cannot be (give the graph a Key)", ErrInvalidGraph, j.Name)
		}
		in.DependencyFailure = string(j.OnDependencyFailure)
		rows[i] = in
	}
	if g.Key != "" {
		res, err := tx.JobGraphReserve(ctx, storage.JobGraphReserveParams{Key: g.Key})
		if err != nil {
			return nil, fmt.Errorf("queue: enqueue graph: %w", err)
		}
		if !res.Reserved {
			return existingGraph(ctx, tx, res.Jobs)
		}
	}
	out := make(map[string]*acidic.Job, len(g.jobs))
	for _, level := range levels {
		batch := make([]storage.JobInsert, len(level))
		for k, i := range level {
			in := rows[i]
			for _, dep := range g.jobs[i].After {
				in.DependsOn = append(in.DependsOn, out[dep].ID)
			}
			if len(in.DependsOn) > 0 {
				in.State = acidic.JobPending
			}
			batch[k] = in
		}
		jobs, err := ex.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: batch})
		if err != nil {
			return nil, fmt.Errorf("queue: enqueue graph: %w", err)
		}
		for k, i := range level {
			out[g.jobs[i].Name] = jobs[k]
		}
	}
	if g.Key != "" {
		ids := make(map[string]int64, len(out))
		for name, j := range out {
			ids[name] = j.ID
		}
		if err := tx.JobGraphRecord(ctx, storage.JobGraphRecordParams{Key: g.Key, Jobs: ids}); err != nil {
			return nil, fmt.Errorf("queue: enqueue graph: %w", err)
		}
	}
	return out, nil
}

// existingGraph returns the jobs of the graph that holds a key, by name,
// marked Duplicate. A job deleted since is left out.
func existingGraph(ctx context.Context, ex storage.Executor, ids map[string]int64) (map[string]*acidic.Job, error) {
	list := make([]int64, 0, len(ids))
	for _, id := range ids {
		list = append(list, id)
	}
	jobs, err := ex.JobList(ctx, acidic.JobFilter{IDs: list, Limit: len(list) + 1})
	if err != nil {
		return nil, fmt.Errorf("queue: enqueue graph: %w", err)
	}
	byID := make(map[int64]*acidic.Job, len(jobs))
	for _, j := range jobs {
		j.Duplicate = true
		byID[j.ID] = j
	}
	out := make(map[string]*acidic.Job, len(ids))
	for name, id := range ids {
		if j := byID[id]; j != nil {
			out[name] = j
		}
	}
	return out, nil
}

// pruneGraphKeys frees the keys of unique graphs whose jobs are all gone, in
// a maintenance pass. A graph's jobs were all enqueued after its key, and a
// finished job is pruned no sooner than the retention of its state, so only
// graphs older than the shortest retention are looked at. With every state
// kept for ever, jobs are not pruned and keys are not looked at.
func (c *Client) pruneGraphKeys(ctx context.Context) {
	byState := c.cfg.Retention.byState()
	if len(byState) == 0 {
		return
	}
	shortest := time.Duration(math.MaxInt64)
	for _, d := range byState {
		shortest = min(shortest, d)
	}
	if _, err := c.drv.JobGraphPrune(ctx, storage.JobGraphPruneParams{Retention: shortest, Limit: 10000}); err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("queue: prune graph keys failed", "err", err)
	}
}
