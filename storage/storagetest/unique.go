package storagetest

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The contract of storage.Uniqueness: unique keys released after a period
// from the first insert, and one graph per graph key.
var uniqueTests = []conformanceTest{
	{"JobUniqueRelease", testJobUniqueRelease},
	{"JobGraphReserve", testJobGraphReserve},
	{"JobGraphReserveConcurrent", testJobGraphReserveConcurrent},
	{"JobGraphPrune", testJobGraphPrune},
}

func testJobUniqueRelease(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	first := insertUnique(ctx, t, drv, uniqueJob("q", "k"), storage.JobReplace{})
	other := insertUnique(ctx, t, drv, uniqueJob("q", "other"), storage.JobReplace{})

	// Not old enough: nothing is released, a duplicate is still one.
	if n, err := drv.JobUniqueRelease(ctx, storage.JobUniqueReleaseParams{Key: []byte("k"), OlderThan: time.Hour}); err != nil || n != 0 {
		t.Fatalf("JobUniqueRelease(older than 1h) = %d, %v; want 0", n, err)
	}
	if got := insertUnique(ctx, t, drv, uniqueJob("q", "k"), storage.JobReplace{}); !got.Duplicate || got.ID != first.ID {
		t.Fatalf("insert after a release of nothing = %+v, want a duplicate of %d", got, first.ID)
	}
	// Old enough: the holder gives the key up and keeps its state; the next
	// insert makes a new job holding it; other keys are untouched.
	if n, err := drv.JobUniqueRelease(ctx, storage.JobUniqueReleaseParams{Key: []byte("k"), OlderThan: 0}); err != nil || n != 1 {
		t.Fatalf("JobUniqueRelease(older than 0) = %d, %v; want 1", n, err)
	}
	old := getJob(ctx, t, drv, first.ID)
	if old.UniqueKey != nil || old.State != acidic.JobAvailable {
		t.Errorf("released job = %s, key %q; want available, no key", old.State, old.UniqueKey)
	}
	second := insertUnique(ctx, t, drv, uniqueJob("q", "k"), storage.JobReplace{})
	if second.Duplicate || second.ID == first.ID || string(second.UniqueKey) != "k" {
		t.Fatalf("insert after the release = %+v, want a new job holding k", second)
	}
	if got := getJob(ctx, t, drv, other.ID); string(got.UniqueKey) != "other" {
		t.Errorf("a release of k changed the key of another job to %q", got.UniqueKey)
	}
	if _, err := drv.JobUniqueRelease(ctx, storage.JobUniqueReleaseParams{}); !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("JobUniqueRelease(no key) = %v, want ErrInvalid", err)
	}
}

// reserveGraph reserves key in its own transaction, records jobs under it
// when it got the key, and returns the reservation.
func reserveGraph(ctx context.Context, t *testing.T, drv storage.Driver, key string, jobs map[string]int64) storage.JobGraphReservation {
	t.Helper()
	var res storage.JobGraphReservation
	err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		var err error
		if res, err = tx.JobGraphReserve(ctx, storage.JobGraphReserveParams{Key: key}); err != nil || !res.Reserved {
			return err
		}
		return tx.JobGraphRecord(ctx, storage.JobGraphRecordParams{Key: key, Jobs: jobs})
	})
	if err != nil {
		t.Fatalf("reserve graph %q: %v", key, err)
	}
	return res
}

func testJobGraphReserve(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	jobs := insertJobs(ctx, t, drv, job("q"), job("q"))
	names := map[string]int64{"a": jobs[0].ID, "b": jobs[1].ID}
	if res := reserveGraph(ctx, t, drv, "g", names); !res.Reserved || res.Jobs != nil {
		t.Fatalf("first reservation = %+v, want the key", res)
	}
	res := reserveGraph(ctx, t, drv, "g", map[string]int64{"c": 1})
	if res.Reserved || !maps.Equal(res.Jobs, names) {
		t.Fatalf("second reservation = %+v, want the first graph's jobs %v", res, names)
	}
	if res := reserveGraph(ctx, t, drv, "h", map[string]int64{}); !res.Reserved {
		t.Fatalf("another key = %+v, want it reserved", res)
	}
	// A reservation rolled back leaves the key free.
	err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		if _, err := tx.JobGraphReserve(ctx, storage.JobGraphReserveParams{Key: "rolled-back"}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want errBoom", err)
	}
	if res := reserveGraph(ctx, t, drv, "rolled-back", names); !res.Reserved {
		t.Fatalf("key of a rolled back reservation = %+v, want it free", res)
	}

	// Bad input: a bad key, outside a transaction, a record of a key never
	// reserved.
	err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		for _, key := range []string{"", "a\x00b", "\xff"} {
			if _, err := tx.JobGraphReserve(ctx, storage.JobGraphReserveParams{Key: key}); !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("JobGraphReserve(%q) = %v, want ErrInvalid", key, err)
			}
		}
		if err := tx.JobGraphRecord(ctx, storage.JobGraphRecordParams{Key: "never", Jobs: names}); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("JobGraphRecord of a key never reserved = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drv.JobGraphReserve(ctx, storage.JobGraphReserveParams{Key: "no-tx"}); !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("JobGraphReserve outside a transaction = %v, want ErrInvalid", err)
	}
}

