package sqlite_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEngineCPU alternates rounds of raw baseline transactions and of
// engine runs of three empty steps, as BenchmarkEngineSteps does, with the
// same number of goroutines on each side (the raw ones take turns on one
// connection, as the driver's writers take turns on its writer, and as
// acidic bench's baseline does), and reports per round the process's CPU
// (getrusage: user + system, SQLite and the kernel's sync included) per raw
// transaction and per step, and the medians of the rounds' ratios. One
// iteration is one round:
//
//	go test -run '^$' -bench EngineCPU -benchtime 15x ./storage/sqlite/
func BenchmarkEngineCPU(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) { engineCPU(b, workers) })
	}
}

// cpuTime is the process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func engineCPU(b *testing.B, workers int) {
	drv, path := benchFile(b)
	raw := openRaw(b, path)
	const runs, stepsPerRun = 100, 3
	const n = runs * stepsPerRun
	var done atomic.Int64
	wf := emptySteps("bench.cpu", stepsPerRun, &done)
	var mu sync.Mutex
	var txCPU, stepCPU, cpuRatios, rateRatios []float64
	ctx := context.Background()
	for range b.N {
		var next atomic.Int64
		var wg sync.WaitGroup
		cpu0, start := cpuTime(), time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= n {
					mu.Lock()
					raw.tx(b)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		txRate, txc := n/time.Since(start).Seconds(), float64((cpuTime()-cpu0).Microseconds())/n

		e := quietEngine(b, drv, workers, wf)
		enqueueRuns(b, drv, e, wf.Name(), runs, runs)
		target := done.Load() + runs
		cpu0, start = cpuTime(), time.Now()
		if err := e.Start(ctx); err != nil {
			b.Fatal(err)
		}
		waitCount(b, &done, target)
		if err := e.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		stepRate, stc := n/time.Since(start).Seconds(), float64((cpuTime()-cpu0).Microseconds())/n
		txCPU, stepCPU = append(txCPU, txc), append(stepCPU, stc)
		cpuRatios, rateRatios = append(cpuRatios, stc/txc), append(rateRatios, stepRate/txRate)
	}
	b.ReportMetric(median(txCPU), "cpu-µs/tx")
	b.ReportMetric(median(stepCPU), "cpu-µs/step")
	b.ReportMetric(median(cpuRatios), "cpu-step/tx")
	b.ReportMetric(median(rateRatios), "steps/tx")
}
