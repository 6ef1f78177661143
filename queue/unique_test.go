package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

type refundArgs struct {
	OrderID int    `json:"order_id"`
	Reason  string `json:"reason"`
}

func TestUniqueJobUnderConcurrentEnqueues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 20}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{})
		opts := queue.EnqueueOptions{Unique: &queue.UniqueOptions{}}
		enqueueAtOnce(t, drv, 16, func(int) (*acidic.Job, error) {
			return c.Enqueue(context.Background(), "refund", refundArgs{OrderID: 1, Reason: "late"}, opts)
		})
	})
}

func TestUniqueOptions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
		c := newClient(t, drv, queue.Config{Now: func() time.Time { return now }})
		ctx := ctxT(t)
		enqueue := func(kind string, args any, o queue.EnqueueOptions) *acidic.Job {
			t.Helper()
			j, err := c.Enqueue(ctx, kind, args, o)
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
		byOrder := &queue.UniqueOptions{ArgKeys: []string{"order_id"}}
		a := enqueue("refund", refundArgs{1, "awful"}, queue.EnqueueOptions{Unique: byOrder})
		b := enqueue("refund", refundArgs{1, "I said awful"}, queue.EnqueueOptions{Unique: byOrder})
		if a.Duplicate || !b.Duplicate || b.ID != a.ID || string(b.Args) != string(a.Args) {
			t.Fatalf("ArgKeys: second enqueue %+v should be the first job, unchanged", b)
		}
		if d := enqueue("refund", refundArgs{2, "awful"}, queue.EnqueueOptions{Unique: byOrder}); d.Duplicate {
			t.Fatal("another order id is not a duplicate")
		}
		// Queue counts by default, not when only kind and args are compared.
		if d := enqueue("refund", refundArgs{1, "x"}, queue.EnqueueOptions{Queue: "other", Unique: byOrder}); d.Duplicate {
			t.Fatal("by default another queue is not a duplicate")
		}
		kindArgs := &queue.UniqueOptions{Fields: []queue.UniqueField{queue.UniqueByKind, queue.UniqueByArgs}}
		enqueue("mail", "x", queue.EnqueueOptions{Queue: "q1", Unique: kindArgs})
		if d := enqueue("mail", "x", queue.EnqueueOptions{Queue: "q2", Unique: kindArgs}); !d.Duplicate {
			t.Fatal("fields kind+args: another queue is a duplicate")
		}
		// A period: the next window is not a duplicate.
		hourly := &queue.UniqueOptions{Period: time.Hour}
		first := enqueue("report", nil, queue.EnqueueOptions{Unique: hourly})
		now = now.Add(59 * time.Minute)
		if d := enqueue("report", nil, queue.EnqueueOptions{Unique: hourly}); !d.Duplicate || d.ID != first.ID {
			t.Fatal("within the period: duplicate expected")
		}
		now = now.Add(2 * time.Minute)
		if d := enqueue("report", nil, queue.EnqueueOptions{Unique: hourly}); d.Duplicate {
			t.Fatal("next period: a new job expected")
		}
		// States: a cancelled job does not block by default.
		cancelled := enqueue("ping", nil, queue.EnqueueOptions{Unique: &queue.UniqueOptions{}})
		if _, err := c.Cancel(ctx, cancelled.ID); err != nil {
			t.Fatal(err)
		}
		if d := enqueue("ping", nil, queue.EnqueueOptions{Unique: &queue.UniqueOptions{}}); d.Duplicate {
			t.Fatal("a cancelled job must not block a new one by default")
		}
		allStates := &queue.UniqueOptions{States: queue.AllStates()}
		gone := enqueue("pong", nil, queue.EnqueueOptions{Unique: allStates})
		if _, err := c.Cancel(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		if d := enqueue("pong", nil, queue.EnqueueOptions{Unique: allStates}); !d.Duplicate || d.ID != gone.ID {
			t.Fatal("unique over all states: a cancelled job still blocks")
		}
		// Bad unique options.
		for _, u := range []*queue.UniqueOptions{
			{Period: -time.Second},
			{Fields: []queue.UniqueField{"colour"}},
			{States: []acidic.JobState{"sleeping"}},
		} {
			if _, err := c.Enqueue(ctx, "bad", nil, queue.EnqueueOptions{Unique: u}); !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("unique %+v: %v, want ErrInvalid", u, err)
			}
		}
		if _, err := c.Enqueue(ctx, "bad", "not an object", queue.EnqueueOptions{Unique: byOrder}); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("ArgKeys on non-object args: %v", err)
		}
		if _, err := c.Enqueue(ctx, "bad", nil, queue.EnqueueOptions{Replace: &queue.ReplaceOptions{Args: true}}); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Replace without Unique: %v", err)
		}
	})
}

