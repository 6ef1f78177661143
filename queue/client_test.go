package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

func TestEnqueueBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{})
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		cases := []struct {
			name string
			ctx  context.Context
			kind string
			args any
			opts queue.EnqueueOptions
			want error
		}{
			{"empty kind", context.Background(), "", nil, queue.EnqueueOptions{}, queue.ErrInvalid},
			{"args do not encode", context.Background(), "k", map[string]any{"c": make(chan int)}, queue.EnqueueOptions{}, queue.ErrInvalid},
			{"invalid raw JSON", context.Background(), "k", json.RawMessage(`{"a":`), queue.EnqueueOptions{}, queue.ErrInvalid},
			{"negative priority", context.Background(), "k", nil, queue.EnqueueOptions{Priority: queue.PriorityOf(-1)}, queue.ErrInvalid},
			{"priority too low", context.Background(), "k", nil, queue.EnqueueOptions{Priority: queue.PriorityOf(4)}, queue.ErrInvalid},
			{"negative max attempts", context.Background(), "k", nil, queue.EnqueueOptions{MaxAttempts: -1}, queue.ErrInvalid},
			{"max attempts past int32", context.Background(), "k", nil, queue.EnqueueOptions{MaxAttempts: 1 << 32}, queue.ErrInvalid},
			{"negative schedule", context.Background(), "k", nil, queue.EnqueueOptions{ScheduleIn: -time.Second}, queue.ErrInvalid},
			{"bad meta", context.Background(), "k", nil, queue.EnqueueOptions{Meta: json.RawMessage("nope")}, queue.ErrInvalid},
			{"cancelled context", cancelled, "k", nil, queue.EnqueueOptions{}, context.Canceled},
		}
		for _, tc := range cases {
			_, err := c.Enqueue(tc.ctx, tc.kind, tc.args, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
		// A batch with one bad job inserts none of them.
		_, err := c.EnqueueMany(context.Background(), []queue.EnqueueParams{{Kind: "ok"}, {Kind: ""}})
		if !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("batch: err = %v, want ErrInvalid", err)
		}
		if n := countRows(t, drv, "jobs"); n != 0 {
			t.Fatalf("bad input wrote %d jobs", n)
		}

		// A closed store: a clear error, nothing written (read back
		// through a second handle on the same store).
		other := testdb.Reopen(t, drv, testdb.Options{})
		testdb.Close(t, drv)
		_, err = c.Enqueue(context.Background(), "k", nil, queue.EnqueueOptions{})
		if !errors.Is(err, acidic.ErrClosed) {
			t.Fatalf("closed store: err = %v, want acidic.ErrClosed", err)
		}
		if n := countRows(t, other, "jobs"); n != 0 {
			t.Fatalf("closed store: %d jobs", n)
		}
	})
}

func TestEnqueueDefaultsAndOptions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		c := newClient(t, drv, queue.Config{Now: func() time.Time { return now }})
		ctx := ctxT(t)
		j, err := c.Enqueue(ctx, "k", map[string]int{"n": 1}, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Queue != queue.DefaultQueue || j.Priority != 0 || j.MaxAttempts != queue.DefaultMaxAttempts || j.State != acidic.JobAvailable || !jsonEqual(j.Args, `{"n": 1}`) {
			t.Fatalf("defaults: %+v", j)
		}
		j, err = c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{Queue: "q", Priority: queue.PriorityOf(3), MaxAttempts: 1, ScheduleIn: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if j.Queue != "q" || j.Priority != 3 || j.MaxAttempts != 1 || j.State != acidic.JobScheduled || !j.ScheduledAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("options: %+v", j)
		}
		jobs, err := c.EnqueueMany(ctx, []queue.EnqueueParams{{Kind: "a"}, {Kind: "b"}, {Kind: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 3 || jobs[0].Kind != "a" || jobs[1].Kind != "b" || jobs[2].Kind != "c" {
			t.Fatalf("EnqueueMany order: %v", jobs)
		}
	})
}

func TestJobEnqueuedInRolledBackTxNeverRuns(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		var ran sync.Map
		_ = ws.Handle("k", func(ctx context.Context, job *acidic.Job) error {
			ran.Store(string(job.Args), true)
			return nil
		}, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, 2))
		start(t, c)
		ctx := ctxT(t)

		tx := testdb.Begin(t, drv)
		if _, err := c.EnqueueTx(ctx, tx, "k", "rolled-back", queue.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		tx = testdb.Begin(t, drv)
		committed, err := c.EnqueueTx(ctx, tx, "k", "committed", queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		waitJob(t, drv, committed.ID, acidic.JobCompleted)
		if _, ok := ran.Load(`"rolled-back"`); ok {
			t.Fatal("a job enqueued in a rolled-back transaction ran")
		}
		if n := countRows(t, drv, "jobs"); n != 1 {
			t.Fatalf("%d jobs in the table, want 1", n)
		}
	})
}