// A reservation of a key that a transaction not yet committed holds waits
// for it: the key is that graph's if it commits, the waiter's if it rolls
// back.
func testJobGraphReserveConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	for _, commit := range []bool{true, false} {
		key := "commit"
		if !commit {
			key = "rollback"
		}
		reservedCh := make(chan struct{})
		var once sync.Once
		reserved := func() { once.Do(func() { close(reservedCh) }) }
		release := make(chan struct{})
		firstDone := make(chan error, 1)
		go func() {
			firstDone <- drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
				res, err := tx.JobGraphReserve(ctx, storage.JobGraphReserveParams{Key: key})
				if err != nil || !res.Reserved {
					reserved()
					return errors.Join(err, errors.New("first reservation did not get the key"))
				}
				if err := tx.JobGraphRecord(ctx, storage.JobGraphRecordParams{Key: key, Jobs: map[string]int64{"first": 1}}); err != nil {
					reserved()
					return err
				}
				reserved()
				<-release
				if !commit {
					return errBoom
				}
				return nil
			})
		}()
		<-reservedCh
		second := make(chan storage.JobGraphReservation, 1)
		go func() { second <- reserveGraph(ctx, t, drv, key, map[string]int64{"second": 2}) }()
		close(release)
		if err := <-firstDone; commit && err != nil || !commit && !errors.Is(err, errBoom) {
			t.Fatalf("first transaction (commit %v): %v", commit, err)
		}
		res := <-second
		switch {
		case commit && (res.Reserved || res.Jobs["first"] != 1):
			t.Errorf("after the first committed: %+v, want the first graph", res)
		case !commit && !res.Reserved:
			t.Errorf("after the first rolled back: %+v, want the key", res)
		}
	}
}

func testJobGraphPrune(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	jobs := insertJobs(ctx, t, drv, job("q"), job("q"))
	reserveGraph(ctx, t, drv, "g", map[string]int64{"a": jobs[0].ID, "b": jobs[1].ID})
	reserveGraph(ctx, t, drv, "empty", map[string]int64{})
	// Jobs stored: kept.
	if n, err := drv.JobGraphPrune(ctx, storage.JobGraphPruneParams{Limit: 100}); err != nil || n != 1 {
		t.Fatalf("JobGraphPrune = %d, %v; want 1 (the graph without jobs)", n, err)
	}
	// One job left: kept.
	fetched, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 2, WorkerID: "w"})
	if err != nil || len(fetched) != 2 {
		t.Fatalf("JobFetch = %d, %v", len(fetched), err)
	}
	if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(jobs[0].ID)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := drv.JobPrune(ctx, storage.JobPruneParams{Limit: 100}); err != nil || n != 1 {
		t.Fatalf("JobPrune = %d, %v; want 1", n, err)
	}
	if n, err := drv.JobGraphPrune(ctx, storage.JobGraphPruneParams{Limit: 100}); err != nil || n != 0 {
		t.Fatalf("JobGraphPrune with a job left = %d, %v; want 0", n, err)
	}
	// None left: freed, but not before the retention.
	if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(jobs[1].ID)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := drv.JobPrune(ctx, storage.JobPruneParams{Limit: 100}); err != nil || n != 1 {
		t.Fatalf("JobPrune = %d, %v; want 1", n, err)
	}
	if n, err := drv.JobGraphPrune(ctx, storage.JobGraphPruneParams{Retention: time.Hour, Limit: 100}); err != nil || n != 0 {
		t.Fatalf("JobGraphPrune(retention 1h) of a graph reserved just now = %d, %v; want 0", n, err)
	}
	if n, err := drv.JobGraphPrune(ctx, storage.JobGraphPruneParams{Limit: 100}); err != nil || n != 1 {
		t.Fatalf("JobGraphPrune with no job left = %d, %v; want 1", n, err)
	}
	if res := reserveGraph(ctx, t, drv, "g", map[string]int64{}); !res.Reserved {
		t.Fatalf("key of a pruned graph = %+v, want it free", res)
	}
}
