package otelacidic_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/otelacidic"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// TestOutboxMessageSpanInRunTrace: a message a step publishes carries the
// step's trace context, and the relay's span for its delivery is the child
// of that step's span, in the trace of the request that enqueued the run;
// the publisher's context carries the delivery's span. A message staged in
// the caller's transaction while a request is traced (Engine.PublishTx)
// is delivered under the request's span; a failed delivery is an error on
// its span. On both drivers.
func TestOutboxMessageSpanInRunTrace(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		sr, tp, inst := newTracing(t)
		wf := workflow.Define("outbox-traced", workflow.Options{},
			noop("reserve"),
			steps.Do("notify", func(ctx context.Context, sc *steps.Context[args, state]) error {
				return sc.Publish(ctx, "orders", "o-1", map[string]int{"n": sc.Args.N})
			}))
		cfg := enginetest.Config(1)
		inst.Configure(&cfg)
		e := enginetest.New(t, drv, cfg, wf)
		enginetest.Start(t, e)

		tracer := tp.Tracer("test")
		reqCtx, req := tracer.Start(ctx, "request")
		res, err := e.Enqueue(reqCtx, "outbox-traced", args{N: 3}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		enginetest.WaitRun(t, e, res.Run.ID, acidic.RunSucceeded)
		other, otherSpan := tracer.Start(ctx, "other request")
		if err := drv.InTx(other, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
			return e.PublishTx(ctx, tx, "invoices", "i-1", "x")
		}); err != nil {
			t.Fatal(err)
		}
		otherSpan.End()
		req.End()

		var (
			mu     sync.Mutex
			seen   = map[string]trace.SpanContext{} // topic → the span the publisher's ctx carries
			failed = true
		)
		ocfg := outbox.Config{Logger: enginetest.QuietLogger(),
			Backoff: func(int, error) time.Duration { return time.Millisecond },
			Publisher: outbox.PublisherFunc(func(ctx context.Context, msg *acidic.OutboxMessage) error {
				mu.Lock()
				defer mu.Unlock()
				if msg.Topic == "invoices" && failed {
					failed = false
					return errors.New("broker down")
				}
				seen[msg.Topic] = trace.SpanContextFromContext(ctx)
				return nil
			})}
		inst.ConfigureOutbox(&ocfg)
		relay, err := outbox.New(drv, ocfg)
		if err != nil {
			t.Fatal(err)
		}
		// The first batch delivers the order and fails the invoice; the
		// second, once the invoice is due again, delivers it.
		if r, err := relay.RunOnce(ctx); err != nil || r.Delivered != 1 || r.Failed != 1 {
			t.Fatalf("first RunOnce = %+v, %v; want one delivered, one failed", r, err)
		}
		waitFor(t, "the invoice delivered", func() bool {
			r, err := relay.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return r.Delivered == 1
		})

		spans := func(name string) []sdktrace.ReadOnlySpan { return endedNamed(sr, name) }
		one := func(name string) sdktrace.ReadOnlySpan { return oneEnded(t, sr, name) }
		reqSpan, step, order := one("request"), one("acidic.step notify"), one("acidic.outbox.publish orders")
		if order.SpanContext().TraceID() != reqSpan.SpanContext().TraceID() {
			t.Fatal("the order's delivery span is not in the request's (and the run's) trace")
		}
		if order.Parent().SpanID() != step.SpanContext().SpanID() {
			t.Fatalf("the order's delivery span's parent is %s, want the step that published it (%s)", order.Parent().SpanID(), step.SpanContext().SpanID())
		}
		if order.SpanKind() != trace.SpanKindProducer || order.Status().Code == codes.Error {
			t.Errorf("order delivery span: kind %s, status %v", order.SpanKind(), order.Status())
		}
		attrs := map[string]string{}
		for _, kv := range order.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if attrs[string(otelacidic.AttrRunID)] != res.Run.ID.String() || attrs[string(otelacidic.AttrOutboxTopic)] != "orders" ||
			attrs[string(otelacidic.AttrAttempt)] != "1" || attrs[string(otelacidic.AttrOutboxID)] == "" {
			t.Errorf("order delivery span attributes %v", attrs)
		}
		mu.Lock()
		if got := seen["orders"]; got.SpanID() != order.SpanContext().SpanID() {
			t.Errorf("the publisher's context carries span %s, want the delivery's %s", got.SpanID(), order.SpanContext().SpanID())
		}
		mu.Unlock()

		otherReq, invoices := one("other request"), spans("acidic.outbox.publish invoices")
		if len(invoices) != 2 {
			t.Fatalf("%d invoice delivery spans, want 2 (a failure, then the delivery)", len(invoices))
		}
		for i, s := range invoices {
			if s.Parent().SpanID() != otherReq.SpanContext().SpanID() || s.SpanContext().TraceID() != otherReq.SpanContext().TraceID() {
				t.Errorf("invoice delivery span %d is not a child of the request that staged it", i)
			}
		}
		if invoices[0].Status().Code != codes.Error || invoices[1].Status().Code == codes.Error {
			t.Errorf("invoice delivery statuses %v, %v; want an error, then none", invoices[0].Status(), invoices[1].Status())
		}
	})
}
