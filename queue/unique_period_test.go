package queue_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// ageJobs moves the insert time of every job of kind back by d, as if d had
// passed since.
func ageJobs(t *testing.T, drv storage.Driver, kind string, d time.Duration) {
	t.Helper()
	if testdb.IsSQLite(drv) { // times are microseconds
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET created_at = created_at - $2 WHERE kind = $1", kind, d.Microseconds())
		return
	}
	execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET created_at = created_at - $2::bigint * interval '1 microsecond' WHERE kind = $1", kind, d.Microseconds())
}

// Oban's "unique for 60 seconds": a duplicate within a minute of the first
// insert is refused, whenever in the minute it comes; after the minute a
// new job is inserted, which holds the key for the next minute.
func TestUniquePeriodFromFirstInsert(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		ctx := ctxT(t)
		opts := queue.EnqueueOptions{Unique: &queue.UniqueOptions{Period: time.Minute, PeriodFrom: queue.FirstInsert}}
		enqueue := func() *acidic.Job {
			t.Helper()
			j, err := c.Enqueue(ctx, "sync", map[string]int{"account": 1}, opts)
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
		first := enqueue()
		if first.Duplicate {
			t.Fatal("the first enqueue is a duplicate")
		}
		if dup := enqueue(); !dup.Duplicate || dup.ID != first.ID {
			t.Fatalf("at once: job %d duplicate %v, want a duplicate of %d", dup.ID, dup.Duplicate, first.ID)
		}
		ageJobs(t, drv, "sync", 59*time.Second)
		if dup := enqueue(); !dup.Duplicate || dup.ID != first.ID {
			t.Fatalf("59 s after the first insert: job %d duplicate %v, want a duplicate of %d", dup.ID, dup.Duplicate, first.ID)
		}
		ageJobs(t, drv, "sync", 2*time.Second)
		second := enqueue()
		if second.Duplicate || second.ID == first.ID {
			t.Fatalf("61 s after the first insert: job %d duplicate %v, want a new job", second.ID, second.Duplicate)
		}
		// The new job holds the key now, for its own minute; the old one gave
		// it up and is otherwise untouched.
		if dup := enqueue(); !dup.Duplicate || dup.ID != second.ID {
			t.Fatalf("after the new insert: job %d duplicate %v, want a duplicate of %d", dup.ID, dup.Duplicate, second.ID)
		}
		old, err := c.Get(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if old.UniqueKey != nil || old.State != acidic.JobAvailable {
			t.Fatalf("the expired job: %s, key %x; want available, key given up", old.State, old.UniqueKey)
		}
		if n := countRows(t, drv, "jobs"); n != 2 {
			t.Fatalf("%d jobs, want 2", n)
		}
	})
}

// Fixed windows, the default, for comparison: the key names the window, so
// two enqueues seconds apart across a window's end are two jobs, and two
// enqueues almost a window apart inside it are one.
func TestUniquePeriodInFixedWindows(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		now := time.Date(2030, 1, 1, 10, 0, 10, 0, time.UTC)
		c := newClient(t, drv, queue.Config{Logger: quietLogger(), Now: func() time.Time { return now }})
		ctx := ctxT(t)
		opts := queue.EnqueueOptions{Unique: &queue.UniqueOptions{Period: time.Minute}}
		at := func(hms time.Duration) *acidic.Job {
			t.Helper()
			now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(hms)
			j, err := c.Enqueue(ctx, "sync", nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
		a := at(10*time.Hour + 10*time.Second)
		if b := at(10*time.Hour + 50*time.Second); !b.Duplicate || b.ID != a.ID {
			t.Fatalf("10:00:50, same window as 10:00:10: job %d duplicate %v, want %d", b.ID, b.Duplicate, a.ID)
		}
		if c := at(10*time.Hour + 70*time.Second); c.Duplicate {
			t.Fatalf("10:01:10, next window, 20 s later: a duplicate, want a new job")
		}
	})
}

// Concurrent enqueues of a key unique for a period from the first insert
// make one job: on a fresh key, and again once the holder's period passed
// (every enqueue releases the old holder, one inserts).
func TestUniquePeriodFromFirstInsertUnderConcurrentEnqueues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		ctx := ctxT(t)
		opts := queue.EnqueueOptions{Unique: &queue.UniqueOptions{Period: time.Minute, PeriodFrom: queue.FirstInsert}}
		round := func() (inserted []int64, ids map[int64]bool) {
			const n = 16
			jobs := make([]*acidic.Job, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					jobs[i], errs[i] = c.Enqueue(ctx, "sync", map[string]int{"account": 1}, opts)
				})
			}
			close(start)
			wg.Wait()
			ids = map[int64]bool{}
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("enqueue %d: %v", i, errs[i])
				}
				ids[jobs[i].ID] = true
				if !jobs[i].Duplicate {
					inserted = append(inserted, jobs[i].ID)
				}
			}
			return inserted, ids
		}
		inserted, ids := round()
		if len(inserted) != 1 || len(ids) != 1 {
			t.Fatalf("fresh key: %d inserts, %d jobs returned; want one job", len(inserted), len(ids))
		}
		first := inserted[0]
		ageJobs(t, drv, "sync", 2*time.Minute)
		inserted, ids = round()
		if len(inserted) != 1 || inserted[0] == first || len(ids) != 1 {
			t.Fatalf("after the period: inserts %v, jobs returned %v; want one new job", inserted, ids)
		}
		if n := countRows(t, drv, "jobs"); n != 2 {
			t.Fatalf("%d jobs stored, want 2", n)
		}
	})
}

// A key unique from its first insert is not the key of the same job unique
// forever or in windows (its holder gives it up, theirs do not), and
// PeriodFrom is checked.
func TestUniquePeriodFromFirstInsertKeysAndValidation(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		ctx := ctxT(t)
		keys := map[string]bool{}
		for _, u := range []*queue.UniqueOptions{
			{},
			{Period: time.Minute},
			{Period: time.Minute, PeriodFrom: queue.WindowStart},
			{Period: time.Minute, PeriodFrom: queue.FirstInsert},
			{Period: time.Hour, PeriodFrom: queue.FirstInsert},
		} {
			j, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{Unique: u})
			if err != nil {
				t.Fatal(err)
			}
			keys[string(j.UniqueKey)] = true
		}
		// Forever; windows (twice, one job); from the first insert (twice,
		// whatever the period: one job).
		if len(keys) != 3 {
			t.Fatalf("%d distinct keys, want 3", len(keys))
		}
		for name, u := range map[string]*queue.UniqueOptions{
			"first insert without a period": {PeriodFrom: queue.FirstInsert},
			"unknown PeriodFrom":            {Period: time.Minute, PeriodFrom: "sliding"},
		} {
			if _, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{Unique: u}); !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
	})
}
