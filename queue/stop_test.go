package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// syncBuffer is a bytes.Buffer safe for the client's goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Stop returns even when its context never ends and a job ignores the
// cancellation of its own: past Config.StopTimeout it cancels the running
// jobs, waits its grace period, logs the jobs still running (id, kind,
// attempt, how long) and returns an error naming them. A context with a
// deadline ends the wait in the same way, and its error stays visible.
func TestGuaranteeStopReturnsWhenAJobIgnoresItsContext(t *testing.T) {
	t.Parallel()
	for name, stopCtx := range map[string]func() (context.Context, context.CancelFunc){
		"context that never ends": func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
		"context with a deadline": func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			drv := testdb.New(t, testdb.Options{})
			ws := queue.NewWorkers()
			started := make(chan struct{})
			release := make(chan struct{})
			t.Cleanup(func() { close(release) }) // after the test: the job may end
			_ = ws.Handle("stubborn", func(ctx context.Context, job *acidic.Job) error {
				close(started)
				<-release // ignores ctx
				return nil
			}, queue.KindOptions{})
			var logs syncBuffer
			cfg := fastConfig(ws, 1)
			cfg.StopTimeout = 100 * time.Millisecond
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			c := newClient(t, drv, cfg)
			if err := c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			j, err := c.Enqueue(ctxT(t), "stubborn", nil, queue.EnqueueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the job never started")
			}
			ctx, cancel := stopCtx()
			defer cancel()
			stopped := make(chan error, 1)
			go func() { stopped <- c.Stop(ctx) }()
			var stopErr error
			select {
			case stopErr = <-stopped:
			case <-time.After(60 * time.Second):
				t.Fatal("Stop did not return within a minute while a job ignored its context")
			}
			want := queue.ErrStopTimeout
			if _, ok := ctx.Deadline(); ok {
				want = context.DeadlineExceeded
			}
			var running *queue.JobsRunningError
			if !errors.As(stopErr, &running) || !errors.Is(stopErr, want) {
				t.Fatalf("Stop = %v, want a *JobsRunningError wrapping %v", stopErr, want)
			}
			if len(running.Jobs) != 1 || running.Jobs[0].ID != j.ID || running.Jobs[0].Kind != "stubborn" ||
				running.Jobs[0].Attempt != 1 || running.Jobs[0].Running <= 0 {
				t.Fatalf("Stop named %+v, want job %d (stubborn, attempt 1) and how long it ran", running.Jobs, j.ID)
			}
			if msg := stopErr.Error(); !strings.Contains(msg, fmt.Sprintf("job %d (kind stubborn, attempt 1, running ", j.ID)) {
				t.Errorf("Stop's error %q does not name the job", msg)
			}
			line := ""
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "still running") {
					line = l
				}
			}
			for _, field := range []string{fmt.Sprintf("job=%d", j.ID), "kind=stubborn", "attempt=1", "running="} {
				if !strings.Contains(line, field) {
					t.Errorf("log %q lacks %s; logs:\n%s", line, field, logs.String())
				}
			}
			if got, err := drv.JobGet(context.Background(), storage.JobGetParams{ID: j.ID}); err != nil || got.State != acidic.JobRunning {
				t.Errorf("the abandoned job: %+v, %v; want it left running, for a rescue", got, err)
			}
		})
	}
}

// Past Config.StopTimeout, a job that honours its context is cancelled and
// its outcome recorded, as at a deadline; Stop reports ErrStopTimeout.
func TestStopTimeoutCancelsRunningJobs(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws, started := stuckWorkers("stuck")
		cfg := fastConfig(ws, 1)
		cfg.StopTimeout = 50 * time.Millisecond
		c := newClient(t, drv, cfg)
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		j, err := c.Enqueue(ctxT(t), "stuck", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		<-started
		stopped := make(chan error, 1)
		go func() { stopped <- c.Stop(context.Background()) }()
		select {
		case err = <-stopped:
		case <-time.After(60 * time.Second):
			t.Fatal("Stop did not return within a minute of its StopTimeout")
		}
		if !errors.Is(err, queue.ErrStopTimeout) {
			t.Fatalf("Stop: %v, want ErrStopTimeout", err)
		}
		var running *queue.JobsRunningError
		if errors.As(err, &running) {
			t.Fatalf("Stop reported jobs still running: %v", err)
		}
		checkCutShortByStop(t, drv, j)
	})
}