func TestRetriesFollowBackoffAndStopAtMaxAttempts(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		var mu sync.Mutex
		var times []time.Time
		var backoffAttempts []int
		const wait = 30 * time.Millisecond
		_ = ws.Handle("flaky", func(ctx context.Context, job *acidic.Job) error {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			return errors.New("gateway timeout")
		}, queue.KindOptions{Backoff: func(attempt int, err error) time.Duration {
			mu.Lock()
			backoffAttempts = append(backoffAttempts, attempt)
			mu.Unlock()
			return wait
		}})
		c := newClient(t, drv, fastConfig(ws, 1))
		start(t, c)
		j, err := c.Enqueue(ctxT(t), "flaky", nil, queue.EnqueueOptions{MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		j = waitJob(t, drv, j.ID, acidic.JobDiscarded)
		if j.Attempt != 3 || len(j.Errors) != 3 || j.FinalizedAt == nil {
			t.Fatalf("discarded job: attempt %d, errors %v, finalized %v", j.Attempt, j.Errors, j.FinalizedAt)
		}
		for i, e := range j.Errors {
			if e.Attempt != i+1 || e.Error != "gateway timeout" {
				t.Errorf("error %d: %+v", i, e)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(times) != 3 {
			t.Fatalf("ran %d times, want 3", len(times))
		}
		if len(backoffAttempts) != 2 || backoffAttempts[0] != 1 || backoffAttempts[1] != 2 {
			t.Fatalf("backoff asked for attempts %v, want [1 2]", backoffAttempts)
		}
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap < wait {
				t.Errorf("attempt %d came %s after the previous one, before the %s backoff", i+1, gap, wait)
			}
		}
	})
}

func TestDefaultBackoffGrowsWithJitter(t *testing.T) {
	t.Parallel()
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 30: time.Hour} {
		got := queue.DefaultBackoff(attempt, nil)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("attempt %d: %s, want %s ±20%%", attempt, got, want)
		}
	}
}

func TestSnoozeDoesNotSpendAnAttempt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		var runs atomic.Int32
		_ = ws.Handle("poll", func(ctx context.Context, job *acidic.Job) error {
			if runs.Add(1) <= 2 {
				return queue.Snooze(10 * time.Millisecond)
			}
			return nil
		}, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, 1))
		start(t, c)
		j, err := c.Enqueue(ctxT(t), "poll", nil, queue.EnqueueOptions{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		j = waitJob(t, drv, j.ID, acidic.JobCompleted, acidic.JobDiscarded)
		if j.State != acidic.JobCompleted || runs.Load() != 3 {
			t.Fatalf("state %s after %d runs; want completed after 3", j.State, runs.Load())
		}
		if j.MaxAttempts-j.Attempt != 0 || j.MaxAttempts != 3 || len(j.Errors) != 0 {
			t.Fatalf("attempt %d of %d, errors %v: snoozes must not use up attempts", j.Attempt, j.MaxAttempts, j.Errors)
		}
		if !jsonHas(j.Meta, "snoozes", 2) {
			t.Fatalf("meta %s does not count 2 snoozes", j.Meta)
		}
	})
}

