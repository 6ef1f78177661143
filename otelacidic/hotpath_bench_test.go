package otelacidic_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/otelacidic"
	"github.com/acidic-go/acidic/workflow"
)

// The hot path without a database: what the instrumentation adds to one
// job attempt, one step and one event. -benchmem shows the allocations.

// hotInst is instrumentation with every span sampled (sampler nil) or with
// the given sampler, exporting through the SDK's batcher to a no-op
// exporter, metrics into a manual reader.
func hotInst(b *testing.B, sampler sdktrace.Sampler) *otelacidic.Instrumentation {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(tracetest.NewNoopExporter())}
	if sampler != nil {
		opts = append(opts, sdktrace.WithSampler(sampler))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	inst, err := otelacidic.New(otelacidic.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	return inst
}

// hotJob is a job of a run whose Meta carries a trace context, as the
// enqueue hook writes it under a sampled span.
func hotJob(b *testing.B, sampled bool) *acidic.Job {
	tp := sdktrace.NewTracerProvider()
	if !sampled {
		tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	ctx, span := tp.Tracer("bench").Start(context.Background(), "request")
	defer span.End()
	inst := hotInst(b, nil)
	meta, err := inst.EnqueueHook(ctx, "bench3", json.RawMessage(`{"tenant":"acme"}`))
	if err != nil || meta == nil {
		b.Fatalf("hook: %s, %v", meta, err)
	}
	return &acidic.Job{ID: 42, Kind: "bench3", Queue: "default", Attempt: 1, RunID: uuid.New(), Meta: meta}
}

func BenchmarkJobMiddleware(b *testing.B) {
	for _, c := range []struct {
		name    string
		sampler sdktrace.Sampler
		sampled bool
	}{
		{"all-sampled", nil, true},
		{"parent-unsampled", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			inst := hotInst(b, c.sampler)
			job := hotJob(b, c.sampled)
			next := func(context.Context) error { return nil }
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_ = inst.JobMiddleware(ctx, job, next)
			}
		})
	}
}

func BenchmarkStepMiddleware(b *testing.B) {
	inst := hotInst(b, nil)
	job := hotJob(b, true)
	info := workflow.StepInfo{Job: job, RunID: job.RunID, Workflow: job.Kind, IdempotencyKey: "order-12345",
		Step: "charge", Position: 1, Attempt: 1, Try: 1}
	next := func(context.Context) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = inst.StepMiddleware(ctx, info, next)
	}
}

// BenchmarkRecord is the metrics of one job attempt's outcome and one
// step's commit, through an engine's event bus.
func BenchmarkRecord(b *testing.B) {
	inst := hotInst(b, nil)
	bus := &events.Bus{}
	stop, err := inst.Observe(bus, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	job := events.Event{Kind: events.JobCompleted, At: time.Now(), JobID: 1, JobKind: "bench3", Queue: "default",
		Attempt: 1, Duration: time.Millisecond, Wait: 3 * time.Millisecond}
	step := events.Event{Kind: events.StepCommitted, At: time.Now(), Workflow: "bench3", Step: "charge", Queue: "default",
		Attempt: 1, Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		bus.Publish(job)
		bus.Publish(step)
	}
}

// BenchmarkAttempt is the instrumentation of one empty job attempt as the
// engine runs it: the job middleware around nothing, then the attempt's
// event through the bus into the metrics. Besides ns/op (this goroutine),
// cpu-ns/op is the process's CPU per attempt (getrusage): the batcher's
// goroutine and the garbage collector included.
func BenchmarkAttempt(b *testing.B) {
	for _, c := range []struct {
		name    string
		sampler sdktrace.Sampler
		sampled bool
	}{
		{"all-sampled", nil, true},
		{"parent-based-1pct-unsampled", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			inst := hotInst(b, c.sampler)
			bus := &events.Bus{}
			stop, err := inst.Observe(bus, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
			job := hotJob(b, c.sampled)
			job.RunID = [16]byte{} // a plain job
			next := func(context.Context) error { return nil }
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				_ = inst.JobMiddleware(ctx, job, next)
				bus.Publish(events.Event{Kind: events.JobCompleted, JobID: job.ID, JobKind: job.Kind, Queue: job.Queue,
					Attempt: job.Attempt, Duration: time.Microsecond, Wait: time.Millisecond})
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
