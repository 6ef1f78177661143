package queue_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// TestAttemptEndsWhenWorkExitsOrPanics: an attempt whose work function or
// middleware ends its goroutine with runtime.Goexit (as t.FailNow does) or
// panics still ends: on its last attempt the job is discarded with the
// reason, in a started client (whose kept goroutines run the attempts) and
// under Drain alike. The client's one worker slot is not lost: a job
// enqueued after them completes, and Stop finds nothing left running.
func TestAttemptEndsWhenWorkExitsOrPanics(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		ok := func(ctx context.Context, job *acidic.Job) error { return nil }
		_ = ws.Handle("exit", func(ctx context.Context, job *acidic.Job) error { runtime.Goexit(); return nil }, queue.KindOptions{})
		_ = ws.Handle("panic", func(ctx context.Context, job *acidic.Job) error { panic("work exploded") }, queue.KindOptions{})
		_ = ws.Handle("mw-exit", ok, queue.KindOptions{})
		_ = ws.Handle("mw-panic", ok, queue.KindOptions{})
		_ = ws.Handle("ok", ok, queue.KindOptions{})
		cfg := fastConfig(ws, 1)
		cfg.Middleware = []queue.JobMiddleware{func(ctx context.Context, job *acidic.Job, next func(context.Context) error) error {
			switch job.Kind {
			case "mw-exit":
				runtime.Goexit()
			case "mw-panic":
				panic("middleware exploded")
			}
			return next(ctx)
		}}
		ctx := ctxT(t)
		enqueue := func(c *queue.Client, kind string) int64 {
			t.Helper()
			j, err := c.Enqueue(ctx, kind, nil, queue.EnqueueOptions{MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			return j.ID
		}
		want := map[string]string{
			"exit":     "Goexit",
			"panic":    "work exploded",
			"mw-exit":  "Goexit",
			"mw-panic": "middleware exploded",
		}
		check := func(how string, ids map[string]int64) {
			t.Helper()
			for kind, id := range ids {
				j := waitJob(t, drv, id, acidic.JobDiscarded)
				if len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, want[kind]) {
					t.Errorf("%s: job %s: errors %v, want one containing %q", how, kind, j.Errors, want[kind])
				}
			}
		}

		// Drain, in a goroutine of its own: Goexit ends the caller's. Each
		// attempt publishes its job.discarded, whichever way it ended.
		d := newClient(t, drv, cfg)
		sub := d.Events().Subscribe(events.Options{Buffer: 64})
		defer sub.Close()
		drained := map[string]int64{}
		for kind := range want {
			drained[kind] = enqueue(d, kind)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = d.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{})
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("Drain of a %s job never ended", kind)
			}
		}
		check("Drain", drained)
		sub.Close()
		discarded := map[int64]int{}
		for ev := range sub.C {
			if ev.Kind == events.JobDiscarded {
				discarded[ev.JobID]++
			}
		}
		for kind, id := range drained {
			if discarded[id] != 1 {
				t.Errorf("Drain: job %s: %d job.discarded events, want 1", kind, discarded[id])
			}
		}

		// A started client with one worker.
		c := newClient(t, drv, cfg)
		started := map[string]int64{}
		for kind := range want {
			started[kind] = enqueue(c, kind)
		}
		start(t, c)
		check("started", started)
		waitJob(t, drv, enqueue(c, "ok"), acidic.JobCompleted)
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(stopCtx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	})
}

// TestSubscriberGoexitFreesSlotOnce: an events.Func subscriber that ends
// the attempt's goroutine with runtime.Goexit (t.FailNow in a test's
// subscriber) while the attempt publishes its event, after the attempt
// freed its worker slot, does not free that slot a second time: once the
// client stopped, no slot counts as taken, none as freed twice.
func TestSubscriberGoexitFreesSlotOnce(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		_ = ws.Handle("ok", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		_ = ws.Handle("fail", func(ctx context.Context, job *acidic.Job) error { return queue.Discard(errors.New("no")) }, queue.KindOptions{})
		// A job that fails once: its job.failed is published before its
		// outcome is written, and a subscriber that ends the goroutine
		// there must not leave the outcome unwritten.
		_ = ws.Handle("flaky", func(ctx context.Context, job *acidic.Job) error {
			if job.Attempt == 1 {
				return errors.New("once")
			}
			return nil
		}, queue.KindOptions{Backoff: func(int, error) time.Duration { return time.Millisecond }})
		c := newClient(t, drv, fastConfig(ws, 1))
		sub := c.Events().Subscribe(events.Options{Func: func(ev events.Event) {
			if ev.Kind == events.JobCompleted || ev.Kind == events.JobDiscarded || ev.Kind == events.JobFailed {
				runtime.Goexit()
			}
		}})
		defer sub.Close()
		ctx := ctxT(t)
		var ids []int64
		for _, kind := range []string{"ok", "fail", "flaky"} {
			max := 1
			if kind == "flaky" {
				max = 2
			}
			j, err := c.Enqueue(ctx, kind, nil, queue.EnqueueOptions{MaxAttempts: max})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		start(t, c)
		waitJob(t, drv, ids[0], acidic.JobCompleted)
		waitJob(t, drv, ids[1], acidic.JobDiscarded)
		if j := waitJob(t, drv, ids[2], acidic.JobCompleted); j.Attempt != 2 || len(j.Errors) != 1 {
			t.Fatalf("flaky job: attempt %d, errors %v; want completed on attempt 2 after one failure", j.Attempt, j.Errors)
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(stopCtx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if n := queue.ActiveSlots(c, queue.DefaultQueue); n != 0 {
			t.Fatalf("after Stop the producer counts %d slots taken, want 0", n)
		}
	})
}