func TestPriorityAndScheduleOrderTheWork(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		ran := recordOrder(ws, "k")
		c := newClient(t, drv, fastConfig(ws, 1))
		ctx := ctxT(t)
		base := time.Now().Add(-time.Hour)
		params := []queue.EnqueueParams{
			{Kind: "k", Args: "p2-early", Opts: queue.EnqueueOptions{Priority: queue.PriorityOf(2), ScheduledAt: base}},
			{Kind: "k", Args: "p0-late", Opts: queue.EnqueueOptions{Priority: queue.PriorityOf(0), ScheduledAt: base.Add(2 * time.Minute)}},
			{Kind: "k", Args: "p3", Opts: queue.EnqueueOptions{Priority: queue.PriorityOf(3), ScheduledAt: base}},
			{Kind: "k", Args: "p0-early", Opts: queue.EnqueueOptions{Priority: queue.PriorityOf(0), ScheduledAt: base.Add(time.Minute)}},
			{Kind: "k", Args: "p1", Opts: queue.EnqueueOptions{Priority: queue.PriorityOf(1), ScheduledAt: base}},
		}
		if _, err := c.EnqueueMany(ctx, params); err != nil {
			t.Fatal(err)
		}
		// The lowest priority too: under load the first five may still be
		// running when it becomes due, and it must come after p3 then as well.
		future, err := c.Enqueue(ctx, "k", "future", queue.EnqueueOptions{Priority: queue.PriorityOf(3), ScheduleIn: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start(t, c)
		done := waitJob(t, drv, future.ID, acidic.JobCompleted)
		order := ran()
		want := []string{"p0-early", "p0-late", "p1", "p2-early", "p3", "future"}
		if strings.Join(order, ",") != strings.Join(want, ",") {
			t.Fatalf("order %v, want %v", order, want)
		}
		if done.AttemptedAt.Before(future.ScheduledAt) {
			t.Fatalf("scheduled job ran at %s, before its time %s", done.AttemptedAt, future.ScheduledAt)
		}
	})
}

func TestShutdownLetsRunningJobsFinish(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws, started, release := slowWorkers("slow")
		c := newClient(t, drv, fastConfig(ws, 1))
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		j, err := c.Enqueue(ctxT(t), "slow", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		<-started
		stopped := make(chan error)
		go func() { stopped <- c.Stop(ctxT(t)) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a job was running", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if got, _ := drv.JobGet(context.Background(), storage.JobGetParams{ID: j.ID}); got.State != acidic.JobCompleted {
			t.Fatalf("job %s after graceful stop, want completed", got.State)
		}
	})
}

func TestShutdownDeadlineCancelsRunningJobs(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws, started := stuckWorkers("stuck")
		c := newClient(t, drv, fastConfig(ws, 1))
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		j, err := c.Enqueue(ctxT(t), "stuck", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := c.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop: %v, want deadline exceeded", err)
		}
		checkCutShortByStop(t, drv, j)
		if err := c.Stop(context.Background()); err != nil {
			t.Fatalf("second Stop: %v, want nil", err)
		}
	})
}

func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		started := make(chan struct{})
		cause := make(chan error, 1)
		_ = ws.Handle("long", func(ctx context.Context, job *acidic.Job) error {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil // ignored: the job was cancelled
		}, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, 1))
		start(t, c)
		ctx := ctxT(t)
		j, err := c.Enqueue(ctx, "long", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		<-started
		if _, err := c.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-cause:
			if !errors.Is(err, queue.ErrJobCancelled) {
				t.Fatalf("cause %v, want ErrJobCancelled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("running job's context was not cancelled")
		}
		time.Sleep(20 * time.Millisecond) // let the ignored completion be attempted
		if got, _ := drv.JobGet(ctx, storage.JobGetParams{ID: j.ID}); got.State != acidic.JobCancelled {
			t.Fatalf("state %s, want cancelled", got.State)
		}
	})
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		type args struct {
			N int `json:"n"`
		}
		_ = queue.HandleArgs(ws, "typed", func(ctx context.Context, job *acidic.Job, a args) error { return nil }, queue.KindOptions{})
		_ = ws.Handle("cancel", func(ctx context.Context, job *acidic.Job) error {
			return queue.Cancel(errors.New("order gone"))
		}, queue.KindOptions{})
		_ = ws.Handle("discard", func(ctx context.Context, job *acidic.Job) error {
			return queue.Discard(errors.New("card declined"))
		}, queue.KindOptions{})
		_ = ws.Handle("panic", func(ctx context.Context, job *acidic.Job) error { panic("boom") }, queue.KindOptions{})
		if err := ws.Handle("cancel", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{}); !errors.Is(err, queue.ErrDuplicateKind) {
			t.Fatalf("duplicate kind: %v", err)
		}
		c := newClient(t, drv, fastConfig(ws, 4))
		start(t, c)
		ctx := ctxT(t)
		enqueue := func(kind string, a any) int64 {
			j, err := c.Enqueue(ctx, kind, a, queue.EnqueueOptions{MaxAttempts: 5})
			if err != nil {
				t.Fatal(err)
			}
			return j.ID
		}
		cases := []struct {
			id       int64
			state    acidic.JobState
			contains string
		}{
			{enqueue("typed", args{N: 1}), acidic.JobCompleted, ""},
			{enqueue("typed", map[string]string{"n": "not a number"}), acidic.JobDiscarded, queue.ErrArgsDecode.Error()},
			{enqueue("cancel", nil), acidic.JobCancelled, "order gone"},
			{enqueue("discard", nil), acidic.JobDiscarded, "card declined"},
			{enqueue("panic", nil), acidic.JobRetryable, "panicked: boom"},
			{enqueue("nobody-handles-this", nil), acidic.JobRetryable, queue.ErrUnknownKind.Error()},
		}
		for _, tc := range cases {
			j := waitJob(t, drv, tc.id, tc.state)
			if j.Attempt != 1 {
				t.Errorf("job %s: attempt %d, want 1", j.Kind, j.Attempt)
			}
			if tc.contains != "" && (len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, tc.contains)) {
				t.Errorf("job %s: errors %v, want one containing %q", j.Kind, j.Errors, tc.contains)
			}
		}
	})
}

