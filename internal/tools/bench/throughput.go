package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

const (
	noopKind   = "bench.noop"
	stepsPerWF = 3
	// stall is how long a timed part may make no progress before the bench
	// gives up on it.
	stall = time.Minute
	// workflowRounds is how many interleaved baseline/workflow rounds one
	// run of scenarios 3 and 4 makes at each concurrency.
	workflowRounds = 3
)

// emptyArgs and emptyState are the types of the bench workflows.
type (
	emptyArgs  struct{}
	emptyState struct{}
)

// Scenario 1: Enqueue in a loop from as many goroutines as workers, and one
// EnqueueMany.
func (b *bench) enqueueScenario(ctx context.Context) error {
	c, err := b.inserter()
	if err != nil {
		return err
	}
	for _, w := range b.cfg.workers {
		var rates []float64
		for range b.cfg.runs {
			if err := b.reset(ctx); err != nil {
				return err
			}
			if err := b.warm(ctx, w+2); err != nil {
				return err
			}
			var next atomic.Int64
			n := int64(b.cfg.jobs)
			t0 := time.Now()
			err := parallel(w, func(int) error {
				for next.Add(1) <= n {
					if _, err := c.Enqueue(ctx, noopKind, nil, queue.EnqueueOptions{}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			rates = append(rates, float64(n)/time.Since(t0).Seconds())
		}
		b.tbl.add("1 enqueue", "Enqueue (one job per call)", w, median(rates), "jobs/s", nil, runsNote(b.cfg.runs))
		b.logf("enqueue: %d goroutines: %.0f jobs/s", w, median(rates))
	}

	params := make([]queue.EnqueueParams, b.cfg.manyBatch)
	for i := range params {
		params[i] = queue.EnqueueParams{Kind: noopKind}
	}
	var rates []float64
	for range b.cfg.runs {
		if err := b.reset(ctx); err != nil {
			return err
		}
		t0 := time.Now()
		jobs, err := c.EnqueueMany(ctx, params)
		if err != nil {
			return err
		}
		if len(jobs) != len(params) {
			return fmt.Errorf("EnqueueMany returned %d jobs, want %d", len(jobs), len(params))
		}
		rates = append(rates, float64(len(params))/time.Since(t0).Seconds())
	}
	b.tbl.add("1 enqueue", "EnqueueMany of "+strconv.Itoa(b.cfg.manyBatch)+" jobs", 1, median(rates), "jobs/s", nil, runsNote(b.cfg.runs))
	return nil
}

// Scenario 2: N trivial jobs enqueued, then worked to completion by one
// queue with MaxWorkers = the concurrency.
func (b *bench) jobsScenario(ctx context.Context) error {
	for _, w := range b.cfg.workers {
		var rates []float64
		var cpu cpuUse
		for range b.cfg.runs {
			rate, use, err := b.plainJobs(ctx, w, b.cfg.jobs)
			if err != nil {
				return err
			}
			rates, cpu = append(rates, rate), cpu.add(use)
		}
		var tg *target
		if w >= 16 {
			tg = atLeast(5000)
		}
		rate := median(rates)
		b.jobsPerSec[w] = rate
		client, server := cpu.per(b.cfg.jobs * b.cfg.runs)
		b.tbl.add("2 jobs", "enqueued, then worked to completion", w, rate, "jobs/s", tg,
			joinNotes(runsNote(b.cfg.runs), fmt.Sprintf("%d jobs", b.cfg.jobs))).withCPU(client, server, "job")
		b.logf("jobs: %d workers: %.0f jobs/s", w, rate)
	}
	return nil
}

// plainJobs times a client with w workers working n trivial jobs, from
// Start until Stop returned with every completion written.
func (b *bench) plainJobs(ctx context.Context, w, n int) (float64, cpuUse, error) {
	if err := b.reset(ctx); err != nil {
		return 0, cpuUse{}, err
	}
	if err := b.fillJobs(ctx, noopKind, n); err != nil {
		return 0, cpuUse{}, err
	}
	elapsed, cpu, err := b.workBatch(ctx, w, n)
	if err != nil {
		return 0, cpuUse{}, err
	}
	done, err := b.count(ctx, "SELECT count(*) FROM "+b.table("jobs")+" WHERE state = 'completed'")
	if err != nil {
		return 0, cpuUse{}, err
	}
	if done != n {
		return 0, cpuUse{}, fmt.Errorf("plain jobs: %d of %d completed", done, n)
	}
	return float64(n) / elapsed.Seconds(), cpu, nil
}

// runSet counts the distinct runs whose last step ran (a step may run again
// after a serialization failure).
type runSet struct {
	mu   sync.Mutex
	seen map[uuid.UUID]struct{}
	c    *counter
}

func newRunSet(goal int) *runSet {
	return &runSet{seen: make(map[uuid.UUID]struct{}, goal), c: newCounter(goal)}
}

func (s *runSet) add(id uuid.UUID) {
	s.mu.Lock()
	_, dup := s.seen[id]
	s.seen[id] = struct{}{}
	s.mu.Unlock()
	if !dup {
		s.c.add()
	}
}

// emptySteps defines a workflow of n empty steps; the last one reports its
// run to done.
func emptySteps(name string, n int, done *runSet) *workflow.Workflow[emptyArgs, emptyState] {
	list := make([]steps.Step[emptyArgs, emptyState], n)
	for i := range list {
		last := i == n-1
		list[i] = steps.Do("s"+strconv.Itoa(i+1), func(ctx context.Context, sc *steps.Context[emptyArgs, emptyState]) error {
			if last {
				done.add(sc.RunID())
			}
			return nil
		})
	}
	return workflow.Define(name, workflow.Options{}, list...)
}

func (b *bench) newEngine(workers int, qcfg func(*workflow.Config), defs ...workflow.Definition) (*workflow.Engine, error) {
	cfg := workflow.Config{Queue: b.queueConfig(nil, workers), Logger: b.logger}
	if qcfg != nil {
		qcfg(&cfg)
	}
	e, err := workflow.NewEngine(b.drv, cfg)
	if err != nil {
		return nil, err
	}
	return e, e.Register(defs...)
}

// Scenarios 3 and 4, interleaved so that both see the machine in the same
// state (other processes, the disk's cache): at each concurrency, rounds of
// a baseline batch (raw SERIALIZABLE transactions, as many as the round's
// runs have steps) followed by a batch of runs of a workflow of three empty
// steps. The figures are medians over the rounds; the efficiency is the
// median of the rounds' own ratios.
func (b *bench) workflowScenario(ctx context.Context) error {
	doWF, doBase := b.cfg.has("workflows"), b.cfg.has("baseline")
	if doBase {
		if err := b.createBaselineTable(ctx); err != nil {
			return err
		}
	}
	rounds := b.cfg.runs * workflowRounds
	if b.cfg.quick {
		rounds = b.cfg.runs
	}
	perRound := max(1, b.cfg.workflows/rounds)
	note := ""
	if rounds > 1 {
		note = fmt.Sprintf("median of %d rounds", rounds)
	}
	for _, w := range b.cfg.workers {
		var runRates, txRates, ratios, wfRetries, baseRetries []float64
		var wfCPU, baseCPU cpuUse
		for range rounds {
			var txRate, runRate float64
			if doBase {
				rate, retries, cpu, err := b.baseline(ctx, w, stepsPerWF*perRound)
				if err != nil {
					return fmt.Errorf("baseline: %w", err)
				}
				txRate = rate
				txRates, baseRetries = append(txRates, rate), append(baseRetries, retries)
				baseCPU = baseCPU.add(cpu)
			}
			if doWF {
				rate, retries, cpu, err := b.workflowRuns(ctx, w, perRound)
				if err != nil {
					return err
				}
				runRate = rate
				runRates, wfRetries = append(runRates, rate), append(wfRetries, retries)
				wfCPU = wfCPU.add(cpu)
			}
			if doWF && doBase {
				ratios = append(ratios, stepsPerWF*runRate/txRate)
			}
		}
		if doWF {
			b.runsPerSec[w] = median(runRates)
			n := fmt.Sprintf("%d runs", perRound*rounds)
			b.tbl.add("3 workflows", "runs of 3 empty steps", w, median(runRates), "runs/s", nil, joinNotes(note, n))
			client, server := wfCPU.per(stepsPerWF * perRound * rounds)
			b.tbl.add("3 workflows", "steps of those runs", w, stepsPerWF*median(runRates), "steps/s", nil,
				joinNotes(retriesNote(median(wfRetries)))).withCPU(client, server, "step")
		}
		if doBase {
			client, server := baseCPU.per(stepsPerWF * perRound * rounds)
			b.tbl.add("4 baseline", b.baselineFigure(), w, median(txRates), "tx/s", nil,
				joinNotes(note, fmt.Sprintf("%d tx", stepsPerWF*perRound*rounds), retriesNote(median(baseRetries)))).withCPU(client, server, "tx")
		}
		if doWF && doBase {
			var tg *target
			if w >= 4 {
				tg = b.efficiencyTarget()
			}
			b.tbl.add("4 baseline", "efficiency: steps/s ÷ tx/s", w, median(ratios), "ratio", tg, note)
		}
		b.logf("workflows: %d workers: %.0f steps/s, baseline %.0f tx/s", w, stepsPerWF*median(runRates), median(txRates))
	}
	return nil
}

// workflowRuns times an engine with w workers executing n runs of three
// empty steps, enqueued beforehand, from Start until Stop returned. It
// returns runs/s, serialization retries per run and the CPU used.
func (b *bench) workflowRuns(ctx context.Context, w, n int) (float64, float64, cpuUse, error) {
	if err := b.reset(ctx); err != nil {
		return 0, 0, cpuUse{}, err
	}
	done := newRunSet(n)
	wf := emptySteps("bench.3steps", stepsPerWF, done)
	e, err := b.newEngine(w, nil, wf)
	if err != nil {
		return 0, 0, cpuUse{}, err
	}
	if err := b.enqueueRuns(ctx, e, wf.Name(), n, 4, 500); err != nil {
		return 0, 0, cpuUse{}, err
	}
	if err := b.warm(ctx, w+4); err != nil {
		return 0, 0, cpuUse{}, err
	}
	retries := b.drv.Stats().TxRetries
	cpu0 := b.cpuSnapshot(ctx)
	t0 := time.Now()
	if err := e.Start(ctx); err != nil {
		return 0, 0, cpuUse{}, err
	}
	err = waitFor(ctx, done.c.done, done.c.load, stall, "workflow runs finished")
	if stopErr := stopClient(ctx, e.Stop); err == nil && stopErr != nil {
		err = fmt.Errorf("stop: %w", stopErr)
	}
	elapsed := time.Since(t0)
	cpu := b.cpuSnapshot(ctx).since(cpu0)
	if err != nil {
		return 0, 0, cpuUse{}, err
	}
	ok, err := b.count(ctx, "SELECT count(*) FROM "+b.table("runs")+" WHERE state = 'succeeded'")
	if err != nil {
		return 0, 0, cpuUse{}, err
	}
	if ok != n {
		return 0, 0, cpuUse{}, fmt.Errorf("workflows: %d of %d runs succeeded", ok, n)
	}
	return float64(n) / elapsed.Seconds(), float64(b.drv.Stats().TxRetries-retries) / float64(n), cpu, nil
}

// baseline runs n baseline transactions (see RunBaseline) from g
// goroutines and returns tx/s and retries per tx.
func (b *bench) baseline(ctx context.Context, g, n int) (float64, float64, cpuUse, error) {
	if err := b.warm(ctx, g); err != nil {
		return 0, 0, cpuUse{}, err
	}
	cpu0 := b.cpuSnapshot(ctx)
	t0 := time.Now()
	var retries int64
	var err error
	if b.lite != nil {
		err = b.lite.runBaseline(ctx, g, n)
	} else {
		retries, err = RunBaseline(ctx, b.pool, b.table("bench_rows"), g, n)
	}
	elapsed := time.Since(t0)
	cpu := b.cpuSnapshot(ctx).since(cpu0)
	if err != nil {
		return 0, 0, cpuUse{}, err
	}
	return float64(n) / elapsed.Seconds(), float64(retries) / float64(n), cpu, nil
}

// createBaselineTable (re)creates the rows the baseline updates.
func (b *bench) createBaselineTable(ctx context.Context) error {
	if b.lite != nil {
		return b.lite.createBaselineTable(ctx, b.cfg.maxWorkers())
	}
	return CreateBaselineTable(ctx, b.pool, b.table("bench_rows"), b.cfg.maxWorkers())
}

// baselineFigure names the baseline's transactions in the table.
func (b *bench) baselineFigure() string {
	if b.lite != nil {
		return "raw BEGIN IMMEDIATE; 1-row UPDATE; COMMIT"
	}
	return "raw SERIALIZABLE 1-row-update tx"
}

// efficiencyTarget is the goal of steps/s ÷ baseline tx/s: 0.6 against
// PostgreSQL's SERIALIZABLE transactions (issue 5), 0.8 against SQLite's
// (issue 15).
func (b *bench) efficiencyTarget() *target {
	if b.lite != nil {
		return atLeast(0.8)
	}
	return atLeast(0.6)
}

func runsNote(runs int) string {
	if runs <= 1 {
		return ""
	}
	return "median of " + strconv.Itoa(runs)
}

func retriesNote(perOp float64) string {
	if perOp == 0 {
		return ""
	}
	return fmt.Sprintf("%.3f retries/op", perOp)
}
