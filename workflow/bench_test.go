package workflow_test

// Benchmarks against the real test database (see internal/testdb). Run with
//
//	go test -run '^$' -bench . -benchtime 2000x ./workflow/
//
// BenchmarkRawSerializableTx is the baseline the engine is compared against:
// a SERIALIZABLE transaction that updates one row, written with pgx as an
// application would (bench.RunBaseline, also behind `acidic bench`). Steps/s of BenchmarkWorkflow3EmptySteps divided by its tx/s at
// the same concurrency is the engine's efficiency. Compare figures of one
// run of the binary: the machine's load moves both.

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/bench"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

type benchArgs struct{}

type benchState struct {
	N int `json:"n"`
}

type benchStep = steps.Step[benchArgs, benchState]

func benchLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func benchDriver(b *testing.B) *postgres.Driver {
	b.Helper()
	return testdb.New(b, testdb.Options{MaxConns: 40})
}

func benchEngineConfig(workers int) workflow.Config {
	return workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: workers}},
			PollInterval:        50 * time.Millisecond,
			RescueAfter:         time.Hour,
			MaintenanceInterval: time.Hour,
		},
		Logger: benchLogger(),
	}
}

func benchNewEngine(b *testing.B, drv storage.Driver, workers int, defs ...workflow.Definition) *workflow.Engine {
	b.Helper()
	e, err := workflow.NewEngine(drv, benchEngineConfig(workers))
	if err != nil {
		b.Fatalf("NewEngine: %v", err)
	}
	if err := e.Register(defs...); err != nil {
		b.Fatalf("Register: %v", err)
	}
	return e
}

func benchStopEngine(b *testing.B, e *workflow.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		b.Fatalf("Stop: %v", err)
	}
}

// benchEnqueueRuns enqueues n runs of wf from a few goroutines.
func benchEnqueueRuns(b *testing.B, e *workflow.Engine, wf string, args any, n int) {
	b.Helper()
	const enqueuers = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, enqueuers)
	for range enqueuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := e.Enqueue(context.Background(), wf, args, workflow.EnqueueOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("Enqueue: %v", err)
	}
}

// benchWaitSucceeded waits until n runs succeeded: first for the last step to
// have run n times (an atomic, no queries), then polls the runs table until
// the commits are visible.
func benchWaitSucceeded(b *testing.B, drv *postgres.Driver, lastRan *atomic.Int64, n int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for lastRan.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("last step ran %d times, want %d", lastRan.Load(), n)
		}
		time.Sleep(500 * time.Microsecond)
	}
	q := "SELECT count(*) FROM " + table(drv, "runs") + " WHERE state = 'succeeded'"
	for {
		var done int
		if err := drv.Pool().QueryRow(context.Background(), q).Scan(&done); err != nil {
			b.Fatalf("count runs: %v", err)
		}
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d runs succeeded", done, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func reportRate(b *testing.B, n int, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, unit)
	}
}

// BenchmarkWorkflow3EmptySteps: one op is one run of a workflow of three
// empty steps, from the job fetch to the run's last commit. The runs are
// enqueued before the timer starts.
func BenchmarkWorkflow3EmptySteps(b *testing.B) {
	for _, workers := range []int{1, 4, 8, 16} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			benchWorkflowSteps(b, workers, 3, b.N)
			reportRate(b, b.N, "runs/s")
			reportRate(b, 3*b.N, "steps/s")
		})
	}
}

// benchWorkflowSteps times runs runs of a workflow of nSteps empty steps.
func benchWorkflowSteps(b *testing.B, workers, nSteps, runs int) {
	drv := benchDriver(b)
	var lastRan atomic.Int64
	list := make([]benchStep, nSteps)
	for i := range list {
		last := i == nSteps-1
		list[i] = steps.Do("s"+strconv.Itoa(i), func(ctx context.Context, sc *steps.Context[benchArgs, benchState]) error {
			if last {
				lastRan.Add(1)
			}
			return nil
		})
	}
	wf := workflow.Define("bench", workflow.Options{}, list...)
	e := benchNewEngine(b, drv, workers, wf)
	benchEnqueueRuns(b, e, "bench", benchArgs{}, runs)
	retries := drv.Stats().TxRetries
	testdb.WarmPool(b, drv.Pool(), workers+4)
	testdb.WarnOldSnapshots(b, drv.Pool())

	b.ReportAllocs()
	b.ResetTimer()
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	benchWaitSucceeded(b, drv, &lastRan, runs)
	b.StopTimer()
	b.ReportMetric(float64(drv.Stats().TxRetries-retries)/float64(b.N), "txretries/op")
	benchStopEngine(b, e)
}

// BenchmarkStepCommit isolates the cost of one step transaction: one op is
// one empty step, run by a single worker, so there is no contention.
//
// "50steps" runs workflows of 50 distinct empty steps (a run lease and a job
// fetch/complete every 50 steps; use a benchtime that is a multiple of 50).
// "repeat" is a single run whose one step repeats b.N times: nothing but
// step transactions, each updating the run and its step log row.
func BenchmarkStepCommit(b *testing.B) {
	b.Run("50steps", func(b *testing.B) {
		const perRun = 50
		runs := (b.N + perRun - 1) / perRun
		benchWorkflowSteps(b, 1, perRun, runs)
		reportRate(b, runs*perRun, "steps/s")
	})
	b.Run("repeat", func(b *testing.B) {
		drv := benchDriver(b)
		var lastRan atomic.Int64
		target := b.N
		wf := workflow.Define("repeat", workflow.Options{},
			steps.Do("loop", func(ctx context.Context, sc *steps.Context[benchArgs, benchState]) error {
				sc.State.N++
				if sc.State.N < target {
					return steps.Repeat()
				}
				lastRan.Add(1)
				return nil
			}))
		e := benchNewEngine(b, drv, 1, wf)
		benchEnqueueRuns(b, e, "repeat", benchArgs{}, 1)
		testdb.WarmPool(b, drv.Pool(), 5)
		testdb.WarnOldSnapshots(b, drv.Pool())
		retries := drv.Stats().TxRetries
		b.ReportAllocs()
		b.ResetTimer()
		if err := e.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		benchWaitSucceeded(b, drv, &lastRan, 1)
		b.StopTimer()
		reportRate(b, b.N, "steps/s")
		b.ReportMetric(float64(drv.Stats().TxRetries-retries)/float64(b.N), "txretries/op")
		benchStopEngine(b, e)
	})
}

// BenchmarkRawSerializableTx is the baseline: with pgx alone, SERIALIZABLE
// transactions that each update one row (every goroutine its own row) and
// commit: BEGIN, UPDATE, COMMIT, the same three round trips as a step.
func BenchmarkRawSerializableTx(b *testing.B) {
	for _, g := range []int{1, 4, 16} {
		b.Run("goroutines="+strconv.Itoa(g), func(b *testing.B) {
			benchRawSerializableTx(b, g)
		})
	}
}

func benchRawSerializableTx(b *testing.B, goroutines int) {
	drv := benchDriver(b)
	ctx := context.Background()
	tbl := table(drv, "bench_rows")
	if err := bench.CreateBaselineTable(ctx, drv.Pool(), tbl, goroutines); err != nil {
		b.Fatal(err)
	}
	testdb.WarmPool(b, drv.Pool(), goroutines)
	testdb.WarnOldSnapshots(b, drv.Pool())
	b.ReportAllocs()
	b.ResetTimer()
	retries, err := bench.RunBaseline(ctx, drv.Pool(), tbl, goroutines, b.N)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N, "tx/s")
	b.ReportMetric(float64(retries)/float64(b.N), "retries/op")
}
