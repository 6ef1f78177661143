package queue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// A client never runs more jobs of a queue at once than its MaxWorkers, even
// with a backlog large enough to fill many more slots.
func TestGuaranteeMaxWorkersBoundsJobsInFlight(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		const maxWorkers, n = 3, 20
		var inFlight, peak atomic.Int32
		_ = ws.Handle("busy", func(ctx context.Context, job *acidic.Job) error {
			now := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				old := peak.Load()
				if now <= old || peak.CompareAndSwap(old, now) {
					break
				}
			}
			time.Sleep(25 * time.Millisecond)
			return nil
		}, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, maxWorkers))
		ctx := ctxT(t)
		// The whole backlog waits before the client starts, so its first fetch
		// could claim all of it.
		params := make([]queue.EnqueueParams, n)
		for i := range params {
			params[i] = queue.EnqueueParams{Kind: "busy"}
		}
		jobs, err := c.EnqueueMany(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		start(t, c)
		for _, j := range jobs {
			waitJob(t, drv, j.ID, acidic.JobCompleted)
		}
		if got := peak.Load(); got > maxWorkers {
			t.Fatalf("%d jobs ran at once, want at most MaxWorkers = %d", got, maxWorkers)
		}
		if got := peak.Load(); got < 2 {
			t.Fatalf("at most %d job ran at once; the test never exercised concurrency", got)
		}
	})
}

// KindOptions.Timeout cancels the attempt's context when it runs out; the
// attempt then fails like any other (retryable, its error recorded).
func TestGuaranteeKindTimeoutCancelsAttempt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		ctxErr := make(chan error, 1)
		_ = ws.Handle("slow", func(ctx context.Context, job *acidic.Job) error {
			select {
			case <-ctx.Done():
				ctxErr <- ctx.Err()
				return ctx.Err()
			case <-time.After(2 * time.Second):
				ctxErr <- nil
				return nil // the timeout never fired
			}
		}, queue.KindOptions{
			Timeout: 50 * time.Millisecond,
			Backoff: func(int, error) time.Duration { return time.Hour },
		})
		c := newClient(t, drv, fastConfig(ws, 1))
		start(t, c)
		began := time.Now()
		j, err := c.Enqueue(ctxT(t), "slow", nil, queue.EnqueueOptions{MaxAttempts: 5})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-ctxErr:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("job context ended with %v, want context.DeadlineExceeded from the kind's timeout", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the job never returned")
		}
		if took := time.Since(began); took > 1500*time.Millisecond {
			t.Fatalf("the 50ms timeout took effect only after %s", took)
		}
		got := waitJob(t, drv, j.ID, acidic.JobRetryable, acidic.JobCompleted, acidic.JobDiscarded)
		if got.State != acidic.JobRetryable || got.Attempt != 1 {
			t.Fatalf("timed-out job: state %s attempt %d, want retryable after attempt 1", got.State, got.Attempt)
		}
		if len(got.Errors) != 1 || got.Errors[0].Attempt != 1 || !strings.Contains(got.Errors[0].Error, context.DeadlineExceeded.Error()) {
			t.Fatalf("timed-out job errors %+v, want one for attempt 1 naming %q", got.Errors, context.DeadlineExceeded)
		}
	})
}

