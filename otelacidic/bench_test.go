package otelacidic_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/otelacidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// benchInst is the instrumentation of the "on" side of the cost
// benchmarks: every span sampled and exported to a no-op exporter through
// the SDK's batcher, every metric recorded into a manual reader (collected
// at the end, as a scrape would), the store gauges registered.
func benchInst(b *testing.B, mode string) (*otelacidic.Instrumentation, trace.Tracer, *sdkmetric.ManualReader) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(tracetest.NewNoopExporter())}
	if mode == "onsync" {
		opts = []sdktrace.TracerProviderOption{sdktrace.WithSyncer(tracetest.NewNoopExporter())}
	}
	if mode == "sampled" {
		// The requests are sampled at 1%: all but one in a hundred
		// benchmarks see an unsampled request.
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	inst, err := otelacidic.New(otelacidic.Config{TracerProvider: tp, MeterProvider: mp,
		DisableTraces: mode == "metrics", DisableMetrics: mode == "traces"})
	if err != nil {
		b.Fatal(err)
	}
	return inst, tp.Tracer("bench"), reader
}

func benchLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func benchCount(b *testing.B, drv *postgres.Driver, sql string) int {
	var n int
	if err := drv.Pool().QueryRow(context.Background(), sql).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkJobsObserved works b.N empty jobs with 8 workers, with the
// OpenTelemetry instrumentation off and on (see benchInst); jobs enqueued
// under a span, so every job carries a trace context in its Meta. Besides
// "traces" and "metrics" (one half on), three sides take the cost apart:
// "onsync" hands each span to the no-op exporter on End (WithSyncer: no
// batcher), "nometa" enqueues with no request span (root spans, no trace
// context in Meta), "metaonly" has the enqueue hook alone (Meta carries
// the trace context, the worker does nothing with it). Beyond the CPU per
// job: the bytes allocated per job and the GC cycles of the work, and the
// jobs each fetch claimed.
func BenchmarkJobsObserved(b *testing.B) {
	for _, mode := range []string{"off", "traces", "metrics", "on", "sampled", "onsync", "nometa", "metaonly"} {
		b.Run(mode, func(b *testing.B) { benchJobs(b, mode) })
	}
}

func benchJobs(b *testing.B, mode string) {
	on := mode != "off"
	drv := testdb.New(b, testdb.Options{MaxConns: 20})
	ctx := context.Background()
	n := int64(b.N)
	var worked atomic.Int64
	all := make(chan struct{})
	ws := queue.NewWorkers()
	_ = ws.Handle("noop", func(ctx context.Context, job *acidic.Job) error {
		if worked.Add(1) == n {
			close(all)
		}
		return nil
	}, queue.KindOptions{})
	cfg := queue.Config{Workers: ws, Logger: benchLogger(), Queues: map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 8}},
		PollInterval: 50 * time.Millisecond, RescueAfter: time.Hour, MaintenanceInterval: time.Hour}
	var reader *sdkmetric.ManualReader
	var inst *otelacidic.Instrumentation
	if on {
		var tr trace.Tracer
		inst, tr, reader = benchInst(b, mode)
		if mode == "metaonly" {
			cfg.EnqueueHooks = append(cfg.EnqueueHooks, inst.EnqueueHook)
		} else {
			inst.ConfigureQueue(&cfg)
		}
		if mode != "nometa" {
			var span trace.Span
			ctx, span = tr.Start(ctx, "request")
			defer span.End()
		}
	}
	fetching := &fetchCounter{Driver: drv}
	c, err := queue.New(fetching, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if on && mode != "metaonly" {
		stop, err := inst.Observe(c.Events(), drv)
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
	}
	for i := 0; i < b.N; i += 1000 {
		ps := make([]queue.EnqueueParams, min(1000, b.N-i))
		for k := range ps {
			ps[k] = queue.EnqueueParams{Kind: "noop"}
		}
		if _, err := c.EnqueueMany(ctx, ps); err != nil {
			b.Fatal(err)
		}
	}
	done := "SELECT count(*) FROM " + table(drv, "jobs") + " WHERE state = 'completed'"
	b.ResetTimer()
	stopProfile := profileWork(b, "jobs-"+mode)
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := cpuTime()
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d jobs worked", worked.Load(), n)
	}
	for benchCount(b, drv, done) < b.N {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	stopProfile()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/job")
	b.ReportMetric(float64(b.N)/float64(fetching.fetches.Load()), "jobs/fetch")
	runtime.ReadMemStats(&mem1)
	b.ReportMetric(float64(mem1.TotalAlloc-mem0.TotalAlloc)/float64(b.N), "alloc-B/job")
	b.ReportMetric(float64(mem1.NumGC-mem0.NumGC), "GCs")
	if reader != nil {
		if err := reader.Collect(context.Background(), new(metricdata.ResourceMetrics)); err != nil {
			b.Fatal(err)
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.Stop(stopCtx)
}

// BenchmarkStepsObserved runs b.N/3 workflow runs of three empty steps
// with 8 workers, instrumentation off and on; ns/op is per step.
func BenchmarkStepsObserved(b *testing.B) {
	for _, mode := range []string{"off", "traces", "metrics", "on", "sampled"} {
		b.Run(mode, func(b *testing.B) { benchSteps(b, mode) })
	}
}

func benchSteps(b *testing.B, mode string) {
	on := mode != "off"
	drv := testdb.New(b, testdb.Options{MaxConns: 20})
	ctx := context.Background()
	runs := max(b.N/3, 1)
	empty := func(name string) steps.Step[args, state] {
		return steps.Do(name, func(ctx context.Context, sc *steps.Context[args, state]) error { return nil })
	}
	wf := workflow.Define("bench3", workflow.Options{}, empty("a"), empty("b"), empty("c"))
	cfg := workflow.Config{Logger: benchLogger(), Queue: queue.Config{Queues: map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 8}},
		PollInterval: 50 * time.Millisecond, RescueAfter: time.Hour, MaintenanceInterval: time.Hour}}
	var reader *sdkmetric.ManualReader
	var inst *otelacidic.Instrumentation
	if on {
		var tr trace.Tracer
		inst, tr, reader = benchInst(b, mode)
		inst.Configure(&cfg)
		var span trace.Span
		ctx, span = tr.Start(ctx, "request")
		defer span.End()
	}
	e, err := workflow.NewEngine(drv, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Register(wf); err != nil {
		b.Fatal(err)
	}
	if on {
		stop, err := inst.Observe(e.Events(), drv)
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
	}
	for i := range runs {
		if _, err := e.Enqueue(ctx, "bench3", args{N: i}, workflow.EnqueueOptions{Key: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	done := "SELECT count(*) FROM " + table(drv, "runs") + " WHERE state = 'succeeded'"
	b.ResetTimer()
	stopProfile := profileWork(b, "steps-"+mode)
	cpu0 := cpuTime()
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for benchCount(b, drv, done) < runs {
		if time.Now().After(deadline) {
			b.Fatal("runs did not finish")
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	stopProfile()
	b.ReportMetric(float64(runs*3)/b.Elapsed().Seconds(), "steps/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(runs*3), "cpu-µs/step")
	if reader != nil {
		if err := reader.Collect(context.Background(), new(metricdata.ResourceMetrics)); err != nil {
			b.Fatal(err)
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = e.Stop(stopCtx)
}

// profileWork writes a CPU profile of the work alone (not the enqueueing
// before it) to $OTELACIDIC_BENCH_PROFILE/NAME.pprof when that variable
// names a directory: compare the sides with pprof -diff_base. It returns
// the function that stops the profile.
func profileWork(b *testing.B, name string) func() {
	dir := os.Getenv("OTELACIDIC_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// fetchCounter is the driver, counting the fetches that claimed jobs:
// jobs/fetch shows how many jobs a fetch's round trip carries, which the
// work's own length changes (a slower attempt frees its slot later).
type fetchCounter struct {
	*postgres.Driver
	fetches atomic.Int64
}

func (d *fetchCounter) JobFetch(ctx context.Context, p storage.JobFetchParams) ([]storage.FetchedJob, error) {
	jobs, err := d.Driver.JobFetch(ctx, p)
	if len(jobs) > 0 {
		d.fetches.Add(1)
	}
	return jobs, err
}

func table(drv *postgres.Driver, name string) string { return drv.Schema() + "." + name }

var _ storage.Driver = (*postgres.Driver)(nil)
