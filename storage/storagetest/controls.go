package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var controlTests = []conformanceTest{
	{"QueuePause", testQueuePause},
	{"QueueScale", testQueueScale},
	{"QueueKnown", testQueueKnown},
	{"QueueControls", testQueueControls},
	{"QueueRegister", testQueueRegister},
	{"QueueControlsRefuseInvalidValues", testQueueControlsRefuseInvalidValues},
	{"QueueControlsConcurrent", testQueueControlsConcurrent},
	{"JobFetchPausedQueue", testJobFetchPausedQueue},
}

func register(ctx context.Context, t *testing.T, drv storage.Driver, queues ...string) {
	t.Helper()
	if err := drv.QueueRegister(ctx, storage.QueueRegisterParams{Queues: queues}); err != nil {
		t.Fatalf("QueueRegister(%v): %v", queues, err)
	}
}

func pause(ctx context.Context, t *testing.T, drv storage.Driver, queue string, paused bool) *acidic.QueueControl {
	t.Helper()
	c, err := drv.QueuePause(ctx, storage.QueuePauseParams{Queue: queue, Paused: paused})
	if err != nil {
		t.Fatalf("QueuePause(%s, %v): %v", queue, paused, err)
	}
	return c
}

func scale(ctx context.Context, t *testing.T, drv storage.Driver, queue string, workers int) *acidic.QueueControl {
	t.Helper()
	c, err := drv.QueueScale(ctx, storage.QueueScaleParams{Queue: queue, MaxWorkers: workers})
	if err != nil {
		t.Fatalf("QueueScale(%s, %d): %v", queue, workers, err)
	}
	return c
}

// controls reads the controls of queues (every queue when nil), as
// "queue paused=B workers=N" lines in queue order.
func controls(ctx context.Context, t *testing.T, drv storage.Driver, queues []string) []string {
	t.Helper()
	got, err := drv.QueueControls(ctx, storage.QueueControlsParams{Queues: queues})
	if err != nil {
		t.Fatalf("QueueControls(%v): %v", queues, err)
	}
	out := make([]string, len(got))
	for i, c := range got {
		out[i] = controlLine(c)
	}
	return out
}

func controlLine(c *acidic.QueueControl) string {
	return fmt.Sprintf("%s paused=%v workers=%d", c.Queue, c.Paused, c.MaxWorkers)
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testQueuePause: pause and resume write the row, keep the time of the
// first pause, notify TopicQueues with an empty payload, and leave the
// workers setting alone.
func testQueuePause(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	l := newListener(ctx, t, drv, storage.TopicQueues)
	register(ctx, t, drv, "mail")
	scale(ctx, t, drv, "mail", 3)
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicQueues}) {
		t.Fatalf("notification after QueueScale = %+v, want an empty one on %s", n, storage.TopicQueues)
	}

	p := pause(ctx, t, drv, "mail", true)
	if p.Queue != "mail" || !p.Paused || p.PausedAt == nil || p.MaxWorkers != 3 || p.UpdatedAt.Before(p.CreatedAt) {
		t.Fatalf("QueuePause = %+v, want mail paused with a PausedAt, still 3 workers", p)
	}
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicQueues}) {
		t.Fatalf("notification after QueuePause = %+v, want an empty one on %s", n, storage.TopicQueues)
	}
	again := pause(ctx, t, drv, "mail", true)
	if !again.Paused || again.PausedAt == nil || !again.PausedAt.Equal(*p.PausedAt) {
		t.Fatalf("QueuePause of a paused queue = %+v, want PausedAt kept at %v", again, p.PausedAt)
	}
	waitOne(ctx, t, l)
	if got := controls(ctx, t, drv, []string{"mail"}); !equalLines(got, []string{"mail paused=true workers=3"}) {
		t.Fatalf("QueueControls = %v, want mail paused with 3 workers", got)
	}

	r := pause(ctx, t, drv, "mail", false)
	if r.Paused || r.PausedAt != nil || r.MaxWorkers != 3 {
		t.Fatalf("QueuePause(false) = %+v, want mail resumed (no PausedAt), still 3 workers", r)
	}
	waitOne(ctx, t, l)
	if got := controls(ctx, t, drv, nil); !equalLines(got, []string{"mail paused=false workers=3"}) {
		t.Fatalf("QueueControls = %v, want mail resumed with 3 workers", got)
	}
}