func TestDebounceMovesScheduledAt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		now := time.Now()
		c := newClient(t, drv, queue.Config{Now: func() time.Time { return now }})
		ctx := ctxT(t)
		opts := queue.EnqueueOptions{
			ScheduleIn: 10 * time.Minute,
			Unique:     &queue.UniqueOptions{ArgKeys: []string{"order_id"}},
			Replace:    &queue.ReplaceOptions{ScheduledAt: true, Args: true},
		}
		first, err := c.Enqueue(ctx, "refund", refundArgs{7, ""}, opts)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(3 * time.Minute)
		second, err := c.Enqueue(ctx, "refund", refundArgs{7, "cold food"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !second.Duplicate || second.ID != first.ID {
			t.Fatalf("second request should update job %d: %+v", first.ID, second)
		}
		if !second.ScheduledAt.After(first.ScheduledAt) || second.ScheduledAt.Sub(first.ScheduledAt) < 3*time.Minute-time.Second {
			t.Fatalf("scheduled_at %s did not move later than %s", second.ScheduledAt, first.ScheduledAt)
		}
		if second.State != acidic.JobScheduled || !jsonEqual(second.Args, `{"reason": "cold food", "order_id": 7}`) {
			t.Fatalf("replaced job: state %s args %s", second.State, second.Args)
		}
		if countRows(t, drv, "jobs") != 1 {
			t.Fatal("debounce inserted a second job")
		}
	})
}

