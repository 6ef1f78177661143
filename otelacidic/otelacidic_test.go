package otelacidic_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/otelacidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type args struct {
	N int `json:"n"`
}
type state struct{}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, or fails the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newTracing makes an instrumentation that traces into a span recorder,
// its metrics off.
func newTracing(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider, *otelacidic.Instrumentation) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	inst, err := otelacidic.New(otelacidic.Config{TracerProvider: tp, DisableMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	return sr, tp, inst
}

// endedNamed returns the ended spans of sr named name.
func endedNamed(sr *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// oneEnded returns the one ended span of sr named name, or fails the test.
func oneEnded(t *testing.T, sr *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	s := endedNamed(sr, name)
	if len(s) != 1 {
		t.Fatalf("%d spans %q, want 1", len(s), name)
	}
	return s[0]
}

func noop(name string) steps.Step[args, state] {
	return steps.Do(name, func(ctx context.Context, sc *steps.Context[args, state]) error { return nil })
}

// TestSpanTreeRequestRunStepsChild: one trace shows the request that
// enqueued a run, the run, its steps, and the child run a step awaited,
// with the child's steps under it; spans carry the hash of the key, never
// the key.
func TestSpanTreeRequestRunStepsChild(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		sr, tp, inst := newTracing(t)
		child := workflow.Define("span-child", workflow.Options{}, noop("x"))
		parent := workflow.Define("span-parent", workflow.Options{},
			noop("a"),
			steps.Do("spawn", func(ctx context.Context, sc *steps.Context[args, state]) error {
				return sc.Await(ctx, steps.RunRequest{Workflow: "span-child", Args: args{N: 1}})
			}),
			noop("c"))
		cfg := enginetest.Config(2)
		inst.Configure(&cfg)
		e := enginetest.New(t, drv, cfg, child, parent)
		enginetest.Start(t, e)

		reqCtx, req := tp.Tracer("test").Start(ctx, "request")
		res, err := e.Enqueue(reqCtx, "span-parent", args{N: 7}, workflow.EnqueueOptions{Key: "secret-customer-42"})
		req.End()
		if err != nil {
			t.Fatal(err)
		}
		enginetest.WaitRun(t, e, res.Run.ID, acidic.RunSucceeded)

		byName := func(name string) []sdktrace.ReadOnlySpan { return endedNamed(sr, name) }
		want := []string{"request", "acidic.run span-parent", "acidic.step a", "acidic.step spawn", "acidic.run span-child", "acidic.step x", "acidic.step c"}
		waitFor(t, "every span ended", func() bool {
			for _, n := range want {
				if len(byName(n)) == 0 {
					return false
				}
			}
			return len(byName("acidic.run span-parent")) == 2
		})
		one := func(name string) sdktrace.ReadOnlySpan { return oneEnded(t, sr, name) }
		reqSpan := one("request")
		runSpans := byName("acidic.run span-parent")
		first := runSpans[0]
		if first.Parent().SpanID() != reqSpan.SpanContext().SpanID() {
			t.Fatalf("the run's first attempt is not a child of the request")
		}
		for _, s := range sr.Ended() {
			if s.SpanContext().TraceID() != reqSpan.SpanContext().TraceID() {
				t.Fatalf("span %q is in another trace", s.Name())
			}
		}
		isChild := func(c, p sdktrace.ReadOnlySpan) {
			t.Helper()
			if c.Parent().SpanID() != p.SpanContext().SpanID() {
				t.Fatalf("span %q is not a child of %q", c.Name(), p.Name())
			}
		}
		isChild(one("acidic.step a"), first)
		spawn := one("acidic.step spawn")
		isChild(spawn, first)
		childRun := one("acidic.run span-child")
		isChild(childRun, spawn)
		isChild(one("acidic.step x"), childRun)
		// The parent's next job is enqueued by the child's end: under it.
		isChild(runSpans[1], childRun)
		isChild(one("acidic.step c"), runSpans[1])

		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range spawn.Attributes() {
			attrs[kv.Key] = kv.Value
		}
		if attrs[otelacidic.AttrRunID].AsString() != res.Run.ID.String() || attrs[otelacidic.AttrWorkflow].AsString() != "span-parent" ||
			attrs[otelacidic.AttrStep].AsString() != "spawn" || attrs[otelacidic.AttrAttempt].AsInt64() != 1 ||
			attrs[otelacidic.AttrQueue].AsString() != "default" || attrs[otelacidic.AttrKeyHash].AsString() != otelacidic.KeyHash(res.Run.IdempotencyKey) {
			t.Fatalf("step attributes %v", spawn.Attributes())
		}
		for _, s := range sr.Ended() {
			for _, kv := range s.Attributes() {
				if strings.Contains(kv.Value.String(), "secret-customer-42") {
					t.Fatalf("span %q carries the raw key in %s", s.Name(), kv.Key)
				}
			}
		}
	})
}