func TestLateCompletionFromLostClaimChangesNothing(t *testing.T) {
	t.Parallel()
	for _, late := range []struct {
		name string
		err  error
	}{
		{"late success", nil},
		{"late failure", errors.New("late failure from the old claim")},
	} {
		t.Run(late.name, func(t *testing.T) {
			t.Parallel()
			drv := testdb.New(t, testdb.Options{})
			// Client A claims the job and hangs; it never heartbeats in time.
			wsA := queue.NewWorkers()
			startedA := make(chan struct{})
			releaseA := make(chan struct{})
			_ = wsA.Handle("k", func(ctx context.Context, job *acidic.Job) error {
				close(startedA)
				<-releaseA
				return late.err
			}, queue.KindOptions{})
			cfgA := fastConfig(wsA, 1)
			cfgA.HeartbeatInterval, cfgA.RescueAfter = time.Hour, 2*time.Hour
			a := newClient(t, drv, cfgA)
			start(t, a)
			// Cleanups run last-registered first: should the test fail
			// early, A's work returns before A is stopped.
			var releaseOnce sync.Once
			release := func() { releaseOnce.Do(func() { close(releaseA) }) }
			t.Cleanup(release)
			ctx := ctxT(t)
			j, err := a.Enqueue(ctx, "k", nil, queue.EnqueueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			<-startedA

			// Client B rescues it and runs it; the job fails once in B so the
			// row's history differs from anything A could write.
			wsB := queue.NewWorkers()
			var bRuns atomic.Int32
			_ = wsB.Handle("k", func(ctx context.Context, job *acidic.Job) error {
				if bRuns.Add(1) == 1 {
					return errors.New("b fails once")
				}
				return nil
			}, queue.KindOptions{Backoff: func(int, error) time.Duration { return time.Millisecond }})
			// A's heartbeat is made stale by hand: a short RescueAfter on B
			// would, on a loaded machine, also rescue B's own attempts.
			b := newClient(t, drv, fastConfig(wsB, 1))
			execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET heartbeat_at = "+testdb.Earlier(drv, "now()", 2*time.Hour)+" WHERE id = $1", j.ID)
			res := b.Maintain(ctx)
			if len(res.Rescued) != 1 || res.Rescued[0].ID != j.ID {
				t.Fatalf("rescued %v, want job %d", res.Rescued, j.ID)
			}
			start(t, b)
			done := waitJob(t, drv, j.ID, acidic.JobCompleted)

			// A's late outcome must not overwrite B's completion.
			release()
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := a.Stop(stopCtx); err != nil {
				t.Fatal(err)
			}
			after, _ := drv.JobGet(ctx, storage.JobGetParams{ID: j.ID})
			if after.State != acidic.JobCompleted || after.Attempt != 3 || len(after.Errors) != len(done.Errors) ||
				!after.FinalizedAt.Equal(*done.FinalizedAt) {
				t.Fatalf("after the late write: state %s attempt %d errors %v; want it unchanged: %s attempt %d errors %v",
					after.State, after.Attempt, after.Errors, done.State, done.Attempt, done.Errors)
			}
		})
	}
}

// A client whose claim was rescued may claim the same job again and run
// both attempts at once: the heartbeat tells the first attempt it lost its
// claim, and keeps the second one's alive.
func TestHeartbeatTracksAttemptsNotJobs(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		firstCause := make(chan error, 1)
		secondStarted := make(chan struct{})
		var secondCancelled atomic.Bool
		_ = ws.Handle("k", func(ctx context.Context, job *acidic.Job) error {
			if job.Attempt == 1 {
				<-ctx.Done()
				firstCause <- context.Cause(ctx)
				return ctx.Err()
			}
			close(secondStarted)
			// Outlive many heartbeats (20ms apart) and the first attempt's end.
			select {
			case <-ctx.Done():
				secondCancelled.Store(true)
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
				return nil
			}
		}, queue.KindOptions{Backoff: func(int, error) time.Duration { return 0 }})
		c := newClient(t, drv, fastConfig(ws, 2))
		start(t, c)
		ctx := ctxT(t)
		j, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, drv, j.ID, acidic.JobRunning)
		// Rescue the running first attempt as if its heartbeats had lapsed; the
		// same client then claims the job again. (The rescue skips a row a
		// heartbeat holds at that instant: try again.)
		for {
			rescued, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: 0, Limit: 10})
			if err != nil {
				t.Fatalf("JobRescue: %v", err)
			}
			if len(rescued) == 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		select {
		case <-secondStarted:
		case <-ctx.Done():
			t.Fatal("the second attempt never started")
		}
		select {
		case cause := <-firstCause:
			if !errors.Is(cause, queue.ErrClaimLost) {
				t.Errorf("first attempt cancelled with %v, want ErrClaimLost", cause)
			}
		case <-ctx.Done():
			t.Fatal("the first attempt was never told it lost its claim")
		}
		done := waitJob(t, drv, j.ID, acidic.JobCompleted)
		if secondCancelled.Load() || done.Attempt != 2 {
			t.Fatalf("second attempt cancelled %v; job completed at attempt %d, want 2", secondCancelled.Load(), done.Attempt)
		}
	})
}