// Snoozes are not failures: a job that snoozed twice and then failed for the
// first time is backed off as after a first failure (Attempt minus snoozes),
// not as after a third.
func TestGuaranteeBackoffAfterSnoozesCountsOnlyFailures(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		var runs atomic.Int32
		var mu sync.Mutex
		var backoffAttempts []int
		_ = ws.Handle("poll", func(ctx context.Context, job *acidic.Job) error {
			if runs.Add(1) <= 2 {
				return queue.Snooze(5 * time.Millisecond)
			}
			return errors.New("upstream down")
		}, queue.KindOptions{Backoff: func(attempt int, err error) time.Duration {
			mu.Lock()
			backoffAttempts = append(backoffAttempts, attempt)
			mu.Unlock()
			return time.Hour // keep it retryable: one failure is all this test needs
		}})
		c := newClient(t, drv, fastConfig(ws, 1))
		start(t, c)
		j, err := c.Enqueue(ctxT(t), "poll", nil, queue.EnqueueOptions{MaxAttempts: 5})
		if err != nil {
			t.Fatal(err)
		}
		got := waitJob(t, drv, j.ID, acidic.JobRetryable, acidic.JobDiscarded, acidic.JobCompleted)
		if got.State != acidic.JobRetryable || got.Attempt != 3 || runs.Load() != 3 {
			t.Fatalf("state %s attempt %d after %d runs; want retryable at attempt 3 (two snoozes, one failure)", got.State, got.Attempt, runs.Load())
		}
		if !jsonHas(got.Meta, "snoozes", 2) {
			t.Fatalf("meta %s does not count 2 snoozes", got.Meta)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(backoffAttempts) != 1 || backoffAttempts[0] != 1 {
			t.Fatalf("backoff asked for attempts %v, want [1]: snoozes must not count as failed attempts", backoffAttempts)
		}
	})
}

// Retrying a unique job whose key another job has taken in the meantime
// must not make two live jobs with one key: Retry and RetryMany report
// acidic.ErrConflict and leave both jobs as they were.
func TestGuaranteeRetryOfUniqueJobWhoseKeyIsTakenConflicts(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		_ = ws.Handle("refund", func(ctx context.Context, job *acidic.Job) error {
			return errors.New("unknown order")
		}, queue.KindOptions{})
		// Default unique states: a discarded job does not hold its key.
		unique := &queue.UniqueOptions{ArgKeys: []string{"order_id"}}
		c := newClient(t, drv, queue.Config{Workers: ws})
		ctx := ctxT(t)
		old, err := c.Enqueue(ctx, "refund", refundArgs{OrderID: 5}, queue.EnqueueOptions{MaxAttempts: 1, Unique: unique})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := c.Drain(ctx, "default", queue.DrainOptions{}); err != nil || res.Discarded != 1 {
			t.Fatalf("drain: %+v %v; want the job discarded", res, err)
		}
		fresh, err := c.Enqueue(ctx, "refund", refundArgs{OrderID: 5, Reason: "again"}, queue.EnqueueOptions{ScheduleIn: time.Hour, Unique: unique})
		if err != nil {
			t.Fatal(err)
		}
		if fresh.Duplicate || fresh.ID == old.ID {
			t.Fatalf("enqueue after the discard returned %+v; want a new job (discarded jobs do not hold the key)", fresh)
		}

		if j, err := c.Retry(ctx, old.ID); !errors.Is(err, acidic.ErrConflict) {
			t.Errorf("Retry of the discarded job: job %+v, err %v; want acidic.ErrConflict", j, err)
		}
		retried, err := c.RetryMany(ctx, acidic.JobFilter{Kind: "refund"})
		if !errors.Is(err, acidic.ErrConflict) || len(retried) != 0 {
			t.Errorf("RetryMany: retried %d, err %v; want none and acidic.ErrConflict", len(retried), err)
		}
		if got, _ := drv.JobGet(ctx, storage.JobGetParams{ID: old.ID}); got.State != acidic.JobDiscarded {
			t.Errorf("old job is %s after the refused retries, want discarded", got.State)
		}
		if got, _ := drv.JobGet(ctx, storage.JobGetParams{ID: fresh.ID}); got.State != acidic.JobScheduled {
			t.Errorf("new job is %s after the refused retries, want scheduled", got.State)
		}
	})
}

