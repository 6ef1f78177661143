package sqlite_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
	"github.com/acidic-go/acidic/workflow"
)

// Whole-engine figures on the SQLite driver, for issue 15's targets (the
// acidic bench command measures the same on either driver):
//
//	go test -run '^$' -bench Engine -benchtime 20x ./storage/sqlite/

type emptyArgs struct{}
type emptyState struct{}

// emptySteps defines a workflow of n empty steps counting finished runs.
func emptySteps(name string, n int, done *atomic.Int64) *workflow.Workflow[emptyArgs, emptyState] {
	list := make([]steps.Step[emptyArgs, emptyState], n)
	for i := range list {
		last := i == n-1
		list[i] = steps.Do("s"+strconv.Itoa(i+1), func(context.Context, *steps.Context[emptyArgs, emptyState]) error {
			if last {
				done.Add(1)
			}
			return nil
		})
	}
	return workflow.Define(name, workflow.Options{}, list...)
}

func quietEngine(b *testing.B, drv storage.Driver, workers int, defs ...workflow.Definition) *workflow.Engine {
	b.Helper()
	e, err := workflow.NewEngine(drv, workflow.Config{Queue: queue.Config{
		Queues: map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: workers}}, Logger: discard()},
		Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Register(defs...); err != nil {
		b.Fatal(err)
	}
	return e
}

// enqueueRuns enqueues n runs of workflow name in transactions of perTx.
func enqueueRuns(b *testing.B, drv storage.Driver, e *workflow.Engine, name string, n, perTx int) {
	b.Helper()
	ctx := context.Background()
	for done := 0; done < n; done += perTx {
		err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			for range min(perTx, n-done) {
				if _, err := e.EnqueueTx(ctx, tx, name, emptyArgs{}, workflow.EnqueueOptions{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func waitCount(b *testing.B, c *atomic.Int64, n int64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for c.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d runs finished", c.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkEngineSteps alternates rounds of raw baseline transactions and of
// runs of three empty steps worked by an engine (enqueued beforehand, timed
// from Start to the last run's end), on one file, and reports the median of
// the rounds' steps/s ÷ tx/s (issue 15: ≥ 0.8). One iteration is one round.
func BenchmarkEngineSteps(b *testing.B) {
	drv, path := benchFile(b)
	raw := openRaw(b, path)
	const runs, stepsPerRun, workers = 50, 3, 4
	var done atomic.Int64
	wf := emptySteps("bench.3steps", stepsPerRun, &done)
	var txRates, stepRates, ratios []float64
	ctx := context.Background()
	for range b.N {
		start := time.Now()
		for range runs * stepsPerRun {
			raw.tx(b)
		}
		txRate := runs * stepsPerRun / time.Since(start).Seconds()

		e := quietEngine(b, drv, workers, wf)
		enqueueRuns(b, drv, e, wf.Name(), runs, runs)
		target := done.Load() + runs
		start = time.Now()
		if err := e.Start(ctx); err != nil {
			b.Fatal(err)
		}
		waitCount(b, &done, target)
		if err := e.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		stepRate := runs * stepsPerRun / time.Since(start).Seconds()
		txRates, stepRates, ratios = append(txRates, txRate), append(stepRates, stepRate), append(ratios, stepRate/txRate)
	}
	b.ReportMetric(median(txRates), "tx/s")
	b.ReportMetric(median(stepRates), "steps/s")
	b.ReportMetric(median(ratios), "steps/tx")
	b.ReportMetric(float64(drv.Stats().TxRetries), "retries")
	b.ReportMetric(float64(sqlite.Members(drv))/float64(max(sqlite.Groups(drv), 1)), "tx/commit")
}

// BenchmarkEngineIdleEnqueueToStart enqueues jobs one at a time on an idle
// queue client (polling every 10s: only the in-process notification can
// wake it in time) and reports the percentiles from Enqueue returning to the
// work function starting (issue 15: p50 ≤ 5 ms).
func BenchmarkEngineIdleEnqueueToStart(b *testing.B) {
	drv, _ := benchFile(b)
	started := make(chan int64, 16)
	ws := queue.NewWorkers()
	if err := ws.Handle("probe", func(_ context.Context, job *acidic.Job) error {
		started <- job.ID
		return nil
	}, queue.KindOptions{}); err != nil {
		b.Fatal(err)
	}
	c, err := queue.New(drv, queue.Config{Workers: ws, PollInterval: 10 * time.Second, Logger: discard(),
		Queues: map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 4}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	await := func(id int64) time.Time {
		timeout := time.After(15 * time.Second)
		for {
			select {
			case got := <-started:
				if got == id {
					return time.Now()
				}
			case <-timeout:
				b.Fatalf("job %d did not start", id)
			}
		}
	}
	sample := func() time.Duration {
		job, err := c.Enqueue(ctx, "probe", nil, queue.EnqueueOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		return await(job.ID).Sub(t0)
	}
	time.Sleep(100 * time.Millisecond) // the listener is up
	for range 5 {
		sample()
	}
	var lat []float64
	b.ResetTimer()
	for range b.N {
		time.Sleep(20 * time.Millisecond) // idle again
		lat = append(lat, float64(sample().Microseconds())/1000)
	}
	b.ReportMetric(percentile(lat, 50), "p50-ms")
	b.ReportMetric(percentile(lat, 99), "p99-ms")
}

// BenchmarkEngineMemory reports the process's peak RSS while 100,000 runs
// of one empty step are enqueued (queued: the engine is not started) and
// then worked by an engine of 4 workers (issue 15: ≤ 64 MiB). Run it alone,
// with -benchtime 1x: the peak is the test process's.
func BenchmarkEngineMemory(b *testing.B) {
	const n = 100_000
	for range b.N {
		drv, _ := benchFile(b)
		var done atomic.Int64
		wf := emptySteps("bench.memory", 1, &done)
		e := quietEngine(b, drv, 4, wf)
		runtime.GC()
		rss0 := procKiB("VmRSS")
		start := time.Now()
		enqueueRuns(b, drv, e, wf.Name(), n, 1000)
		queued := procKiB("VmRSS")
		enqueued := time.Since(start)
		if err := e.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		waitCount(b, &done, n)
		if err := e.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rss0)/1024, "rss-start-MiB")
		b.ReportMetric(float64(queued)/1024, "rss-queued-MiB")
		b.ReportMetric(float64(procKiB("VmHWM"))/1024, "rss-peak-MiB")
		b.ReportMetric(n/enqueued.Seconds(), "enqueued-runs/s")
		b.ReportMetric(n/time.Since(start.Add(enqueued)).Seconds(), "worked-runs/s")
	}
}

// procKiB reads a field of /proc/self/status, in KiB; 0 where there is none.
func procKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func percentile(xs []float64, p float64) float64 {
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// BenchmarkEngineEnqueue enqueues runs of a workflow in transactions of
// 1,000 (the engine is not started); one iteration is one run.
func BenchmarkEngineEnqueue(b *testing.B) {
	drv, _ := benchFile(b)
	var done atomic.Int64
	wf := emptySteps("bench.enqueue", 1, &done)
	e := quietEngine(b, drv, 1, wf)
	b.ResetTimer()
	enqueueRuns(b, drv, e, wf.Name(), b.N, 1000)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
}
