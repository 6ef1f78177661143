package queue_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// finishedJob enqueues a job of queue q, ends it in state and backdates its
// finalization by age.
func finishedJob(t *testing.T, drv storage.Driver, c *queue.Client, q string, state acidic.JobState, age time.Duration) int64 {
	t.Helper()
	ctx := ctxT(t)
	j, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	switch state {
	case acidic.JobCancelled:
		if _, err := c.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	case acidic.JobCompleted, acidic.JobDiscarded:
		claimed, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: j.ID, WorkerID: "w"})
		if err != nil {
			t.Fatal(err)
		}
		a := storage.JobAttempt{ID: j.ID, Attempt: claimed.Attempt}
		if state == acidic.JobCompleted {
			_, err = drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{a}})
		} else {
			_, err = drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: a, State: acidic.JobDiscarded})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if testdb.IsSQLite(drv) { // times are microseconds
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET finalized_at = $2 WHERE id = $1", j.ID, time.Now().Add(-age).UnixMicro())
	} else {
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET finalized_at = now() - $2::bigint * interval '1 microsecond' WHERE id = $1",
			j.ID, age.Microseconds())
	}
	return j.ID
}

func jobIDs(t *testing.T, c *queue.Client) []int64 {
	t.Helper()
	jobs, err := c.List(ctxT(t), acidic.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

// TestMaintainPrunesJobsByState: a maintenance pass prunes each final state
// by its own retention, keeps a state set to KeepForever and the queues in
// KeepQueues, and, with the zero Retention, keeps completed and cancelled
// jobs a day and discarded ones a week.
func TestMaintainPrunesJobsByState(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := queue.Config{Logger: quietLogger(), Retention: queue.Retention{
			Completed:  time.Hour,
			Cancelled:  3 * time.Hour,
			Discarded:  queue.KeepForever,
			KeepQueues: []string{"audit"},
		}}
		c := newClient(t, drv, cfg)
		const day = 24 * time.Hour
		var (
			completedOld   = finishedJob(t, drv, c, "q", acidic.JobCompleted, 2*time.Hour)
			completedNew   = finishedJob(t, drv, c, "q", acidic.JobCompleted, 30*time.Minute)
			cancelledMid   = finishedJob(t, drv, c, "q", acidic.JobCancelled, 2*time.Hour)
			cancelledOld   = finishedJob(t, drv, c, "q", acidic.JobCancelled, 4*time.Hour)
			discardedOld   = finishedJob(t, drv, c, "q", acidic.JobDiscarded, 100*day)
			discardedWeek  = finishedJob(t, drv, c, "q", acidic.JobDiscarded, 6*day)
			auditCompleted = finishedJob(t, drv, c, "audit", acidic.JobCompleted, 100*day)
			waiting        = finishedJob(t, drv, c, "q", acidic.JobAvailable, 0)
		)
		res := c.Maintain(ctxT(t))
		if res.Pruned != 2 {
			t.Errorf("Maintain pruned %d jobs, want 2", res.Pruned)
		}
		want := []int64{completedNew, cancelledMid, discardedOld, discardedWeek, auditCompleted, waiting}
		if got := jobIDs(t, c); !slices.Equal(got, want) {
			t.Errorf("after Maintain: jobs %v, want %v (completed %d and cancelled %d pruned)", got, want, completedOld, cancelledOld)
		}

		// The defaults: a day for completed and cancelled, a week for discarded.
		defaults := newClient(t, drv, queue.Config{Logger: quietLogger()})
		oldCompleted := finishedJob(t, drv, c, "q", acidic.JobCompleted, 25*time.Hour)
		oldCancelled := finishedJob(t, drv, c, "q", acidic.JobCancelled, 25*time.Hour)
		if res := defaults.Maintain(ctxT(t)); res.Pruned != 4 {
			t.Errorf("Maintain with the default retention pruned %d jobs, want 4", res.Pruned)
		}
		want = []int64{completedNew, cancelledMid, discardedWeek, waiting}
		if got := jobIDs(t, c); !slices.Equal(got, want) {
			t.Errorf("after Maintain with the defaults: jobs %v, want %v (%d, %d, the 100-day-old discarded and audit jobs pruned)",
				got, want, oldCompleted, oldCancelled)
		}
	})
}

