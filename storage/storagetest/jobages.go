package storagetest

import (
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var jobAgeTests = []conformanceTest{
	{"JobQueueAges", testJobQueueAges},
}

// testJobQueueAges: per queue, the jobs a fetch could claim now (available,
// or scheduled or retryable and due) are counted, with the earliest due time
// and its age on the store's clock; jobs not due yet, running or finished
// are not, and a queue with none is left out.
func testJobQueueAges(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	ages := func() []acidic.QueueAge {
		t.Helper()
		got, err := drv.JobQueueAges(ctx, storage.JobQueueAgesParams{})
		if err != nil {
			t.Fatalf("JobQueueAges: %v", err)
		}
		return got
	}
	if got := ages(); len(got) != 0 {
		t.Fatalf("empty store: %+v, want none", got)
	}

	hourAgo := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	minuteAgo := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	at := func(in storage.JobInsert, state acidic.JobState, when time.Time) storage.JobInsert {
		in.State, in.ScheduledAt = state, when
		return in
	}
	insertJobs(ctx, t, drv,
		at(job("a"), acidic.JobAvailable, hourAgo),
		at(job("a"), acidic.JobAvailable, time.Time{}),
		at(job("a"), acidic.JobScheduled, time.Now().Add(time.Hour)), // not due
		at(job("b"), acidic.JobScheduled, minuteAgo),                 // due
		at(job("c"), acidic.JobScheduled, time.Now().Add(time.Hour)), // not due
		job("d"),
		job("e"),
	)
	fetchOne(ctx, t, drv, "d", "w") // running
	done := fetchOne(ctx, t, drv, "e", "w")
	if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(done.ID)}}); err != nil {
		t.Fatal(err)
	}
	// A retryable job of queue f, due again since an hour ago.
	insertJobs(ctx, t, drv, job("f"))
	failed := fetchOne(ctx, t, drv, "f", "w")
	if ok, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: attempt1(failed.ID), State: acidic.JobRetryable, ScheduledAt: hourAgo,
		Error: &acidic.AttemptError{Attempt: 1, At: time.Now(), Error: "boom"}}); err != nil || !ok {
		t.Fatalf("JobFinish(retryable) = %v, %v", ok, err)
	}

	got := ages()
	want := []struct {
		queue     string
		available int64
		oldest    time.Time
	}{{"a", 2, hourAgo}, {"b", 1, minuteAgo}, {"f", 1, hourAgo}}
	if len(got) != len(want) {
		t.Fatalf("JobQueueAges = %+v, want queues a, b and f", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Queue != w.queue || g.Available != w.available || !g.OldestDueAt.Equal(w.oldest) {
			t.Errorf("queue %s: %+v, want %d available, the oldest due at %v", w.queue, g, w.available, w.oldest)
		}
		// The age is the store's clock less the due time: the clocks of
		// the test and the store may differ a little.
		if wantAge := time.Since(w.oldest); g.OldestAge < wantAge-time.Minute/2 || g.OldestAge > wantAge+time.Minute/2 {
			t.Errorf("queue %s: oldest age %s, want about %s", w.queue, g.OldestAge, wantAge)
		}
	}
}
