package otelacidic_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/otelacidic"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/sqlite"
	"github.com/acidic-go/acidic/workflow"
)

type payment struct {
	Order string `json:"order"`
}

// This example wires OpenTelemetry traces and the Prometheus /metrics
// handler into an engine, runs a payment whose step awaits a child run and
// whose last step publishes an outbox message, delivers the message, and
// prints the trace (from an in-memory span recorder: use an exporter in
// production) and an excerpt of /metrics. The queue is drained here so the
// output is the same on every run; a started engine and relay make the same
// spans.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "otelacidic-example")
	defer os.RemoveAll(dir)
	drv, err := sqlite.Open(ctx, filepath.Join(dir, "acidic.db"), sqlite.Options{Migrate: true})
	if err != nil {
		panic(err)
	}
	defer drv.Close()

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	prom, err := otelacidic.NewPrometheus() // a MeterProvider and its /metrics handler
	if err != nil {
		panic(err)
	}
	inst, err := otelacidic.New(otelacidic.Config{TracerProvider: tp, MeterProvider: prom.MeterProvider})
	if err != nil {
		panic(err)
	}

	check := workflow.Define[payment, struct{}]("refund-check", workflow.Options{}).
		Step("check", func(ctx context.Context, sc *steps.Context[payment, struct{}]) error { return nil })
	pay := workflow.Define[payment, struct{}]("payment", workflow.Options{}).
		Step("reserve", func(ctx context.Context, sc *steps.Context[payment, struct{}]) error { return nil }).
		Step("spawn", func(ctx context.Context, sc *steps.Context[payment, struct{}]) error {
			return sc.Await(ctx, steps.RunRequest{Workflow: "refund-check", Args: sc.Args})
		}).
		Step("capture", func(ctx context.Context, sc *steps.Context[payment, struct{}]) error {
			// Pass the step's ctx: the message carries its trace context.
			return sc.Publish(ctx, "payments", sc.Args.Order, map[string]string{"captured": sc.Args.Order})
		})

	cfg := workflow.Config{
		Queue:  queue.Config{Queues: map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 4}}},
		Logger: slog.New(slog.DiscardHandler),
	}
	inst.Configure(&cfg) // before NewEngine: the middlewares, enqueue and publish hooks
	eng, err := workflow.NewEngine(drv, cfg)
	if err != nil {
		panic(err)
	}
	if err := eng.Register(check, pay); err != nil {
		panic(err)
	}
	stop, err := inst.Observe(eng.Events(), drv) // metrics from events, gauges from the store
	if err != nil {
		panic(err)
	}
	defer stop()
	ocfg := outbox.Config{Publisher: outbox.PublisherFunc(func(ctx context.Context, msg *acidic.OutboxMessage) error {
		return nil // hand msg to your broker here, with ctx: it carries the delivery's span
	})}
	inst.ConfigureOutbox(&ocfg) // a span per delivery, in the trace that staged the message
	relay, err := outbox.New(drv, ocfg)
	if err != nil {
		panic(err)
	}

	// The request that enqueues the payment (your HTTP handler's span).
	reqCtx, req := tp.Tracer("example").Start(ctx, "request")
	if _, err := pay.Enqueue(reqCtx, eng, payment{Order: "o-1"}, workflow.EnqueueOptions{}); err != nil {
		panic(err)
	}
	req.End()
	if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		panic(err)
	}
	if _, err := relay.RunOnce(ctx); err != nil {
		panic(err)
	}

	printTree(spans.Ended())

	rec := httptest.NewRecorder()
	prom.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	printMetrics(rec.Body.String(), "acidic_job_duration_seconds_count", "acidic_jobs_total", "acidic_steps_total", "acidic_runs_finished_total", "acidic_outbox_backlog")

	// Output:
	// request
	// └─ acidic.run payment
	//    ├─ acidic.step reserve
	//    └─ acidic.step spawn
	//       └─ acidic.run refund-check
	//          ├─ acidic.step check
	//          └─ acidic.run payment
	//             └─ acidic.step capture
	//                └─ acidic.outbox.publish payments
	// acidic_job_duration_seconds_count{acidic_job_kind="payment",acidic_outcome="completed",acidic_queue="default"} 2
	// acidic_job_duration_seconds_count{acidic_job_kind="refund-check",acidic_outcome="completed",acidic_queue="default"} 1
	// acidic_jobs_total{acidic_job_kind="payment",acidic_outcome="completed",acidic_queue="default"} 2
	// acidic_jobs_total{acidic_job_kind="refund-check",acidic_outcome="completed",acidic_queue="default"} 1
	// acidic_outbox_backlog 0
	// acidic_runs_finished_total{acidic_state="succeeded",acidic_workflow="payment"} 1
	// acidic_runs_finished_total{acidic_state="succeeded",acidic_workflow="refund-check"} 1
	// acidic_steps_total{acidic_outcome="committed",acidic_step="capture",acidic_workflow="payment"} 1
	// acidic_steps_total{acidic_outcome="committed",acidic_step="check",acidic_workflow="refund-check"} 1
	// acidic_steps_total{acidic_outcome="committed",acidic_step="reserve",acidic_workflow="payment"} 1
	// acidic_steps_total{acidic_outcome="committed",acidic_step="spawn",acidic_workflow="payment"} 1
}

// printTree prints spans as a tree, children in the order they started.
func printTree(spans []sdktrace.ReadOnlySpan) {
	byParent := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent().SpanID(); ids[p] {
			byParent[p] = append(byParent[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	var walk func(s sdktrace.ReadOnlySpan, prefix, branch, next string)
	walk = func(s sdktrace.ReadOnlySpan, prefix, branch, next string) {
		fmt.Println(prefix + branch + s.Name())
		kids := byParent[s.SpanContext().SpanID()]
		slices.SortFunc(kids, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
		for i, k := range kids {
			if i == len(kids)-1 {
				walk(k, prefix+next, "└─ ", "   ")
			} else {
				walk(k, prefix+next, "├─ ", "│  ")
			}
		}
	}
	for _, r := range roots {
		walk(r, "", "", "")
	}
}

var scopeLabels = regexp.MustCompile(`otel_scope_[a-z_]+="[^"]*",?`)

// printMetrics prints the series of /metrics whose names are given, without
// the otel_scope_* labels the exporter adds to each.
func printMetrics(body string, names ...string) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if strings.HasPrefix(line, n+"{") || strings.HasPrefix(line, n+" ") {
				line = strings.Replace(scopeLabels.ReplaceAllString(line, ""), ",}", "}", 1)
				fmt.Println(strings.Replace(line, "{}", "", 1))
			}
		}
	}
}
