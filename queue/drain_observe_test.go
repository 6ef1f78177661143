package queue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// TestDrainRunsMiddlewareAndPublishesEvents: a drained job runs as it would
// in a started client: each attempt through the middlewares once, and each
// outcome's event published, in order per job. On both drivers.
func TestDrainRunsMiddlewareAndPublishesEvents(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		fast := queue.KindOptions{Backoff: func(int, error) time.Duration { return time.Millisecond }}
		_ = ws.Handle("flaky", func(ctx context.Context, job *acidic.Job) error {
			if job.Attempt == 1 {
				return errors.New("first fails")
			}
			return nil
		}, fast)
		_ = ws.Handle("bad", func(ctx context.Context, job *acidic.Job) error { return errors.New("bad") }, fast)
		var mu sync.Mutex
		var seen []string
		cfg := fastConfig(ws, 1)
		cfg.Middleware = []queue.JobMiddleware{func(ctx context.Context, job *acidic.Job, next func(context.Context) error) error {
			mu.Lock()
			seen = append(seen, job.Kind)
			mu.Unlock()
			return next(ctx)
		}}
		c := newClient(t, drv, cfg)
		sub := c.Subscribe(events.Options{Buffer: 64})
		defer sub.Close()
		flaky, err := c.Enqueue(ctx, "flaky", nil, queue.EnqueueOptions{MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		bad, err := c.Enqueue(ctx, "bad", nil, queue.EnqueueOptions{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{WithScheduled: true})
		if err != nil || res.Total() != 3 {
			t.Fatalf("Drain = %+v, %v; want 3 attempts", res, err)
		}
		mu.Lock()
		if strings.Join(seen, ",") != "flaky,bad,flaky" {
			t.Errorf("the middleware saw %v, want each attempt once: flaky, bad, flaky", seen)
		}
		mu.Unlock()
		sub.Close()
		got := map[int64][]string{}
		for ev := range sub.C {
			got[ev.JobID] = append(got[ev.JobID], string(ev.Kind))
		}
		if g := strings.Join(got[flaky.ID], ","); g != "job.failed,job.completed" {
			t.Errorf("flaky job's events %s, want job.failed,job.completed", g)
		}
		if g := strings.Join(got[bad.ID], ","); g != "job.discarded" {
			t.Errorf("bad job's events %s, want job.discarded", g)
		}
	})
}