// RetryMany pages through every matching job, however small the page.
func TestGuaranteeRetryManyPagesThroughAllMatches(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{})
		ctx := ctxT(t)
		later := queue.EnqueueOptions{ScheduleIn: time.Hour}
		// Five matching jobs, with one of another kind among them that must not
		// be retried.
		var params []queue.EnqueueParams
		for _, kind := range []string{"paged", "paged", "other", "paged", "paged", "paged"} {
			params = append(params, queue.EnqueueParams{Kind: kind, Opts: later})
		}
		jobs, err := c.EnqueueMany(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]bool{}
		for _, j := range jobs {
			if _, err := c.Cancel(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
			if j.Kind == "paged" {
				want[j.ID] = true
			}
		}
		retried, err := c.RetryMany(ctx, acidic.JobFilter{Kind: "paged", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(retried) != len(want) {
			t.Fatalf("RetryMany with Limit 2 retried %d jobs, want all %d", len(retried), len(want))
		}
		for _, r := range retried {
			if !want[r.ID] || r.State != acidic.JobAvailable {
				t.Fatalf("retried job %d (%s) is %s", r.ID, r.Kind, r.State)
			}
			delete(want, r.ID)
		}
		left, err := c.List(ctx, acidic.JobFilter{States: []acidic.JobState{acidic.JobCancelled}})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0].Kind != "other" {
			t.Fatalf("cancelled jobs left: %v, want only the job of kind other", left)
		}
	})
}

// A job rescued into discarded (its worker stopped heartbeating on its last
// attempt) fails its pending graph dependents in the same maintenance pass,
// each as its OnDependencyFailure says, down the chain.
func TestGuaranteeRescueIntoDiscardedFailsGraphDependents(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		started := make(chan struct{})
		release := make(chan struct{})
		var ranDependent atomic.Bool
		_ = ws.Handle("hang", func(ctx context.Context, job *acidic.Job) error {
			close(started)
			<-release
			return errors.New("released at the end of the test")
		}, queue.KindOptions{})
		_ = ws.Handle("after", func(ctx context.Context, job *acidic.Job) error {
			ranDependent.Store(true)
			return nil
		}, queue.KindOptions{})
		// The worker's heartbeat never comes in time, as if it had died.
		cfg := fastConfig(ws, 2)
		cfg.HeartbeatInterval, cfg.RescueAfter = time.Hour, 2*time.Hour
		worker := newClient(t, drv, cfg)
		ctx := ctxT(t)
		var g queue.Graph
		g.Add(queue.GraphJob{Name: "a", Kind: "hang", Opts: queue.EnqueueOptions{MaxAttempts: 1}}).
			Add(queue.GraphJob{Name: "b", Kind: "after", After: []string{"a"}}).
			Add(queue.GraphJob{Name: "c", Kind: "after", After: []string{"a"}, OnDependencyFailure: queue.DiscardDependents}).
			Add(queue.GraphJob{Name: "d", Kind: "after", After: []string{"b"}})
		jobs, err := worker.EnqueueGraph(ctx, &g)
		if err != nil {
			t.Fatal(err)
		}
		start(t, worker)
		t.Cleanup(func() { close(release) }) // runs before the worker stops
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("job a never started")
		}
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET heartbeat_at = "+testdb.Earlier(drv, "now()", 1*time.Hour)+" WHERE id = $1", jobs["a"].ID)

		rcfg := queue.Config{HeartbeatInterval: 10 * time.Millisecond, RescueAfter: time.Minute, Logger: quietLogger()}
		rescuer := newClient(t, drv, rcfg)
		res := rescuer.Maintain(ctx)
		if len(res.Rescued) != 1 || res.Rescued[0].ID != jobs["a"].ID || res.Rescued[0].State != acidic.JobDiscarded {
			t.Fatalf("rescued %+v, want job a discarded", res.Rescued)
		}
		// Read right after Maintain: nothing else resolves dependencies meanwhile
		// (the worker's maintenance runs hourly and job a is still hanging).
		for name, want := range map[string]acidic.JobState{
			"b": acidic.JobCancelled, "c": acidic.JobDiscarded, "d": acidic.JobCancelled,
		} {
			got, err := drv.JobGet(ctx, storage.JobGetParams{ID: jobs[name].ID})
			if err != nil {
				t.Fatal(err)
			}
			if got.State != want || got.FinalizedAt == nil {
				t.Errorf("dependent %s: state %s finalized %v after the rescue, want %s", name, got.State, got.FinalizedAt, want)
			}
			if got.State != acidic.JobPending && (len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Error, "dependency")) {
				t.Errorf("dependent %s: errors %v, want one naming the failed dependency", name, got.Errors)
			}
		}
		if ranDependent.Load() {
			t.Fatal("a dependent of the discarded job ran")
		}
	})
}

