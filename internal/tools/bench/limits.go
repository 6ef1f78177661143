package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// The limits scenario: limitNodes clients, each on a pool of its own as on
// separate machines, with enough workers between them to reach the global
// limit (River's issue #1145: 4 clients of 10 workers, a global limit of
// 40, and half the throughput).
const (
	limitNodes  = 3
	limitGlobal = 50
	// limitCall is how long the work of a job in the second workload
	// takes: a call to another service, what limits are for.
	limitCall = 20 * time.Millisecond
)

// Scenario 8: the same jobs worked by three clients of 17 workers each,
// without a limit and with a global limit of 50, in interleaved rounds; the
// figure is the median of the rounds' ratios, limited ÷ free. Two
// workloads: trivial jobs, where nothing but fetching and completing takes
// time, so that whatever the limit costs shows in full (a job holds its
// slot until its completion is written, which is most of a trivial job's
// life), and jobs whose work takes limitCall, which the target is about.
func (b *bench) limitsScenario(ctx context.Context) error {
	perNode := (limitGlobal + limitNodes - 1) / limitNodes
	var nodes []limitNode
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	for range limitNodes {
		n, err := b.openNode(ctx)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	for _, work := range []time.Duration{0, limitCall} {
		if err := b.limitsWorkload(ctx, nodes, perNode, work); err != nil {
			return err
		}
	}
	return nil
}

// limitsWorkload measures one workload of scenario 8: jobs whose work takes
// work, worked with and without the limit.
func (b *bench) limitsWorkload(ctx context.Context, pools []limitNode, perNode int, work time.Duration) error {
	rounds := b.cfg.runs * workflowRounds
	if b.cfg.quick {
		rounds = b.cfg.runs
	}
	what := "trivial jobs"
	var tg *target
	if work > 0 {
		what = fmt.Sprintf("jobs of %s", work)
		tg = atLeast(0.8)
	}
	limited := queue.QueueLimits{GlobalLimit: limitGlobal}
	var freeRates, limitedRates, ratios []float64
	var freeCPU, limitedCPU cpuUse
	maxRunning := 0
	for round := range rounds {
		var free, lim limitRun
		var err error
		// Alternate which run goes first, so neither always meets a
		// fresher (or a more tired) machine.
		if round%2 == 0 {
			if free, err = b.limitBatch(ctx, pools, perNode, queue.QueueLimits{}, work); err == nil {
				lim, err = b.limitBatch(ctx, pools, perNode, limited, work)
			}
		} else {
			if lim, err = b.limitBatch(ctx, pools, perNode, limited, work); err == nil {
				free, err = b.limitBatch(ctx, pools, perNode, queue.QueueLimits{}, work)
			}
		}
		if err != nil {
			return err
		}
		freeRates, limitedRates = append(freeRates, free.rate), append(limitedRates, lim.rate)
		ratios = append(ratios, lim.rate/free.rate)
		freeCPU, limitedCPU = freeCPU.add(free.cpu), limitedCPU.add(lim.cpu)
		maxRunning = max(maxRunning, lim.maxRunning)
		if lim.maxRunning > limitGlobal {
			return fmt.Errorf("limits: %d jobs running at once under a global limit of %d", lim.maxRunning, limitGlobal)
		}
		b.logf("limits: %s, round %d: %.0f jobs/s free, %.0f jobs/s limited (at most %d running)", what, round+1, free.rate, lim.rate, lim.maxRunning)
	}
	slots := perNode * limitNodes
	note := fmt.Sprintf("%d clients × %d workers; %d jobs", limitNodes, perNode, b.cfg.jobs)
	if rounds > 1 {
		note = joinNotes(fmt.Sprintf("median of %d rounds", rounds), note)
	}
	n := b.cfg.jobs * rounds
	client, server := freeCPU.per(n)
	b.tbl.add("8 limits", what+", no limit", slots, median(freeRates), "jobs/s", nil, note).withCPU(client, server, "job")
	client, server = limitedCPU.per(n)
	b.tbl.add("8 limits", fmt.Sprintf("%s, GlobalLimit %d", what, limitGlobal), slots, median(limitedRates), "jobs/s", nil,
		fmt.Sprintf("at most %d running (sampled)", maxRunning)).withCPU(client, server, "job")
	b.tbl.add("8 limits", what+": with the limit ÷ without", slots, median(ratios), "ratio", tg, note)
	return nil
}

// limitNode is the store of one client of the limits scenario, as a node on
// a machine of its own would have it.
type limitNode struct {
	drv   storage.Driver
	warm  func(context.Context) error
	close func()
}

// openNode opens one node's store: on PostgreSQL a pool of its own (the
// bench's configuration, with as many connections as a client of trivial
// jobs wants); on SQLite a driver of its own on the file, as another
// process would open it (it finds what the others enqueue by polling).
func (b *bench) openNode(ctx context.Context) (limitNode, error) {
	if b.lite != nil {
		return b.lite.openNode(ctx)
	}
	cfg := b.pool.Config()
	cfg.MaxConns = 10
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return limitNode{}, fmt.Errorf("node pool: %w", err)
	}
	return limitNode{
		drv:   postgres.New(p, postgres.Options{Schema: b.schema}),
		warm:  func(ctx context.Context) error { return warmPool(ctx, p, 4) },
		close: p.Close,
	}, nil
}