// TestRetentionConfigRefusesBadValues: a negative retention other than
// KeepForever and a kept queue that is no valid name are ErrInvalid at New.
func TestRetentionConfigRefusesBadValues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		for what, r := range map[string]queue.Retention{
			"a negative completed retention": {Completed: -time.Second},
			"a negative cancelled retention": {Cancelled: -2},
			"a negative discarded retention": {Discarded: -time.Hour},
			"an empty kept queue":            {KeepQueues: []string{""}},
			"a kept queue with a NUL":        {KeepQueues: []string{"a\x00"}},
		} {
			if _, err := queue.New(drv, queue.Config{Retention: r}); !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("New with %s: %v, want ErrInvalid", what, err)
			}
		}
		if _, err := queue.New(drv, queue.Config{Retention: queue.Retention{Completed: queue.KeepForever, Cancelled: queue.KeepForever, Discarded: queue.KeepForever}}); err != nil {
			t.Errorf("New keeping every state for ever: %v", err)
		}
	})
}

// TestCancelMany cancels the unfinished jobs a filter matches, skips the
// finished ones, and refuses an empty filter without changing anything.
func TestCancelMany(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		ctx := ctxT(t)
		var mail []int64
		for range 3 {
			j, err := c.Enqueue(ctx, "send", nil, queue.EnqueueOptions{Queue: "mail"})
			if err != nil {
				t.Fatal(err)
			}
			mail = append(mail, j.ID)
		}
		later, err := c.Enqueue(ctx, "send", nil, queue.EnqueueOptions{Queue: "mail", ScheduleIn: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		mail = append(mail, later.ID)
		done := finishedJob(t, drv, c, "mail", acidic.JobCompleted, 0)
		sms, err := c.Enqueue(ctx, "send", nil, queue.EnqueueOptions{Queue: "sms"})
		if err != nil {
			t.Fatal(err)
		}

		if got, err := c.CancelMany(ctx, acidic.JobFilter{}); !errors.Is(err, queue.ErrInvalid) || len(got) != 0 {
			t.Errorf("CancelMany without a filter = %d jobs, %v; want ErrInvalid", len(got), err)
		}
		if j, _ := c.Get(ctx, mail[0]); j.State != acidic.JobAvailable {
			t.Fatalf("the refused CancelMany changed job %d: %s", j.ID, j.State)
		}

		got, err := c.CancelMany(ctx, acidic.JobFilter{Queue: "mail"})
		if err != nil {
			t.Fatalf("CancelMany(queue mail): %v", err)
		}
		var ids []int64
		for _, j := range got {
			ids = append(ids, j.ID)
			if j.State != acidic.JobCancelled {
				t.Errorf("returned job %d is %s", j.ID, j.State)
			}
		}
		if !slices.Equal(ids, mail) {
			t.Errorf("CancelMany(queue mail) cancelled %v, want %v", ids, mail)
		}
		for id, want := range map[int64]acidic.JobState{done: acidic.JobCompleted, sms.ID: acidic.JobAvailable} {
			if j, _ := c.Get(ctx, id); j.State != want {
				t.Errorf("job %d outside the filter or finished is %s, want %s", id, j.State, want)
			}
		}
		// Again: everything it matches has finished.
		if got, err := c.CancelMany(ctx, acidic.JobFilter{Queue: "mail", States: []acidic.JobState{acidic.JobCancelled, acidic.JobCompleted}}); err != nil || len(got) != 0 {
			t.Errorf("CancelMany of finished jobs = %d jobs, %v; want none", len(got), err)
		}
	})
}

// TestCancelManyStopsARunningJob: a running job matched by the filter is
// cancelled and its worker's context ends with ErrJobCancelled.
func TestCancelManyStopsARunningJob(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		started := make(chan struct{})
		cause := make(chan error, 1)
		if err := ws.Handle("hang", func(ctx context.Context, _ *acidic.Job) error {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return ctx.Err()
		}, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, drv, fastConfig(ws, 1))
		start(t, c)
		ctx := ctxT(t)
		j, err := c.Enqueue(ctx, "hang", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		<-started
		got, err := c.CancelMany(ctx, acidic.JobFilter{Kind: "hang"})
		if err != nil || len(got) != 1 || got[0].ID != j.ID {
			t.Fatalf("CancelMany(kind hang) = %v, %v; want job %d", got, err, j.ID)
		}
		select {
		case err := <-cause:
			if !errors.Is(err, queue.ErrJobCancelled) {
				t.Errorf("the running job's context ended with %v, want ErrJobCancelled", err)
			}
		case <-ctx.Done():
			t.Fatal("the running job was never told it was cancelled")
		}
		waitJob(t, drv, j.ID, acidic.JobCancelled)
	})
}
