package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// limitNodes returns n drivers on first's store, each on a pool (or, on
// SQLite, a file handle) of its own, as n nodes would have.
func limitNodes(t *testing.T, first storage.Driver, n int) []storage.Driver {
	t.Helper()
	nodes := []storage.Driver{first}
	for range n - 1 {
		nodes = append(nodes, testdb.Reopen(t, first, testdb.Options{}))
	}
	return nodes
}

// limitedConfig is a client config working queue "default" with the given
// workers and limits.
func limitedConfig(ws *queue.Workers, id string, workers int, limits queue.QueueLimits) queue.Config {
	cfg := fastConfig(ws, workers)
	cfg.ID = id
	cfg.Queues = map[string]queue.QueueConfig{"default": {MaxWorkers: workers, Limits: limits}}
	return cfg
}

// enqueueN enqueues n jobs of kind with args made by argsOf(i).
func enqueueLimited(t *testing.T, c *queue.Client, kind string, n int, argsOf func(i int) any) {
	t.Helper()
	params := make([]queue.EnqueueParams, n)
	for i := range params {
		params[i] = queue.EnqueueParams{Kind: kind, Args: argsOf(i)}
	}
	if _, err := c.EnqueueMany(ctxT(t), params); err != nil {
		t.Fatalf("EnqueueMany: %v", err)
	}
}

// waitCompleted waits until n jobs are completed, calling sample between
// looks.
func waitCompleted(t *testing.T, drv storage.Driver, n int, sample func()) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		done := testdb.QueryInt(t, drv, "SELECT count(*) FROM "+table(drv, "jobs")+" WHERE state = 'completed'")
		if done == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs completed", done, n)
		}
		sample()
	}
}

// TestGlobalLimitHoldsAcrossNodes: three clients with 2 workers each (each
// could run the limit alone) work a queue whose GlobalLimit is 2: sampled
// many times while they work through 150 jobs, the jobs table never shows
// more than 2 running, and no more than 2 work functions ever run at once
// (and 2 do at times).
func TestGlobalLimitHoldsAcrossNodes(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, first storage.Driver) {
		nodes := limitNodes(t, first, 3)
		var executing, maxExecuting atomic.Int64
		ws := queue.NewWorkers()
		if err := ws.Handle("work", func(ctx context.Context, job *acidic.Job) error {
			n := executing.Add(1)
			defer executing.Add(-1)
			for {
				m := maxExecuting.Load()
				if n <= m || maxExecuting.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			return nil
		}, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		limits := queue.QueueLimits{GlobalLimit: 2}
		clients := make([]*queue.Client, len(nodes))
		for i, drv := range nodes {
			clients[i] = newClient(t, drv, limitedConfig(ws, fmt.Sprintf("node%d", i), 2, limits))
		}
		const jobs = 150
		enqueueLimited(t, clients[0], "work", jobs, func(int) any { return nil })
		for _, c := range clients {
			start(t, c)
		}
		drv := nodes[0]
		samples, maxRunning := 0, 0
		waitCompleted(t, drv, jobs, func() {
			running := testdb.QueryInt(t, drv, "SELECT count(*) FROM "+table(drv, "jobs")+" WHERE state = 'running'")
			samples++
			maxRunning = max(maxRunning, running)
		})
		if maxRunning > 2 || maxExecuting.Load() != 2 {
			t.Errorf("with a global limit of 2: up to %d jobs running in the table (%d samples), up to %d work functions at once; want at most 2, and 2 at times",
				maxRunning, samples, maxExecuting.Load())
		}
		if samples < 50 {
			t.Errorf("only %d samples of the running count; want many", samples)
		}
		workedBy := testdb.QueryInt(t, drv, "SELECT count(DISTINCT attempted_by) FROM "+table(drv, "jobs"))
		t.Logf("%d samples, at most %d running, at most %d executing, %d clients worked", samples, maxRunning, maxExecuting.Load(), workedBy)
	})
}

