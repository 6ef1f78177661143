package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

const mib = 1 << 20

// memorySteps is the length of the memory scenario's workflow. One empty
// step exercises the whole path of a run (fetch, lease, step transaction,
// completion) while keeping 100,000 runs inside the time budget.
const memorySteps = 1

// memSampler keeps the peaks of the Go heap and the process RSS, sampled
// every 50ms.
type memSampler struct {
	heap, rss atomic.Uint64
	stop      chan struct{}
	done      chan struct{}
}

func startMemSampler() *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *memSampler) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapAlloc > s.heap.Load() {
		s.heap.Store(m.HeapAlloc)
	}
	if rss, ok := procStatus("VmRSS"); ok && rss > s.rss.Load() {
		s.rss.Store(rss)
	}
}

func (s *memSampler) finish() {
	close(s.stop)
	<-s.done
}

// Scenario 6: peak RSS and Go heap of the process while memory-runs runs are
// enqueued (in transactions of 1,000, from two goroutines) and worked by an
// engine with the highest concurrency, from before the first enqueue to the
// last run's completion.
func (b *bench) memoryScenario(ctx context.Context) error {
	if err := b.reset(ctx); err != nil {
		return err
	}
	w, n := b.cfg.maxWorkers(), b.cfg.memoryRuns
	var finished atomic.Int64
	list := make([]steps.Step[emptyArgs, emptyState], memorySteps)
	for i := range list {
		last := i == memorySteps-1
		list[i] = steps.Do("s"+strconv.Itoa(i+1), func(context.Context, *steps.Context[emptyArgs, emptyState]) error {
			if last {
				finished.Add(1)
			}
			return nil
		})
	}
	wf := workflow.Define("bench.memory", workflow.Options{}, list...)
	e, err := b.newEngine(w, nil, wf)
	if err != nil {
		return err
	}

	// Start from what the process needs now, not what earlier scenarios
	// left behind.
	runtime.GC()
	debug.FreeOSMemory()
	hwmReset := resetPeakRSS()
	rss0, _ := procStatus("VmRSS")
	sampler := startMemSampler()
	t0 := time.Now()

	if err := e.Start(ctx); err != nil {
		sampler.finish()
		return err
	}
	err = b.enqueueRuns(ctx, e, wf.Name(), n, 2, 1000)
	enqueued := time.Since(t0)
	if err == nil {
		// The step counter may run ahead of the commits (and count a
		// retried step twice): wait for it, then for the database.
		err = waitUntil(ctx, func() bool { return finished.Load() >= int64(n) }, finished.Load, "memory runs finished")
	}
	if err == nil {
		q := "SELECT count(*) FROM " + b.table("runs") + " WHERE state = 'succeeded'"
		var ok atomic.Int64
		err = waitUntil(ctx, func() bool {
			c, _ := b.count(ctx, q)
			ok.Store(int64(c))
			return c >= n
		}, ok.Load, "memory runs committed")
	}
	if stopErr := stopClient(ctx, e.Stop); err == nil && stopErr != nil {
		err = fmt.Errorf("stop: %w", stopErr)
	}
	elapsed := time.Since(t0)
	sampler.finish()
	if err != nil {
		return err
	}

	peakRSS := sampler.rss.Load()
	if hwmReset {
		if hwm, ok := procStatus("VmHWM"); ok {
			peakRSS = max(peakRSS, hwm)
		}
	}
	note := fmt.Sprintf("%d runs, %d workers; RSS at start %.1f MiB", n, w, float64(rss0)/mib)
	if !hwmReset {
		note += "; sampled every 50ms (VmHWM could not be reset)"
	}
	b.tbl.add("6 memory", "peak RSS", w, float64(peakRSS)/mib, "MiB", atMost(64), note)
	b.tbl.add("6 memory", "peak Go heap (HeapAlloc, sampled every 50ms)", w, float64(sampler.heap.Load())/mib, "MiB", nil, "")
	b.tbl.add("6 memory", fmt.Sprintf("runs of %d empty step enqueued and worked", memorySteps), w, float64(n)/elapsed.Seconds(), "runs/s",
		nil, fmt.Sprintf("enqueued in %.1fs, all done in %.1fs", enqueued.Seconds(), elapsed.Seconds()))
	b.logf("memory: peak RSS %.1f MiB, heap %.1f MiB, %d runs in %s", float64(peakRSS)/mib, float64(sampler.heap.Load())/mib, n, elapsed.Round(time.Second))
	return nil
}