// waitQueueListening waits until a client's listener on drv's schema is
// subscribed to the control topic, the last one it LISTENs to, so
// notifications sent from now on reach it.
func waitQueueListening(t *testing.T, drv *postgres.Driver) {
	t.Helper()
	// The schemas testdb makes are short enough to name the channel as
	// they are (see channelPrefix in storage/postgres).
	listen := "LISTEN " + pgx.Identifier{drv.Schema() + "." + storage.TopicControl}.Sanitize()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		err := drv.Pool().QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND query = $1", listen).Scan(&n)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listener ran %q within 5s", listen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An insert notification wakes an idle worker: a job enqueued while the
// client waits for its next poll (an hour away) runs at once.
func TestGuaranteeInsertNotificationWakesIdleWorker(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		ran := make(chan struct{}, 1)
		_ = ws.Handle("wake", func(ctx context.Context, job *acidic.Job) error {
			ran <- struct{}{}
			return nil
		}, queue.KindOptions{})
		cfg := fastConfig(ws, 1)
		cfg.PollInterval = time.Hour
		drv, listening := watchListening(drv)
		c := newClient(t, drv, cfg)
		start(t, c)
		listening(t)
		// Past the first poll and the fetch the listener's connection triggers:
		// from here on only a notification makes the producer fetch.
		time.Sleep(200 * time.Millisecond)
		j, err := c.Enqueue(ctxT(t), "wake", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("the idle worker did not run a job enqueued 5s ago: the insert notification did not wake it")
		}
		waitJob(t, drv, j.ID, acidic.JobCompleted)
	})
}

// Cancelling a running job stops its worker through the control
// notification: the job's context is cancelled with cause ErrJobCancelled
// at once, not at the next heartbeat (an hour away here).
func TestGuaranteeCancelStopsRunningJobThroughNotification(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		started := make(chan struct{})
		release := make(chan struct{})
		cause := make(chan error, 1)
		_ = ws.Handle("block", func(ctx context.Context, job *acidic.Job) error {
			close(started)
			select {
			case <-ctx.Done():
				cause <- context.Cause(ctx)
			case <-release: // the end of the test
			}
			return nil
		}, queue.KindOptions{})
		cfg := fastConfig(ws, 1)
		cfg.PollInterval = time.Hour
		cfg.HeartbeatInterval, cfg.RescueAfter = time.Hour, 2*time.Hour
		drv, listening := watchListening(drv)
		c := newClient(t, drv, cfg)
		ctx := ctxT(t)
		// Waiting before the start: the client's first fetch claims it.
		j, err := c.Enqueue(ctx, "block", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start(t, c)
		t.Cleanup(func() { close(release) }) // runs before the client stops
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the job never started")
		}
		listening(t)
		got, err := c.Cancel(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != acidic.JobCancelled {
			t.Fatalf("Cancel returned the job %s, want cancelled", got.State)
		}
		select {
		case err := <-cause:
			if !errors.Is(err, queue.ErrJobCancelled) {
				t.Fatalf("the job's context ended with cause %v, want queue.ErrJobCancelled", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the running job's context was not cancelled within 3s of Cancel")
		}
	})
}

// Stop stops fetching at once: while it waits for a running job, a job
// enqueued meanwhile stays available for other clients, even with a free
// worker slot.
func TestGuaranteeStopStopsFetchingWhileJobsFinish(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		started := make(chan struct{})
		release := make(chan struct{})
		var releaseOnce sync.Once
		releaseFirst := func() { releaseOnce.Do(func() { close(release) }) }
		t.Cleanup(releaseFirst)
		var secondRan atomic.Bool
		_ = ws.Handle("first", func(ctx context.Context, job *acidic.Job) error {
			close(started)
			<-release
			return nil
		}, queue.KindOptions{})
		_ = ws.Handle("second", func(ctx context.Context, job *acidic.Job) error {
			secondRan.Store(true)
			return nil
		}, queue.KindOptions{})
		c := newClient(t, drv, fastConfig(ws, 2))
		ctx := ctxT(t)
		start(t, c)
		first, err := c.Enqueue(ctx, "first", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the first job never started")
		}
		stopped := make(chan error, 1)
		go func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stopped <- c.Stop(stopCtx)
		}()
		// Let Stop begin (a fetch already under way may still finish).
		time.Sleep(50 * time.Millisecond)
		other := newClient(t, drv, queue.Config{Logger: quietLogger()})
		second, err := other.Enqueue(ctx, "second", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while the first job was still running", err)
		default:
		}
		if got, err := drv.JobGet(ctx, storage.JobGetParams{ID: second.ID}); err != nil || got.State != acidic.JobAvailable || secondRan.Load() {
			t.Fatalf("job enqueued during Stop: %+v (err %v, ran %v); want it available and never run", got, err, secondRan.Load())
		}
		releaseFirst()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Stop did not return within 5s of the first job finishing")
		}
		waitJob(t, drv, first.ID, acidic.JobCompleted)
		if got, err := drv.JobGet(ctx, storage.JobGetParams{ID: second.ID}); err != nil || got.State != acidic.JobAvailable || secondRan.Load() {
			t.Fatalf("job enqueued during Stop, after Stop: %+v (err %v, ran %v); want it available and never run", got, err, secondRan.Load())
		}
	})
}

