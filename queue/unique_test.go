package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic/internal/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

type refundArgs struct {
	OrderID int    `json:"order_id"`
	Reason  string `json:"reason"`
}

func TestUniqueJobUnderConcurrentEnqueues(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{MaxConns: 20})
	c := newClient(t, drv, queue.Config{})
	opts := queue.EnqueueOptions{Unique: &queue.UniqueOptions{}}
	var wg sync.WaitGroup
	jobs := make([]*queue.Job, 16)
	errs := make([]error, 16)
	start := make(chan struct{})
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			jobs[i], errs[i] = c.Enqueue(context.Background(), "refund", refundArgs{OrderID: 1, Reason: "late"}, opts)
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
}

func TestUniqueOptions(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	c := newClient(t, drv, queue.Config{Now: func() time.Time { return now }})
	ctx := ctxT(t)
	enqueue := func(kind string, args any, o queue.EnqueueOptions) *queue.Job {
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
		{States: []storage.JobState{"sleeping"}},
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
}

func TestDebounceMovesScheduledAt(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
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
	if second.State != storage.JobScheduled || string(second.Args) != `{"reason": "cold food", "order_id": 7}` {
		t.Fatalf("replaced job: state %s args %s", second.State, second.Args)
	}
	if countRows(t, drv, "jobs") != 1 {
		t.Fatal("debounce inserted a second job")
	}
}

func TestAtMostOnceAndRetryOfDiscardedWork(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	ws := queue.NewWorkers()
	fail := true
	_ = queue.HandleArgs(ws, "refund", func(ctx context.Context, job *queue.Job, a refundArgs) error {
		if fail {
			return errors.New("unknown order")
		}
		return nil
	}, queue.KindOptions{})
	c := newClient(t, drv, queue.Config{Workers: ws, KindDefaults: map[string]queue.EnqueueOptions{
		"refund": {MaxAttempts: 1, Unique: &queue.UniqueOptions{ArgKeys: []string{"order_id"}, States: queue.AllStates()}},
	}})
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
	if !again.Duplicate || again.ID != j.ID || again.State != storage.JobDiscarded {
		t.Fatalf("a second refund after the discard: %+v; want the discarded job back", again)
	}
	available, _ := c.List(ctx, storage.JobFilter{States: []storage.JobState{storage.JobAvailable, storage.JobScheduled}})
	if len(available) != 0 {
		t.Fatalf("%d jobs enqueued after the discard", len(available))
	}
	// An operator retries the discarded job: it gets one more attempt.
	fail = false
	retried, err := c.RetryMany(ctx, storage.JobFilter{Kind: "refund"})
	if err != nil {
		t.Fatal(err)
	}
	if len(retried) != 1 || retried[0].MaxAttempts != 2 || retried[0].Attempt != 1 || retried[0].State != storage.JobAvailable {
		t.Fatalf("retried %+v; want available, attempt kept at 1, max attempts 2", retried)
	}
	res, err = c.Drain(ctx, "default", queue.DrainOptions{})
	if err != nil || res.Success != 1 {
		t.Fatalf("drain after retry: %+v %v", res, err)
	}
}

func TestDrainRunsScheduledWhenAsked(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	ws := queue.NewWorkers()
	snoozes := 0
	_ = ws.Handle("poll", func(ctx context.Context, job *queue.Job) error {
		if snoozes < 2 {
			snoozes++
			return queue.Snooze(time.Hour)
		}
		return nil
	}, queue.KindOptions{})
	_ = ws.Handle("later", func(ctx context.Context, job *queue.Job) error { return nil }, queue.KindOptions{})
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
}

// EnqueueMany with unique and plain jobs mixed returns them in the caller's
// order, applies the kinds' defaults without writing them into the caller's
// params, and reports the duplicate.
func TestEnqueueManyMixesUniqueAndPlainJobs(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	c := newClient(t, drv, queue.Config{Workers: queue.NewWorkers(), KindDefaults: map[string]queue.EnqueueOptions{
		"once": {MaxAttempts: 2, Unique: &queue.UniqueOptions{}},
	}})
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
		if jobs[i].Kind != p.Kind || string(jobs[i].Args) != fmt.Sprintf(`{"n": %d}`, p.Args.(map[string]int)["n"]) {
			t.Errorf("jobs[%d] = %s %s, want %s %v", i, jobs[i].Kind, jobs[i].Args, p.Kind, p.Args)
		}
	}
	if jobs[1].MaxAttempts != 2 || jobs[1].Duplicate || !jobs[3].Duplicate || jobs[3].ID != jobs[1].ID {
		t.Fatalf("unique jobs: %+v and %+v; want the second a duplicate of the first, with the kind's 2 attempts", jobs[1], jobs[3])
	}
	if n := countRows(t, drv, "jobs"); n != 3 {
		t.Fatalf("%d jobs stored, want 3", n)
	}
}