// collect reads the metrics and returns the sum of a counter's data points
// (or a gauge's, or a histogram's count) whose attributes include match.
func collect(t *testing.T, r *sdkmetric.ManualReader, name string, match ...attribute.KeyValue) (float64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total float64
	found := false
	has := func(set attribute.Set) bool {
		for _, kv := range match {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes) {
						total, found = total+float64(p.Value), true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes) {
						total, found = total+float64(p.Value), true
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes) {
						total, found = total+p.Value, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes) {
						total, found = total+float64(p.Count), true
					}
				}
			}
		}
	}
	return total, found
}

// TestMetricsChangeAsJobsRun: queue depth and age read the store; job
// outcomes, waits, steps and finished runs are counted as they happen.
func TestMetricsChangeAsJobsRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		inst, err := otelacidic.New(otelacidic.Config{MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		wf := workflow.Define("metrics-wf", workflow.Options{}, noop("a"), noop("b"))
		cfg := enginetest.Config(2)
		ws := queue.NewWorkers()
		_ = ws.Handle("plain", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		_ = ws.Handle("bad", func(ctx context.Context, job *acidic.Job) error { return errors.New("bad") }, queue.KindOptions{})
		cfg.Queue.Workers = ws
		inst.Configure(&cfg)
		e := enginetest.New(t, drv, cfg, wf)
		stop, err := inst.Observe(e.Events(), drv)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		for range 3 {
			if _, err := e.Queue().Enqueue(ctx, "plain", nil, queue.EnqueueOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.Queue().Enqueue(ctx, "bad", nil, queue.EnqueueOptions{MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
		res, err := e.Enqueue(ctx, "metrics-wf", args{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := collect(t, reader, otelacidic.MetricQueueDepth, otelacidic.AttrQueue.String("default"), otelacidic.AttrState.String("available")); n != 5 {
			t.Fatalf("queue depth %v before the start, want 5", n)
		}
		if _, ok := collect(t, reader, otelacidic.MetricQueueOldestAge, otelacidic.AttrQueue.String("default")); !ok {
			t.Fatal("no oldest age for the queue")
		}
		if n, ok := collect(t, reader, otelacidic.MetricOutboxBacklog); !ok || n != 0 {
			t.Fatalf("outbox backlog %v %v", n, ok)
		}
		enginetest.Start(t, e)
		enginetest.WaitRun(t, e, res.Run.ID, acidic.RunSucceeded)
		waitFor(t, "every job counted", func() bool {
			n, _ := collect(t, reader, otelacidic.MetricJobs)
			return n == 5
		})
		for outcome, want := range map[string]float64{"completed": 4, "discarded": 1} {
			if n, _ := collect(t, reader, otelacidic.MetricJobs, otelacidic.AttrOutcome.String(outcome)); n != want {
				t.Fatalf("jobs %s: %v, want %v", outcome, n, want)
			}
		}
		if n, _ := collect(t, reader, otelacidic.MetricJobWait); n != 5 {
			t.Fatalf("job waits recorded: %v", n)
		}
		if n, _ := collect(t, reader, otelacidic.MetricSteps, otelacidic.AttrWorkflow.String("metrics-wf"), otelacidic.AttrOutcome.String("committed")); n != 2 {
			t.Fatalf("steps committed: %v", n)
		}
		if n, _ := collect(t, reader, otelacidic.MetricRuns, otelacidic.AttrState.String("succeeded")); n != 1 {
			t.Fatalf("runs finished: %v", n)
		}
		if n, _ := collect(t, reader, otelacidic.MetricQueueDepth, otelacidic.AttrState.String("available")); n != 0 {
			t.Fatalf("queue depth %v after the run, want 0", n)
		}
	})
}

// TestPrometheusHandlerServesAcidicMetrics: the handler serves the
// instrumentation's metrics in the Prometheus text format.
func TestPrometheusHandlerServesAcidicMetrics(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	ctx := ctxT(t)
	prom, err := otelacidic.NewPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prom.MeterProvider.Shutdown(context.Background()) }()
	inst, err := otelacidic.New(otelacidic.Config{MeterProvider: prom.MeterProvider})
	if err != nil {
		t.Fatal(err)
	}
	ws := queue.NewWorkers()
	_ = ws.Handle("plain", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
	cfg := enginetest.Config(1).Queue
	cfg.Workers, cfg.Logger = ws, enginetest.QuietLogger()
	inst.ConfigureQueue(&cfg)
	c, err := queue.New(drv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := inst.Observe(c.Events(), drv)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	j, err := c.Enqueue(ctx, "plain", nil, queue.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A job due later keeps a series in the queue depth gauge.
	if _, err := c.Enqueue(ctx, "plain", nil, queue.EnqueueOptions{ScheduleIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop(context.Background()) }()
	srv := httptest.NewServer(prom.Handler)
	defer srv.Close()
	var body string
	waitFor(t, "the job counted on /metrics", func() bool {
		resp, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `acidic_jobs_total{`) && strings.Contains(body, `acidic_outcome="completed"`)
	})
	for _, want := range []string{"acidic_job_wait_seconds_bucket", "acidic_job_duration_seconds_bucket", "acidic_outbox_backlog", `acidic_queue_depth{acidic_queue="default",acidic_state="scheduled"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, body)
		}
	}
	_ = j
	if testing.Verbose() {
		t.Log(body)
	}
}