// Drain counts each outcome in its own DrainResult field: a completion, a
// failure with attempts left, a Cancel, a Discard and a Snooze, drained
// together and then each alone (so no two fields can be swapped).
func TestGuaranteeDrainCountsEachOutcome(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		outcomes := map[string]error{
			"succeed": nil,
			"fail":    errors.New("try again"),
			"cancel":  queue.Cancel(errors.New("not wanted")),
			"discard": queue.Discard(errors.New("hopeless")),
			"snooze":  queue.Snooze(time.Hour),
		}
		for kind, err := range outcomes {
			_ = ws.Handle(kind, func(ctx context.Context, job *acidic.Job) error { return err }, queue.KindOptions{})
		}
		c := newClient(t, drv, queue.Config{Workers: ws, Logger: quietLogger()})
		ctx := ctxT(t)
		ids := map[string]int64{}
		for kind := range outcomes {
			j, err := c.Enqueue(ctx, kind, nil, queue.EnqueueOptions{MaxAttempts: 5})
			if err != nil {
				t.Fatal(err)
			}
			ids[kind] = j.ID
		}
		res, err := c.Drain(ctx, "default", queue.DrainOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := queue.DrainResult{Success: 1, Failure: 1, Snoozed: 1, Cancelled: 1, Discarded: 1}
		if res != want {
			t.Fatalf("drain %+v, want %+v", res, want)
		}
		for kind, state := range map[string]acidic.JobState{
			"succeed": acidic.JobCompleted, "fail": acidic.JobRetryable, "cancel": acidic.JobCancelled,
			"discard": acidic.JobDiscarded, "snooze": acidic.JobScheduled,
		} {
			if got, err := drv.JobGet(ctx, storage.JobGetParams{ID: ids[kind]}); err != nil || got.State != state {
				t.Errorf("job %s after the drain: %+v (err %v), want %s", kind, got, err, state)
			}
		}
		for kind, want := range map[string]queue.DrainResult{
			"succeed": {Success: 1}, "fail": {Failure: 1}, "cancel": {Cancelled: 1},
			"discard": {Discarded: 1}, "snooze": {Snoozed: 1},
		} {
			if _, err := c.Enqueue(ctx, kind, nil, queue.EnqueueOptions{MaxAttempts: 5}); err != nil {
				t.Fatal(err)
			}
			res, err := c.Drain(ctx, "default", queue.DrainOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res != want {
				t.Errorf("drain of one %s job: %+v, want %+v", kind, res, want)
			}
		}
	})
}

