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

// TestEventsForEachOutcomeInOrder: every outcome of an attempt publishes
// its event, in order per job, with the job's ids, kind, queue and attempt.
func TestEventsForEachOutcomeInOrder(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		fast := queue.KindOptions{Backoff: func(int, error) time.Duration { return time.Millisecond }}
		_ = ws.Handle("ok", func(ctx context.Context, job *acidic.Job) error { return nil }, fast)
		_ = ws.Handle("snooze", func(ctx context.Context, job *acidic.Job) error {
			if job.Attempt == 1 {
				return queue.Snooze(0)
			}
			return nil
		}, fast)
		_ = ws.Handle("fail", func(ctx context.Context, job *acidic.Job) error { return errors.New("boom") }, fast)
		_ = ws.Handle("cancel", func(ctx context.Context, job *acidic.Job) error { return queue.Cancel(errors.New("no")) }, fast)
		c := newClient(t, drv, fastConfig(ws, 4))
		sub := c.Subscribe(events.Options{})
		defer sub.Close()

		want := map[string][]events.Kind{
			"ok":     {events.JobCompleted},
			"snooze": {events.JobSnoozed, events.JobCompleted},
			"fail":   {events.JobFailed, events.JobDiscarded},
			"cancel": {events.JobCancelled},
		}
		ids := map[int64]string{}
		for kind := range want {
			j, err := c.Enqueue(ctx, kind, nil, queue.EnqueueOptions{MaxAttempts: 2})
			if err != nil {
				t.Fatal(err)
			}
			ids[j.ID] = kind
		}
		start(t, c)
		got := map[int64][]events.Event{}
		total := 0
		for _, w := range want {
			total += len(w)
		}
		for n := 0; n < total; n++ {
			select {
			case ev := <-sub.C:
				got[ev.JobID] = append(got[ev.JobID], ev)
			case <-ctx.Done():
				t.Fatalf("got %d events of %d: %v", n, total, got)
			}
		}
		for id, kind := range ids {
			evs := got[id]
			if len(evs) != len(want[kind]) {
				t.Fatalf("job %s: events %v, want %v", kind, evs, want[kind])
			}
			for i, ev := range evs {
				if ev.Kind != want[kind][i] || ev.JobKind != kind || ev.Queue != "default" || ev.Attempt != i+1 || ev.MaxAttempts < 2 {
					t.Fatalf("job %s event %d: %+v, want %s on attempt %d", kind, i, ev, want[kind][i], i+1)
				}
				if (ev.Kind == events.JobFailed || ev.Kind == events.JobDiscarded) && (ev.Err == nil || ev.Err.Error() != "boom") {
					t.Fatalf("job %s event %d: error %v, want boom", kind, i, ev.Err)
				}
			}
		}
		if got := sub.Dropped(); got != 0 {
			t.Fatalf("dropped %d events", got)
		}
	})
}

// TestEventRescued: the rescue of a job whose worker stopped heartbeating
// is published.
func TestEventRescued(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		c := newClient(t, drv, fastConfig(queue.NewWorkers(), 1))
		j, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET state = 'running', attempt = 1, attempted_at = "+testdb.Now(drv)+", attempted_by = 'gone', heartbeat_at = "+testdb.Earlier(drv, "now()", 2*time.Hour)+" WHERE id = $1", j.ID)
		sub := c.Subscribe(events.Options{Kinds: []events.Kind{events.JobRescued}})
		defer sub.Close()
		if res := c.Maintain(ctx); len(res.Rescued) != 1 {
			t.Fatalf("rescued %v", res.Rescued)
		}
		select {
		case ev := <-sub.C:
			if ev.JobID != j.ID || ev.JobState != acidic.JobRetryable {
				t.Fatalf("event %+v", ev)
			}
		default:
			t.Fatal("no rescue event")
		}
	})
}