func TestRetryAndCancelByOperator(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		var fail atomic.Bool
		fail.Store(true)
		_ = ws.Handle("k", func(ctx context.Context, job *acidic.Job) error {
			if fail.Load() {
				return errors.New("down")
			}
			return nil
		}, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, 1))
		start(t, c)
		ctx := ctxT(t)
		j, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, drv, j.ID, acidic.JobDiscarded)
		fail.Store(false)
		retried, err := c.Retry(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if retried.State != acidic.JobAvailable || retried.MaxAttempts != 2 {
			t.Fatalf("retried: state %s max %d, want available with one more attempt", retried.State, retried.MaxAttempts)
		}
		done := waitJob(t, drv, j.ID, acidic.JobCompleted)
		if done.Attempt != 2 || len(done.Errors) != 1 {
			t.Fatalf("after retry: attempt %d errors %v", done.Attempt, done.Errors)
		}
		later, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{ScheduleIn: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		cancelled, err := c.Cancel(ctx, later.ID)
		if err != nil || cancelled.State != acidic.JobCancelled {
			t.Fatalf("cancel scheduled: %v %v", cancelled, err)
		}
		again, err := c.Cancel(ctx, done.ID)
		if err != nil || again.State != acidic.JobCompleted {
			t.Fatalf("cancel of a completed job changed it: %v %v", again, err)
		}
		if _, err := c.Get(ctx, 1<<60); !errors.Is(err, acidic.ErrNotFound) {
			t.Fatalf("Get unknown: %v", err)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		bad := []queue.Config{
			{Queues: map[string]queue.QueueConfig{"q": {MaxWorkers: 1}}},
			{Workers: ws, Queues: map[string]queue.QueueConfig{"q": {MaxWorkers: 0}}},
			{Workers: ws, Queues: map[string]queue.QueueConfig{"": {MaxWorkers: 1}}},
			{HeartbeatInterval: time.Minute, RescueAfter: time.Second},
			{PollInterval: -1},
			{StopTimeout: -time.Second},
		}
		for i, cfg := range bad {
			if _, err := queue.New(drv, cfg); !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("config %d: %v, want ErrInvalid", i, err)
			}
		}
		if _, err := queue.New(nil, queue.Config{}); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("nil driver: %v", err)
		}
	})
}