// TestRateLimitNeverExceeded: three clients work a queue limited to 10
// starts per second; over the 11 seconds they take to start 110 jobs, no
// window of a second holds more than 10 starts (AttemptedAt, the start
// stamp of each job's only attempt).
func TestRateLimitNeverExceeded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, first storage.Driver) {
		nodes := limitNodes(t, first, 3)
		ws := queue.NewWorkers()
		if err := ws.Handle("call", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		limits := queue.QueueLimits{Rate: queue.Rate{Limit: 10, Period: time.Second}}
		clients := make([]*queue.Client, len(nodes))
		for i, drv := range nodes {
			clients[i] = newClient(t, drv, limitedConfig(ws, fmt.Sprintf("node%d", i), 8, limits))
		}
		const jobs = 110
		enqueueLimited(t, clients[0], "call", jobs, func(int) any { return nil })
		for _, c := range clients {
			start(t, c)
		}
		drv := nodes[0]
		waitCompleted(t, drv, jobs, func() { time.Sleep(50 * time.Millisecond) })
		list, err := clients[0].List(ctxT(t), acidic.JobFilter{Limit: jobs})
		if err != nil {
			t.Fatal(err)
		}
		starts := make([]time.Time, 0, len(list))
		for _, j := range list {
			if j.Attempt != 1 || j.AttemptedAt == nil {
				t.Fatalf("job %d: attempt %d, attempted at %v; want one attempt", j.ID, j.Attempt, j.AttemptedAt)
			}
			starts = append(starts, *j.AttemptedAt)
		}
		slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
		worst := 0
		for i, s := range starts {
			n := 0
			for _, u := range starts[i:] {
				if u.Sub(s) >= time.Second {
					break
				}
				n++
			}
			worst = max(worst, n)
		}
		span := starts[len(starts)-1].Sub(starts[0])
		if worst > 10 {
			t.Errorf("a window of one second holds %d starts; the limit is 10 (starts span %s)", worst, span)
		}
		t.Logf("%d starts over %s; at most %d in any second", len(starts), span, worst)
	})
}

// TestPartitionedLimitsShareFairly: 300 jobs of a hot merchant wait ahead of
// 5 jobs of a cold one, in a queue partitioned by merchant_id whose
// per-merchant limit (10) is above the client's 2 workers, so only the
// round-robin between partitions keeps the cold merchant from waiting for
// all the hot jobs: its 5 jobs all start while few hot ones do.
func TestPartitionedLimitsShareFairly(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		type args struct {
			MerchantID string `json:"merchant_id"`
		}
		var (
			mu    sync.Mutex
			order []string
		)
		ws := queue.NewWorkers()
		if err := queue.HandleArgs(ws, "charge", func(ctx context.Context, job *acidic.Job, a args) error {
			mu.Lock()
			order = append(order, a.MerchantID)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			return nil
		}, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		limits := queue.QueueLimits{GlobalLimit: 10, PartitionBy: []string{"merchant_id"}}
		c := newClient(t, drv, limitedConfig(ws, "node", 2, limits))
		enqueueLimited(t, c, "charge", 300, func(int) any { return args{"hot"} })
		enqueueLimited(t, c, "charge", 5, func(int) any { return args{"cold"} })
		start(t, c)
		waitCompleted(t, drv, 305, func() { time.Sleep(10 * time.Millisecond) })
		mu.Lock()
		defer mu.Unlock()
		hotBefore, coldSeen := 0, 0
		for _, m := range order {
			if m == "cold" {
				coldSeen++
				if coldSeen == 5 {
					break
				}
				continue
			}
			hotBefore++
		}
		if coldSeen != 5 || hotBefore > 30 {
			t.Errorf("%d hot jobs started before the 5th cold one (cold jobs seen: %d); want the cold merchant served in turn, within a few hot jobs", hotBefore, coldSeen)
		}
		t.Logf("%d hot jobs started before the last of 5 cold ones", hotBefore)
	})
}