// TestSubscriberThatNeverReadsBlocksNothing: a full subscription drops
// events, counts them, and every job still completes.
func TestSubscriberThatNeverReadsBlocksNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		_ = ws.Handle("k", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, 2))
		sub := c.Subscribe(events.Options{Buffer: 1})
		defer sub.Close()
		const n = 20
		var last *acidic.Job
		for range n {
			j, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			last = j
		}
		start(t, c)
		waitFor(t, "every job completed", func() bool {
			jobs, err := c.List(ctx, acidic.JobFilter{States: []acidic.JobState{acidic.JobCompleted}, Limit: n})
			return err == nil && len(jobs) == n
		})
		_ = last
		if sub.Dropped() != n-1 || c.Events().Dropped() != n-1 {
			t.Fatalf("dropped %d (bus %d), want %d", sub.Dropped(), c.Events().Dropped(), n-1)
		}
		if len(sub.C) != 1 {
			t.Fatalf("%d events buffered, want 1", len(sub.C))
		}
	})
}

// TestJobMiddlewareSeesEachAttemptOnce: middlewares chain in order around
// every attempt, once each; a panicking middleware fails the attempt.
func TestJobMiddlewareSeesEachAttemptOnce(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		fast := queue.KindOptions{Backoff: func(int, error) time.Duration { return time.Millisecond }}
		type key struct{}
		_ = ws.Handle("k", func(ctx context.Context, job *acidic.Job) error {
			if ctx.Value(key{}) != "outer" {
				return errors.New("the middleware's context did not reach the work function")
			}
			if job.Attempt == 1 {
				return errors.New("first fails")
			}
			return nil
		}, fast)
		_ = ws.Handle("p", func(ctx context.Context, job *acidic.Job) error { return nil }, fast)
		var mu sync.Mutex
		var seen []string
		cfg := fastConfig(ws, 2)
		cfg.Middleware = []queue.JobMiddleware{
			func(ctx context.Context, job *acidic.Job, next func(context.Context) error) error {
				mu.Lock()
				seen = append(seen, job.Kind+"/outer")
				mu.Unlock()
				return next(context.WithValue(ctx, key{}, "outer"))
			},
			func(ctx context.Context, job *acidic.Job, next func(context.Context) error) error {
				if job.Kind == "p" {
					panic("middleware panic")
				}
				mu.Lock()
				seen = append(seen, job.Kind+"/inner")
				mu.Unlock()
				return next(ctx)
			},
		}
		c := newClient(t, drv, cfg)
		j, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Enqueue(ctx, "p", nil, queue.EnqueueOptions{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		start(t, c)
		done := waitJob(t, drv, j.ID, acidic.JobCompleted)
		if done.Attempt != 2 {
			t.Fatalf("attempt %d", done.Attempt)
		}
		pd := waitJob(t, drv, p.ID, acidic.JobDiscarded)
		if len(pd.Errors) != 1 || !strings.Contains(pd.Errors[0].Error, "middleware panic") {
			t.Fatalf("errors %v", pd.Errors)
		}
		mu.Lock()
		defer mu.Unlock()
		var ks []string
		for _, s := range seen {
			if strings.HasPrefix(s, "k/") {
				ks = append(ks, s)
			}
		}
		if strings.Join(ks, ",") != "k/outer,k/inner,k/outer,k/inner" {
			t.Fatalf("seen %v", seen)
		}
	})
}

// TestCompletedSlotFreedBeforeItsEvent: a completed job's worker slot is
// free before its job.completed reaches the subscribers, so a slow Func
// subscriber does not hold the queue's fetch back: with one worker, the
// next job runs while the first job's event is still being delivered.
func TestCompletedSlotFreedBeforeItsEvent(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		secondRan := make(chan struct{})
		_ = ws.Handle("first", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		_ = ws.Handle("second", func(ctx context.Context, job *acidic.Job) error { close(secondRan); return nil }, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, 1))
		release := make(chan struct{})
		var once sync.Once
		defer once.Do(func() { close(release) })
		sub := c.Subscribe(events.Options{Func: func(ev events.Event) {
			if ev.Kind == events.JobCompleted && ev.JobKind == "first" {
				<-release // a subscriber slower than the next job
			}
		}})
		defer sub.Close()
		if _, err := c.Enqueue(ctx, "first", nil, queue.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Enqueue(ctx, "second", nil, queue.EnqueueOptions{ScheduledAt: time.Now().Add(50 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		start(t, c)
		select {
		case <-secondRan:
		case <-time.After(20 * time.Second):
			t.Fatal("the second job never ran while the first job's job.completed was being delivered: its slot was still held")
		}
		once.Do(func() { close(release) })
	})
}
