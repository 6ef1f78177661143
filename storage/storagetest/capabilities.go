package storagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var capabilityTests = []conformanceTest{
	{"NotifyAsDeclared", testNotifyAsDeclared},
	{"SerializableIncrements", testSerializableIncrements},
	{"JobMakeDue", testJobMakeDue},
	{"JobStats", testJobStats},
}

// testNotifyAsDeclared checks a driver against its declared notification
// scope: without notifications NewListener fails (the engine then polls);
// with them a listener of the same driver hears a notification sent after
// it listened.
func testNotifyAsDeclared(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	caps := drv.Capabilities()
	if caps.Notify == storage.NotifyNone {
		if l, err := drv.NewListener(ctx); err == nil {
			_ = l.Close(ctx)
			t.Fatal("NewListener succeeded on a driver that declares no notifications")
		}
		return
	}
	l := newListener(ctx, t, drv, "conformance")
	if err := drv.Notify(ctx, storage.NotifyParams{Topic: "conformance", Payload: "p"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if n := waitOne(ctx, t, l); n.Topic != "conformance" || n.Payload != "p" {
		t.Fatalf("got %+v, want topic conformance, payload p", n)
	}
}

// testSerializableIncrements runs transactions that each read a counter (a
// run's error text) and write it back one higher, started together. At
// Serializable no increment may be lost, whether the driver retries a
// conflict (PostgreSQL) or makes writers wait for each other (a single
// writer lock): the counter ends at the number of transactions.
func testSerializableIncrements(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := insertRun(ctx, t, drv, "counter")
	const writers = 4
	var ready sync.WaitGroup
	ready.Add(writers)
	var once [writers]sync.Once
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
				cur, err := tx.RunGet(ctx, storage.RunGetParams{ID: r.ID})
				if err != nil {
					return err
				}
				n := 0
				if cur.Error != "" {
					if n, err = strconv.Atoi(cur.Error); err != nil {
						return fmt.Errorf("counter %q: %w", cur.Error, err)
					}
				}
				// Let the others read before anyone writes, on the first try
				// (a driver that serializes writers lets them read one after
				// another: the wait then ends by its timeout).
				once[i].Do(func() {
					ready.Done()
					waitFor(&ready, 200*time.Millisecond)
				})
				_, _, err = tx.RunSetState(ctx, storage.RunSetStateParams{
					ID: r.ID, From: []acidic.RunState{acidic.RunPending}, To: acidic.RunPending, Error: strconv.Itoa(n + 1)})
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if got := getRun(ctx, t, drv, r.ID).Error; got != strconv.Itoa(writers) {
		t.Fatalf("counter = %q after %d serializable increments, want %d (an increment was lost)", got, writers, writers)
	}
}

// waitFor waits for wg, or at most d.
func waitFor(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// testJobMakeDue checks that JobMakeDue makes the scheduled and retryable
// jobs of one queue due now, and no others.
func testJobMakeDue(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	later := time.Now().Add(time.Hour)
	sched := job("q")
	sched.State, sched.ScheduledAt = acidic.JobScheduled, later
	other := job("other")
	other.State, other.ScheduledAt = acidic.JobScheduled, later
	avail := job("q")
	jobs := insertJobs(ctx, t, drv, sched, other, avail)
	n, err := drv.JobMakeDue(ctx, storage.JobMakeDueParams{Queue: "q"})
	if err != nil || n != 1 {
		t.Fatalf("JobMakeDue = %d, %v; want 1", n, err)
	}
	got := fetchAll(ctx, t, drv, "q")
	if len(got) != 2 {
		t.Fatalf("after JobMakeDue, queue q fetched %v, want jobs %d and %d", ids(got), jobs[0].ID, jobs[2].ID)
	}
	if j := getJob(ctx, t, drv, jobs[1].ID); j.State != acidic.JobScheduled || !j.ScheduledAt.After(time.Now()) {
		t.Fatalf("job of another queue: %s at %s, want still scheduled in the future", j.State, j.ScheduledAt)
	}
}

func fetchAll(ctx context.Context, t *testing.T, drv storage.Driver, q string) []storage.FetchedJob {
	t.Helper()
	got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: q, Max: 100, WorkerID: "w"})
	if err != nil {
		t.Fatalf("JobFetch(%s): %v", q, err)
	}
	return got
}

// testJobStats checks the counts by queue and state, and the oldest due
// time of waiting jobs.
func testJobStats(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	early := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	a := job("a")
	a.ScheduledAt = early
	b := job("a")
	c := job("b")
	c.State, c.ScheduledAt = acidic.JobScheduled, time.Now().Add(time.Hour)
	insertJobs(ctx, t, drv, a, b, c)
	fetchOne(ctx, t, drv, "a", "w") // the earliest, a, is running now
	stats, err := drv.JobStats(ctx)
	if err != nil {
		t.Fatalf("JobStats: %v", err)
	}
	got := map[string]int64{}
	for _, s := range stats {
		got[s.Queue+" "+string(s.State)] = s.Count
	}
	want := map[string]int64{"a available": 1, "a running": 1, "b scheduled": 1}
	if gb, _ := json.Marshal(got); !jsonEqual(t, gb, mustJSON(t, want)) {
		t.Fatalf("JobStats counts = %v, want %v", got, want)
	}
	for _, s := range stats {
		if s.Queue == "a" && s.State == acidic.JobAvailable && s.OldestDue == nil {
			t.Errorf("queue a available: OldestDue nil, want the waiting job's scheduled time")
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
