package otelacidic_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/otelacidic"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// TestMetricsFollowBacklogRetriesAndFailures: read through an in-memory
// reader as jobs run, the outbox backlog counts the messages staged and
// not yet delivered and falls to zero once the relay delivers them; the
// oldest age of a queue is there while jobs wait and gone once none does;
// a step's failure, its job's failure and a serialization retry are each
// counted. On both drivers.
func TestMetricsFollowBacklogRetriesAndFailures(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		inst, err := otelacidic.New(otelacidic.Config{MeterProvider: mp, DisableTraces: true})
		if err != nil {
			t.Fatal(err)
		}
		tries := 0
		wf := workflow.Define("metrics-audit", workflow.Options{MaxAttempts: 2},
			steps.Do("publish", func(ctx context.Context, sc *steps.Context[args, state]) error {
				if sc.Attempt() == 1 {
					return errors.New("first attempt fails")
				}
				if tries++; tries == 1 {
					return fmt.Errorf("again: %w", acidic.ErrSerialization)
				}
				for i := range 3 {
					if err := sc.Publish(ctx, "orders", fmt.Sprint("o-", i), i); err != nil {
						return err
					}
				}
				return nil
			}))
		cfg := enginetest.Config(1)
		inst.Configure(&cfg)
		e := enginetest.New(t, drv, cfg, wf)
		stop, err := inst.Observe(e.Events(), drv)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()

		if _, ok := collect(t, reader, otelacidic.MetricQueueOldestAge, otelacidic.AttrQueue.String("default")); ok {
			t.Fatal("an oldest age for an empty queue")
		}
		res, err := e.Enqueue(ctx, "metrics-audit", args{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := collect(t, reader, otelacidic.MetricQueueOldestAge, otelacidic.AttrQueue.String("default")); !ok {
			t.Fatal("no oldest age while a job waits")
		}
		if n, ok := collect(t, reader, otelacidic.MetricOutboxBacklog); !ok || n != 0 {
			t.Fatalf("outbox backlog %v (%v) before the run, want 0", n, ok)
		}
		if _, err := e.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{WithScheduled: true}); err != nil {
			t.Fatal(err)
		}
		if r := enginetest.WaitRun(t, e, res.Run.ID, acidic.RunSucceeded); r.State != acidic.RunSucceeded {
			t.Fatalf("run %s", r.State)
		}
		if n, _ := collect(t, reader, otelacidic.MetricOutboxBacklog); n != 3 {
			t.Fatalf("outbox backlog %v after the step staged 3 messages, want 3", n)
		}
		if _, ok := collect(t, reader, otelacidic.MetricQueueOldestAge, otelacidic.AttrQueue.String("default")); ok {
			t.Error("an oldest age after every job ran")
		}
		for _, c := range []struct {
			name  string
			match []attribute.KeyValue
			want  float64
		}{
			{otelacidic.MetricSteps, []attribute.KeyValue{otelacidic.AttrOutcome.String("failed")}, 1},
			{otelacidic.MetricSteps, []attribute.KeyValue{otelacidic.AttrOutcome.String("committed")}, 1},
			{otelacidic.MetricSerRetries, []attribute.KeyValue{otelacidic.AttrStep.String("publish")}, 1},
			{otelacidic.MetricJobs, []attribute.KeyValue{otelacidic.AttrOutcome.String("failed")}, 1},
			{otelacidic.MetricJobs, []attribute.KeyValue{otelacidic.AttrOutcome.String("completed")}, 1},
			{otelacidic.MetricRuns, []attribute.KeyValue{otelacidic.AttrState.String("succeeded")}, 1},
		} {
			if n, _ := collect(t, reader, c.name, c.match...); n != c.want {
				t.Errorf("%s %v = %v, want %v", c.name, c.match, n, c.want)
			}
		}

		relay, err := outbox.New(drv, outbox.Config{Logger: enginetest.QuietLogger(),
			Publisher: outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error { return nil })})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := relay.RunOnce(ctx); err != nil || r.Delivered != 3 {
			t.Fatalf("RunOnce = %+v, %v", r, err)
		}
		if n, _ := collect(t, reader, otelacidic.MetricOutboxBacklog); n != 0 {
			t.Fatalf("outbox backlog %v after the relay delivered every message, want 0", n)
		}
	})
}