// testQueueScale: scale sets and removes the workers per node and leaves the
// pause alone.
func testQueueScale(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	register(ctx, t, drv, "mail")
	pause(ctx, t, drv, "mail", true)
	if c := scale(ctx, t, drv, "mail", 7); c.MaxWorkers != 7 || !c.Paused {
		t.Fatalf("QueueScale(7) = %+v, want 7 workers, still paused", c)
	}
	if c := scale(ctx, t, drv, "mail", storage.MaxQueueWorkers); c.MaxWorkers != storage.MaxQueueWorkers {
		t.Fatalf("QueueScale(MaxQueueWorkers) = %+v", c)
	}
	if c := scale(ctx, t, drv, "mail", 0); c.MaxWorkers != 0 || !c.Paused {
		t.Fatalf("QueueScale(0) = %+v, want the setting removed (0), still paused", c)
	}
	if got := controls(ctx, t, drv, nil); !equalLines(got, []string{"mail paused=true workers=0"}) {
		t.Fatalf("QueueControls = %v", got)
	}
}

// testQueueKnown: a queue is known when registered, controlled before, or
// holding an unfinished job (waiting, running or pending); a control of any
// other queue is ErrUnknownQueue, writes nothing and notifies nobody.
func testQueueKnown(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	l := newListener(ctx, t, drv, storage.TopicQueues)

	waiting := job("waiting")
	scheduled := job("scheduled")
	scheduled.State = acidic.JobScheduled
	insertJobs(ctx, t, drv, waiting, scheduled, job("running"), job("finished"))
	fetchOne(ctx, t, drv, "running", "w")
	done := fetchOne(ctx, t, drv, "finished", "w")
	if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(done.ID)}}); err != nil {
		t.Fatalf("JobComplete: %v", err)
	}
	parent := insertJobs(ctx, t, drv, job("parent"))[0]
	pending := job("pending")
	pending.State, pending.DependsOn = acidic.JobPending, []int64{parent.ID}
	insertJobs(ctx, t, drv, pending)

	for _, q := range []string{"ghost", "finished"} {
		_, err := drv.QueuePause(ctx, storage.QueuePauseParams{Queue: q, Paused: true})
		if !errors.Is(err, acidic.ErrUnknownQueue) {
			t.Errorf("QueuePause(%s) = %v, want ErrUnknownQueue", q, err)
		}
		_, err = drv.QueueScale(ctx, storage.QueueScaleParams{Queue: q, MaxWorkers: 2})
		if !errors.Is(err, acidic.ErrUnknownQueue) {
			t.Errorf("QueueScale(%s) = %v, want ErrUnknownQueue", q, err)
		}
	}
	if got := controls(ctx, t, drv, nil); len(got) != 0 {
		t.Fatalf("QueueControls after refused controls = %v, want none", got)
	}
	for _, q := range []string{"waiting", "scheduled", "running", "pending"} {
		pause(ctx, t, drv, q, true)
	}
	scale(ctx, t, drv, "parent", 2)
	// The refused controls sent nothing: the first five hints are the
	// five controls', and the sixth is the marker.
	if err := drv.Notify(ctx, storage.NotifyParams{Topic: storage.TopicQueues, Payload: "marker"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	for i := range 5 {
		if n := waitOne(ctx, t, l); n.Payload != "" {
			t.Fatalf("notification %d = %+v, want an empty hint", i+1, n)
		}
	}
	if n := waitOne(ctx, t, l); n.Payload != "marker" {
		t.Fatalf("notification 6 = %+v, want the marker (a refused control notified)", n)
	}
	want := []string{
		"parent paused=false workers=2", "pending paused=true workers=0", "running paused=true workers=0",
		"scheduled paused=true workers=0", "waiting paused=true workers=0",
	}
	if got := controls(ctx, t, drv, nil); !equalLines(got, want) {
		t.Fatalf("QueueControls = %v, want %v", got, want)
	}
	// Once controlled, a queue stays known without jobs.
	pause(ctx, t, drv, "parent", true)
}

// testQueueControls: reads by name, in name order; unknown names are left
// out; an empty list reads nothing.
func testQueueControls(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	register(ctx, t, drv, "c", "a", "b")
	pause(ctx, t, drv, "b", true)
	if got := controls(ctx, t, drv, []string{"b", "ghost", "a"}); !equalLines(got, []string{"a paused=false workers=0", "b paused=true workers=0"}) {
		t.Fatalf("QueueControls(b, ghost, a) = %v", got)
	}
	if got := controls(ctx, t, drv, []string{}); len(got) != 0 {
		t.Fatalf("QueueControls(empty list) = %v, want none", got)
	}
	if got := controls(ctx, t, drv, nil); len(got) != 3 || got[0] != "a paused=false workers=0" || got[2] != "c paused=false workers=0" {
		t.Fatalf("QueueControls(nil) = %v, want a, b, c", got)
	}
}

// testQueueRegister: registering is idempotent and keeps the controls set.
func testQueueRegister(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	register(ctx, t, drv, "a", "a")
	pause(ctx, t, drv, "a", true)
	scale(ctx, t, drv, "a", 4)
	register(ctx, t, drv, "a", "b")
	register(ctx, t, drv)
	if got := controls(ctx, t, drv, nil); !equalLines(got, []string{"a paused=true workers=4", "b paused=false workers=0"}) {
		t.Fatalf("QueueControls after registering again = %v, want a's controls kept", got)
	}
}

// testQueueControlsRefuseInvalidValues: names storage does not hold and
// workers outside 0..MaxQueueWorkers are acidic.ErrInvalid, and nothing is written.
func testQueueControlsRefuseInvalidValues(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	register(ctx, t, drv, "a")
	long := make([]byte, storage.MaxNameBytes+1)
	for i := range long {
		long[i] = 'q'
	}
	for _, name := range []string{"", "nul\x00", "bad\xff", string(long)} {
		if _, err := drv.QueuePause(ctx, storage.QueuePauseParams{Queue: name, Paused: true}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("QueuePause(%q) = %v, want acidic.ErrInvalid", name, err)
		}
		if _, err := drv.QueueScale(ctx, storage.QueueScaleParams{Queue: name, MaxWorkers: 1}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("QueueScale(%q) = %v, want acidic.ErrInvalid", name, err)
		}
		if err := drv.QueueRegister(ctx, storage.QueueRegisterParams{Queues: []string{"fine", name}}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("QueueRegister(fine, %q) = %v, want acidic.ErrInvalid", name, err)
		}
		if _, err := drv.QueueControls(ctx, storage.QueueControlsParams{Queues: []string{name}}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("QueueControls(%q) = %v, want acidic.ErrInvalid", name, err)
		}
	}
	for _, n := range []int{-1, storage.MaxQueueWorkers + 1} {
		if _, err := drv.QueueScale(ctx, storage.QueueScaleParams{Queue: "a", MaxWorkers: n}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("QueueScale(a, %d) = %v, want acidic.ErrInvalid", n, err)
		}
	}
	if got := controls(ctx, t, drv, nil); !equalLines(got, []string{"a paused=false workers=0"}) {
		t.Fatalf("QueueControls after refused writes = %v, want only a, uncontrolled", got)
	}
}

// testQueueControlsConcurrent: controls of one queue known only through
// its jobs, written at once from many connections, all succeed and leave
// one row.
func testQueueControlsConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	insertJobs(ctx, t, drv, job("busy"))
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 10 {
		wg.Go(func() {
			_, err := drv.QueuePause(ctx, storage.QueuePauseParams{Queue: "busy", Paused: i%2 == 0})
			errs <- err
		})
		wg.Go(func() {
			_, err := drv.QueueScale(ctx, storage.QueueScaleParams{Queue: "busy", MaxWorkers: i + 1})
			errs <- err
		})
		wg.Go(func() { errs <- drv.QueueRegister(ctx, storage.QueueRegisterParams{Queues: []string{"busy"}}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent control: %v", err)
		}
	}
	if got := controls(ctx, t, drv, nil); len(got) != 1 {
		t.Fatalf("QueueControls = %v, want one row for busy", got)
	}
}

// testJobFetchPausedQueue: a fetch of a paused queue claims nothing, from
// any worker, while other queues are served; a scale does not change what
// a fetch returns (each node's producer applies it); after the resume the
// jobs are claimed.
func testJobFetchPausedQueue(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	insertJobs(ctx, t, drv, job("held"), job("held"), job("held"), job("free"))
	pause(ctx, t, drv, "held", true)
	scale(ctx, t, drv, "held", 1)
	for _, worker := range []string{"w1", "w2"} {
		got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "held", Max: 10, WorkerID: worker})
		if err != nil || len(got) != 0 {
			t.Fatalf("JobFetch of a paused queue by %s = %v, %v; want nothing", worker, ids(got), err)
		}
	}
	// A limited fetch obeys the pause too, whole-queue or partitioned.
	for _, l := range []storage.FetchLimits{{Concurrency: 5}, {Concurrency: 5, PartitionBy: []string{"m"}}, {RateLimit: 5, RatePeriod: time.Hour}} {
		res, err := drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{JobFetchParams: storage.JobFetchParams{Queue: "held", Max: 10, WorkerID: "w1"}, Limits: l})
		if err != nil || len(res.Jobs) != 0 {
			t.Fatalf("JobFetchLimited(%+v) of a paused queue = %v, %v; want nothing", l, ids(res.Jobs), err)
		}
	}
	fetchOne(ctx, t, drv, "free", "w1")
	pause(ctx, t, drv, "held", false)
	got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "held", Max: 10, WorkerID: "w1"})
	if err != nil || len(got) != 3 {
		t.Fatalf("JobFetch after the resume = %v, %v; want the 3 jobs (a scale is the producers' to apply)", ids(got), err)
	}
}