// TestLimitsRefusedAtConstruction: limits no fetch can keep are refused by
// queue.New and workflow.NewEngine with a *LimitsError naming the queue and
// the setting (matching ErrInvalidLimits and ErrInvalid), and nothing is
// written.
func TestLimitsRefusedAtConstruction(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		for _, tc := range []struct {
			limits queue.QueueLimits
			field  string
		}{
			{queue.QueueLimits{GlobalLimit: -1}, "GlobalLimit"},
			{queue.QueueLimits{Rate: queue.Rate{Limit: 0, Period: time.Second}}, "Rate.Limit"},
			{queue.QueueLimits{Rate: queue.Rate{Limit: -5, Period: time.Second}}, "Rate.Limit"},
			{queue.QueueLimits{Rate: queue.Rate{Limit: 10}}, "Rate.Period"},
			{queue.QueueLimits{Rate: queue.Rate{Limit: 10, Period: -time.Second}}, "Rate.Period"},
			{queue.QueueLimits{Rate: queue.Rate{Limit: 10, Period: time.Microsecond}}, "Rate.Period"},
			{queue.QueueLimits{GlobalLimit: 1, PartitionBy: []string{""}}, "PartitionBy"},
			{queue.QueueLimits{GlobalLimit: 1, PartitionBy: []string{"merchant_id", ""}}, "PartitionBy"},
			{queue.QueueLimits{GlobalLimit: 1, PartitionBy: []string{"m", "m"}}, "PartitionBy"},
			{queue.QueueLimits{PartitionBy: []string{"merchant_id"}}, "PartitionBy"},
			{queue.QueueLimits{GlobalLimit: 1, Lookahead: -1}, "Lookahead"},
		} {
			cfg := limitedConfig(queue.NewWorkers(), "node", 1, tc.limits)
			_, err := queue.New(drv, cfg)
			var le *queue.LimitsError
			if !errors.As(err, &le) || le.Queue != "default" || le.Field != tc.field ||
				!errors.Is(err, queue.ErrInvalidLimits) || !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("queue.New with limits %+v = %v; want a *LimitsError for default's %s", tc.limits, err, tc.field)
			}
			_, err = workflow.NewEngine(drv, workflow.Config{Queue: cfg})
			if !errors.As(err, &le) || le.Field != tc.field {
				t.Errorf("workflow.NewEngine with limits %+v = %v; want a *LimitsError for %s", tc.limits, err, tc.field)
			}
		}
		if n := countRows(t, drv, "queue_limits"); n != 0 {
			t.Errorf("%d rows in queue_limits after refused configurations; want none", n)
		}
		// The zero value sets no limit, and limits that make sense are taken.
		for _, l := range []queue.QueueLimits{{}, {GlobalLimit: 1}, {Rate: queue.Rate{Limit: 1, Period: time.Millisecond}},
			{GlobalLimit: 3, Rate: queue.Rate{Limit: 100, Period: time.Hour}, PartitionBy: []string{"a", "b"}, Lookahead: 10}} {
			if _, err := queue.New(drv, limitedConfig(queue.NewWorkers(), "node", 1, l)); err != nil {
				t.Errorf("queue.New with limits %+v: %v", l, err)
			}
		}
	})
}

// TestWorkflowsUnderGlobalLimit: two engines work runs of two steps on a
// queue whose GlobalLimit is 1: every run succeeds (the limited fetch leases
// runs as the plain one does), and no more than one job of the queue is ever
// running.
func TestWorkflowsUnderGlobalLimit(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, first storage.Driver) {
		nodes := limitNodes(t, first, 2)
		type noArgs struct{}
		var executing, maxExecuting atomic.Int64
		step := func(ctx context.Context, sc *steps.Context[noArgs, noArgs]) error {
			n := executing.Add(1)
			defer executing.Add(-1)
			for m := maxExecuting.Load(); n > m && !maxExecuting.CompareAndSwap(m, n); m = maxExecuting.Load() {
			}
			return nil
		}
		limits := queue.QueueLimits{GlobalLimit: 1}
		engines := make([]*workflow.Engine, len(nodes))
		for i, drv := range nodes {
			wf := workflow.Define("limited", workflow.Options{}, steps.Do("one", step), steps.Do("two", step))
			e, err := workflow.NewEngine(drv, workflow.Config{Queue: limitedConfig(nil, fmt.Sprintf("node%d", i), 3, limits)})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Register(wf); err != nil {
				t.Fatal(err)
			}
			engines[i] = e
		}
		const runs = 20
		for i := range runs {
			if _, err := engines[0].Enqueue(ctxT(t), "limited", noArgs{}, workflow.EnqueueOptions{Key: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range engines {
			if err := e.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = e.Stop(ctx)
			})
		}
		drv := nodes[0]
		maxRunning := 0
		deadline := time.Now().Add(2 * time.Minute)
		for {
			running := testdb.QueryInt(t, drv, "SELECT count(*) FROM "+table(drv, "jobs")+" WHERE state = 'running'")
			succeeded := testdb.QueryInt(t, drv, "SELECT count(*) FROM "+table(drv, "runs")+" WHERE state = 'succeeded'")
			maxRunning = max(maxRunning, running)
			if succeeded == runs {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d runs succeeded", succeeded, runs)
			}
			time.Sleep(time.Millisecond)
		}
		if maxRunning > 1 || maxExecuting.Load() > 1 {
			t.Errorf("under a global limit of 1: up to %d jobs running, %d steps at once", maxRunning, maxExecuting.Load())
		}
	})
}