func TestAtMostOnceAndRetryOfDiscardedWork(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		fail := true
		_ = queue.HandleArgs(ws, "refund", func(ctx context.Context, job *acidic.Job, a refundArgs) error {
			if fail {
				return errors.New("unknown order")
			}
			return nil
		}, queue.KindOptions{MaxAttempts: 1, Unique: &queue.UniqueOptions{ArgKeys: []string{"order_id"}, States: queue.AllStates()}})
		c := newClient(t, drv, queue.Config{Workers: ws})
		ctx := ctxT(t)
		j, err := c.Enqueue(ctx, "refund", refundArgs{99, "doesn't matter"}, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Drain(ctx, "default", queue.DrainOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Discarded != 1 || res.Success != 0 || res.Total() != 1 {
			t.Fatalf("drain %+v, want discard 1, success 0", res)
		}
		again, err := c.Enqueue(ctx, "refund", refundArgs{99, "still doesn't matter"}, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.ID != j.ID || again.State != acidic.JobDiscarded {
			t.Fatalf("a second refund after the discard: %+v; want the discarded job back", again)
		}
		available, _ := c.List(ctx, acidic.JobFilter{States: []acidic.JobState{acidic.JobAvailable, acidic.JobScheduled}})
		if len(available) != 0 {
			t.Fatalf("%d jobs enqueued after the discard", len(available))
		}
		// An operator retries the discarded job: it gets one more attempt.
		fail = false
		retried, err := c.RetryMany(ctx, acidic.JobFilter{Kind: "refund"})
		if err != nil {
			t.Fatal(err)
		}
		if len(retried) != 1 || retried[0].MaxAttempts != 2 || retried[0].Attempt != 1 || retried[0].State != acidic.JobAvailable {
			t.Fatalf("retried %+v; want available, attempt kept at 1, max attempts 2", retried)
		}
		res, err = c.Drain(ctx, "default", queue.DrainOptions{})
		if err != nil || res.Success != 1 {
			t.Fatalf("drain after retry: %+v %v", res, err)
		}
	})
}

func TestDrainRunsScheduledWhenAsked(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		snoozes := 0
		_ = ws.Handle("poll", func(ctx context.Context, job *acidic.Job) error {
			if snoozes < 2 {
				snoozes++
				return queue.Snooze(time.Hour)
			}
			return nil
		}, queue.KindOptions{})
		_ = ws.Handle("later", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		c := newClient(t, drv, queue.Config{Workers: ws})
		ctx := ctxT(t)
		if _, err := c.Enqueue(ctx, "later", nil, queue.EnqueueOptions{ScheduleIn: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Enqueue(ctx, "poll", nil, queue.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := c.Drain(ctx, "default", queue.DrainOptions{})
		if err != nil || res.Snoozed != 1 || res.Total() != 1 {
			t.Fatalf("drain without scheduled: %+v %v", res, err)
		}
		res, err = c.Drain(ctx, "default", queue.DrainOptions{WithScheduled: true})
		if err != nil || res.Snoozed != 1 || res.Success != 2 {
			t.Fatalf("drain with scheduled: %+v %v", res, err)
		}
	})
}

// EnqueueMany with unique and plain jobs mixed returns them in the caller's
// order, applies the kinds' options without writing them into the caller's
// params, and reports the duplicate.
func TestEnqueueManyMixesUniqueAndPlainJobs(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		_ = ws.Handle("once", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{MaxAttempts: 2, Unique: &queue.UniqueOptions{}})
		c := newClient(t, drv, queue.Config{Workers: ws})
		ctx := ctxT(t)
		params := []queue.EnqueueParams{
			{Kind: "plain", Args: map[string]int{"n": 1}},
			{Kind: "once", Args: map[string]int{"n": 2}},
			{Kind: "plain", Args: map[string]int{"n": 3}},
			{Kind: "once", Args: map[string]int{"n": 2}},
		}
		jobs, err := c.EnqueueMany(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range params {
			if p.Opts.Unique != nil || p.Opts.MaxAttempts != 0 {
				t.Errorf("params[%d] was changed to %+v", i, p.Opts)
			}
			if jobs[i].Kind != p.Kind || !jsonEqual(jobs[i].Args, fmt.Sprintf(`{"n": %d}`, p.Args.(map[string]int)["n"])) {
				t.Errorf("jobs[%d] = %s %s, want %s %v", i, jobs[i].Kind, jobs[i].Args, p.Kind, p.Args)
			}
		}
		if jobs[1].MaxAttempts != 2 || jobs[1].Duplicate || !jobs[3].Duplicate || jobs[3].ID != jobs[1].ID {
			t.Fatalf("unique jobs: %+v and %+v; want the second a duplicate of the first, with the kind's 2 attempts", jobs[1], jobs[3])
		}
		if n := countRows(t, drv, "jobs"); n != 3 {
			t.Fatalf("%d jobs stored, want 3", n)
		}
	})
}

// A duplicate enqueue that replaces nothing writes nothing (the row keeps its
// xmin: no new row version) and wakes nobody; one that replaces fields writes
// the row once and wakes workers only when the job became available.
func TestDuplicateEnqueueWritesNothingAndWakesNobody(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it reads the rows' xmin to prove that a duplicate enqueue rewrote nothing.
	drv := testdb.New(t, testdb.Options{})
	c := newClient(t, drv, queue.Config{Logger: quietLogger()})
	ctx := ctxT(t)
	listener, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close(context.Background()) })
	// testdb's schema names are short enough to name channels as they are.
	channel := drv.Schema() + "." + storage.TopicInsert
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// wakeUps returns how many insert notifications arrived since the last
	// call: everything committed before the marker is delivered before it.
	marker := 0
	wakeUps := func() int {
		t.Helper()
		marker++
		m := fmt.Sprintf("marker-%d", marker)
		execSQL(t, drv, "SELECT pg_notify($1, $2)", channel, m)
		n := 0
		for {
			got, err := listener.WaitForNotification(ctx)
			if err != nil {
				t.Fatalf("waiting for notifications: %v", err)
			}
			if got.Payload == m {
				return n
			}
			n++
		}
	}
	xmin := func(id int64) string {
		t.Helper()
		var x string
		if err := drv.Pool().QueryRow(ctx, "SELECT xmin::text FROM "+table(drv, "jobs")+" WHERE id = $1", id).Scan(&x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	enqueue := func(args refundArgs, o queue.EnqueueOptions) *acidic.Job {
		t.Helper()
		j, err := c.Enqueue(ctx, "refund", args, o)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}

	due := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	unique := &queue.UniqueOptions{ArgKeys: []string{"order_id"}}
	every := &queue.ReplaceOptions{ScheduledAt: true, Args: true, Priority: true, MaxAttempts: true}
	opts := queue.EnqueueOptions{Unique: unique, ScheduledAt: due, Priority: queue.PriorityOf(2), MaxAttempts: 5}
	first := enqueue(refundArgs{1, "late"}, opts)
	if n := wakeUps(); n != 1 || first.State != acidic.JobAvailable {
		t.Fatalf("a new available job sent %d wake-ups (state %s), want 1", n, first.State)
	}
	before := xmin(first.ID)
	for i := range 20 {
		o := opts
		if i%2 == 1 { // replacing every field with the value it has
			o.Replace = every
		}
		if j := enqueue(refundArgs{1, "late"}, o); !j.Duplicate || j.ID != first.ID {
			t.Fatalf("duplicate %d: job %d duplicate %v, want a duplicate of %d", i, j.ID, j.Duplicate, first.ID)
		}
	}
	if after := xmin(first.ID); after != before {
		t.Errorf("duplicates that changed nothing wrote the row: xmin %s, was %s", after, before)
	}
	if n := wakeUps(); n != 0 {
		t.Errorf("duplicates that changed nothing sent %d wake-ups, want none", n)
	}

	// Replacing the args of a job that is already available writes the row
	// once and wakes nobody.
	o := opts
	o.Replace = &queue.ReplaceOptions{Args: true}
	if j := enqueue(refundArgs{1, "very late"}, o); !j.Duplicate || j.Args == nil || !jsonEqual(j.Args, `{"order_id":1,"reason":"very late"}`) {
		t.Fatalf("replacing args: %+v", j)
	}
	if after := xmin(first.ID); after == before {
		t.Error("replacing the args did not write the row")
	}
	if n := wakeUps(); n != 0 {
		t.Errorf("replacing the args of an available job sent %d wake-ups, want none", n)
	}

	// A scheduled job debounced to now became available: one wake-up.
	later := queue.EnqueueOptions{Unique: unique, ScheduledAt: time.Now().Add(time.Hour), Replace: &queue.ReplaceOptions{ScheduledAt: true}}
	second := enqueue(refundArgs{2, ""}, later)
	if n := wakeUps(); n != 0 || second.State != acidic.JobScheduled {
		t.Fatalf("a new scheduled job sent %d wake-ups (state %s), want none", n, second.State)
	}
	now := later
	now.ScheduledAt = due
	if j := enqueue(refundArgs{2, ""}, now); !j.Duplicate || j.ID != second.ID || j.State != acidic.JobAvailable {
		t.Fatalf("debouncing to now: job %d duplicate %v state %s", j.ID, j.Duplicate, j.State)
	}
	if n := wakeUps(); n != 1 {
		t.Errorf("a job debounced from later to now sent %d wake-ups, want 1", n)
	}
}

// Concurrent enqueues of one key that each replace the args make exactly one
// job, report every other enqueue as a duplicate, and leave the args of one
// of them.
func TestUniqueReplaceUnderConcurrentEnqueues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 20}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		opts := queue.EnqueueOptions{
			Unique:  &queue.UniqueOptions{ArgKeys: []string{"order_id"}},
			Replace: &queue.ReplaceOptions{Args: true, Priority: true},
		}
		const n = 16
		jobs := enqueueAtOnce(t, drv, n, func(i int) (*acidic.Job, error) {
			o := opts
			o.Priority = queue.PriorityOf(i % 4)
			return c.Enqueue(context.Background(), "refund", refundArgs{1, fmt.Sprint(i)}, o)
		})
		final, err := drv.JobGet(context.Background(), storage.JobGetParams{ID: jobs[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		var args refundArgs
		if err := json.Unmarshal(final.Args, &args); err != nil {
			t.Fatal(err)
		}
		var reason int
		if _, err := fmt.Sscan(args.Reason, &reason); err != nil || reason < 0 || reason >= n || final.Priority != reason%4 {
			t.Fatalf("final job: args %s priority %d; want the args and priority of one enqueue", final.Args, final.Priority)
		}
	})
}

// enqueueAtOnce runs n enqueues of one unique job at once (enqueue is
// given its number) and fails the test unless every one succeeded and
// returned the same job, exactly one of them inserting it: the only job
// stored. It returns the jobs the enqueues returned.
func enqueueAtOnce(t *testing.T, drv storage.Driver, n int, enqueue func(i int) (*acidic.Job, error)) []*acidic.Job {
	t.Helper()
	var wg sync.WaitGroup
	jobs := make([]*acidic.Job, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			jobs[i], errs[i] = enqueue(i)
		}()
	}
	close(start)
	wg.Wait()
	inserted := 0
	for i, j := range jobs {
		if errs[i] != nil {
			t.Fatalf("enqueue %d: %v", i, errs[i])
		}
		if !j.Duplicate {
			inserted++
		}
		if j.ID != jobs[0].ID {
			t.Fatalf("enqueue %d returned job %d, others %d", i, j.ID, jobs[0].ID)
		}
	}
	if inserted != 1 || countRows(t, drv, "jobs") != 1 {
		t.Fatalf("%d enqueues inserted, %d rows; want exactly one", inserted, countRows(t, drv, "jobs"))
	}
	return jobs
}