// limitRun is what one batch of the limits scenario measured.
type limitRun struct {
	rate       float64
	cpu        cpuUse
	maxRunning int
}

// limitBatch fills the queue with cfg.jobs jobs whose work takes work and
// times one client per pool, each with perNode workers and the given
// limits, working them all, from Start until every Stop returned;
// meanwhile it samples how many jobs the table shows running.
func (b *bench) limitBatch(ctx context.Context, pools []limitNode, perNode int, limits queue.QueueLimits, work time.Duration) (limitRun, error) {
	n := b.cfg.jobs
	if err := b.reset(ctx); err != nil {
		return limitRun{}, err
	}
	if err := b.fillJobs(ctx, noopKind, n); err != nil {
		return limitRun{}, err
	}
	worked := newCounter(n)
	ws := queue.NewWorkers()
	if err := ws.Handle(noopKind, func(context.Context, *acidic.Job) error {
		time.Sleep(work)
		worked.add()
		return nil
	}, queue.KindOptions{}); err != nil {
		return limitRun{}, err
	}
	clients := make([]*queue.Client, len(pools))
	for i, p := range pools {
		cfg := b.queueConfig(ws, perNode)
		cfg.ID = fmt.Sprintf("bench-node-%d", i+1)
		cfg.Queues[queue.DefaultQueue] = queue.QueueConfig{MaxWorkers: perNode, Limits: limits}
		c, err := queue.New(p.drv, cfg)
		if err != nil {
			return limitRun{}, err
		}
		clients[i] = c
	}
	for _, p := range pools {
		if err := p.warm(ctx); err != nil {
			return limitRun{}, err
		}
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var maxRunning atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		b.sampleRunning(sampleCtx, &maxRunning)
	}()
	cpu0 := b.cpuSnapshot(ctx)
	t0 := time.Now()
	var err error
	for _, c := range clients {
		if err = c.Start(ctx); err != nil {
			break
		}
	}
	if err == nil {
		err = waitFor(ctx, worked.done, worked.load, stall, "jobs worked")
	}
	var stops sync.WaitGroup
	stopErrs := make([]error, len(clients))
	for i, c := range clients {
		stops.Go(func() {
			if stopErr := stopClient(ctx, c.Stop); !errors.Is(stopErr, queue.ErrNotStarted) {
				stopErrs[i] = stopErr
			}
		})
	}
	stops.Wait()
	elapsed := time.Since(t0)
	cpu := b.cpuSnapshot(ctx).since(cpu0)
	stopSampling()
	<-sampled
	if err == nil {
		err = errors.Join(stopErrs...)
	}
	if err != nil {
		return limitRun{}, err
	}
	done, err := b.count(ctx, "SELECT count(*) FROM "+b.table("jobs")+" WHERE state = 'completed'")
	if err != nil {
		return limitRun{}, err
	}
	if done != n {
		return limitRun{}, fmt.Errorf("limits: %d of %d jobs completed", done, n)
	}
	return limitRun{rate: float64(n) / elapsed.Seconds(), cpu: cpu, maxRunning: int(maxRunning.Load())}, nil
}

// sampleRunning counts the running jobs every few milliseconds until ctx
// ends, keeping the largest count in peak.
func (b *bench) sampleRunning(ctx context.Context, peak *atomic.Int64) {
	q := "SELECT count(*) FROM " + b.table("jobs") + " WHERE state = 'running'"
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if n, err := b.count(ctx, q); err == nil && int64(n) > peak.Load() {
			peak.Store(int64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// warmPool opens n connections of p ahead of a timed part.
func warmPool(ctx context.Context, p *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := p.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("warm pool: %w", err)
		}
		conns = append(conns, c)
	}
	return nil
}