// Stop may be called twice, also at once: every call returns nil once the
// client has stopped (the running job finished and its completion is
// written), and a later call returns nil at once. Stop on a client never
// started returns ErrNotStarted.
func TestStopTwice(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws, started, release := slowWorkers("slow")
		c := newClient(t, drv, fastConfig(ws, 1))
		if err := c.Stop(ctxT(t)); !errors.Is(err, queue.ErrNotStarted) {
			t.Fatalf("Stop before Start: %v, want ErrNotStarted", err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); !errors.Is(err, queue.ErrAlreadyStarted) {
			t.Fatalf("second Start: %v, want ErrAlreadyStarted", err)
		}
		j, err := c.Enqueue(ctxT(t), "slow", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		<-started

		const stops = 2
		type result struct {
			err   error
			state acidic.JobState
		}
		results := make(chan result, stops)
		for range stops {
			go func() {
				err := c.Stop(ctxT(t))
				got, getErr := drv.JobGet(context.Background(), storage.JobGetParams{ID: j.ID})
				if getErr != nil {
					t.Errorf("JobGet: %v", getErr)
					got = &acidic.Job{}
				}
				results <- result{err, got.State}
			}()
		}
		close(release)
		for range stops {
			r := <-results
			if r.err != nil {
				t.Errorf("concurrent Stop: %v, want nil", r.err)
			}
			if r.state != acidic.JobCompleted {
				t.Errorf("a Stop returned with the job %s, before the client stopped", r.state)
			}
		}
		if err := c.Stop(ctxT(t)); err != nil {
			t.Fatalf("Stop after stopped: %v, want nil", err)
		}
	})
}

// A client that works no queue (it only enqueues) is started until Stop
// like any other: a second Start is refused.
func TestStartTwiceWithoutQueues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := fastConfig(queue.NewWorkers(), 1)
		cfg.Queues = nil
		c := newClient(t, drv, cfg)
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// A round trip to the database: the client's goroutines have had time
		// to give up, had they nothing to wait for.
		if _, err := c.List(ctxT(t), acidic.JobFilter{}); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); !errors.Is(err, queue.ErrAlreadyStarted) {
			t.Fatalf("second Start: %v, want ErrAlreadyStarted", err)
		}
		for i := range 2 {
			if err := c.Stop(ctxT(t)); err != nil {
				t.Fatalf("Stop %d: %v", i+1, err)
			}
		}
	})
}

// A job whose end EndedFunc cannot write does not hold back the rescue of
// the others: they are rescued one at a time, the failing one is set aside
// (still running) and rescued once its end can be written.
func TestRescueSetsAsideAJobWhoseEndFails(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		var mu sync.Mutex
		var poisoned int64
		var ended []int64
		cfg := fastConfig(queue.NewWorkers(), 1)
		cfg.Queues = nil
		cfg.RescueAfter = time.Minute
		cfg.EndedFunc = func(ctx context.Context, tx storage.Tx, jobs []*acidic.Job) error {
			mu.Lock()
			defer mu.Unlock()
			for _, j := range jobs {
				if j.ID == poisoned {
					return errors.New("cannot end this one")
				}
			}
			for _, j := range jobs {
				ended = append(ended, j.ID)
			}
			return nil
		}
		c := newClient(t, drv, cfg)
		var ids []int64
		for i := range 3 {
			j, err := c.Enqueue(ctx, "k", i, queue.EnqueueOptions{MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: j.ID, WorkerID: "dead"}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET heartbeat_at = "+testdb.Earlier(drv, "now()", 1*time.Hour))
		mu.Lock()
		poisoned = ids[1]
		mu.Unlock()
		res := c.Maintain(ctx)
		if len(res.Rescued) != 2 {
			t.Fatalf("rescued %d jobs, want the 2 whose end could be written", len(res.Rescued))
		}
		if j, _ := drv.JobGet(ctx, storage.JobGetParams{ID: ids[1]}); j.State != acidic.JobRunning {
			t.Fatalf("the job whose end failed is %s, want still running", j.State)
		}
		mu.Lock()
		poisoned = 0
		mu.Unlock()
		if res := c.Maintain(ctx); len(res.Rescued) != 1 || res.Rescued[0].ID != ids[1] {
			t.Fatalf("second pass rescued %v, want the job set aside", res.Rescued)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(ended) != 3 {
			t.Errorf("EndedFunc saw %v, want all three jobs once", ended)
		}
	})
}