// DefaultBackoff is jittered: retries of many jobs failing together spread
// out instead of arriving at once. Each delay stays within ±20% of the
// exponential base (4s for attempt 3).
func TestGuaranteeDefaultBackoffIsJittered(t *testing.T) {
	t.Parallel()
	const attempt, base = 3, 4 * time.Second
	seen := map[time.Duration]bool{}
	for range 20 {
		d := queue.DefaultBackoff(attempt, errors.New("failed"))
		if d < base*8/10 || d > base*12/10 {
			t.Fatalf("DefaultBackoff(%d) = %s, want within 20%% of %s", attempt, d, base)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 calls of DefaultBackoff(%d) gave %d distinct delays, want jitter", attempt, len(seen))
	}
}

// Replace on a unique job overwrites Priority and MaxAttempts while the
// existing job waits, and leaves the job alone once it runs.
func TestGuaranteeUniqueReplacePriorityAndMaxAttemptsOnlyWhileWaiting(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		ctx := ctxT(t)
		unique := &queue.UniqueOptions{}
		args := map[string]int{"order_id": 7}
		replace := &queue.ReplaceOptions{Priority: true, MaxAttempts: true}
		orig, err := c.Enqueue(ctx, "debounce", args, queue.EnqueueOptions{Priority: queue.PriorityOf(1), MaxAttempts: 3, Unique: unique})
		if err != nil {
			t.Fatal(err)
		}
		dup, err := c.Enqueue(ctx, "debounce", args, queue.EnqueueOptions{Priority: queue.PriorityOf(2), MaxAttempts: 9, Unique: unique, Replace: replace})
		if err != nil {
			t.Fatal(err)
		}
		if !dup.Duplicate || dup.ID != orig.ID {
			t.Fatalf("second enqueue returned %+v, want the first job (%d) as a duplicate", dup, orig.ID)
		}
		got, err := drv.JobGet(ctx, storage.JobGetParams{ID: orig.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != acidic.JobAvailable || got.Priority != 2 || got.MaxAttempts != 9 {
			t.Fatalf("replaced job: state %s priority %d max attempts %d, want available, 2, 9", got.State, got.Priority, got.MaxAttempts)
		}

		claimed, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: queue.DefaultQueue, Max: 1, WorkerID: "worker-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 1 || claimed[0].ID != orig.ID {
			t.Fatalf("fetch claimed %v, want job %d", claimed, orig.ID)
		}
		before := claimed[0]
		replace = &queue.ReplaceOptions{Priority: true, MaxAttempts: true, ScheduledAt: true}
		again, err := c.Enqueue(ctx, "debounce", args, queue.EnqueueOptions{Priority: queue.PriorityOf(3), MaxAttempts: 5, ScheduleIn: time.Hour, Unique: unique, Replace: replace})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.ID != orig.ID {
			t.Fatalf("enqueue while running returned %+v, want the running job (%d) as a duplicate", again, orig.ID)
		}
		after, err := drv.JobGet(ctx, storage.JobGetParams{ID: orig.ID})
		if err != nil {
			t.Fatal(err)
		}
		if after.State != acidic.JobRunning || after.Priority != 2 || after.MaxAttempts != 9 ||
			after.Attempt != before.Attempt || after.AttemptedBy != "worker-1" || !after.ScheduledAt.Equal(before.ScheduledAt) {
			t.Fatalf("running job after a replacing enqueue: state %s priority %d max attempts %d attempt %d by %q scheduled %s;"+
				" want it unchanged: running, 2, 9, %d by worker-1, scheduled %s",
				after.State, after.Priority, after.MaxAttempts, after.Attempt, after.AttemptedBy, after.ScheduledAt,
				before.Attempt, before.ScheduledAt)
		}
	})
}
