package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// licenceGraph is the licence webhook's workflow (the Oban Pro case): hex
// and licence in parallel, then welcome and notify after both.
func licenceGraph(key string) *queue.Graph {
	g := &queue.Graph{Key: key}
	g.Add(queue.GraphJob{Name: "hex", Kind: "hex"}).
		Add(queue.GraphJob{Name: "licence", Kind: "licence"}).
		Add(queue.GraphJob{Name: "welcome", Kind: "welcome", After: []string{"hex", "licence"}}).
		Add(queue.GraphJob{Name: "notify", Kind: "notify", After: []string{"hex", "licence"}})
	return g
}

// sameGraph fails the test unless got holds exactly the jobs of want, by
// name, each marked Duplicate.
func sameGraph(t *testing.T, got, want map[string]*acidic.Job) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d jobs, want the %d of the first graph", len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		if g == nil || g.ID != w.ID || !g.Duplicate {
			t.Fatalf("job %q: %+v, want job %d marked Duplicate", name, g, w.ID)
		}
	}
}

// A redelivered webhook enqueues its graph again: the second enqueue of the
// key inserts nothing and returns the first graph's jobs, whatever jobs the
// second graph holds; another key makes another graph.
func TestUniqueGraphSecondEnqueueReturnsTheFirst(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		ctx := ctxT(t)
		first, err := c.EnqueueGraph(ctx, licenceGraph("licence:42"))
		if err != nil {
			t.Fatal(err)
		}
		for name, j := range first {
			if j.Duplicate {
				t.Errorf("first graph's job %q is marked Duplicate", name)
			}
		}
		again, err := c.EnqueueGraph(ctx, licenceGraph("licence:42"))
		if err != nil {
			t.Fatal(err)
		}
		sameGraph(t, again, first)
		// Other jobs under the same key: still the first graph.
		other := &queue.Graph{Key: "licence:42"}
		other.Add(queue.GraphJob{Name: "solo", Kind: "hex"})
		got, err := c.EnqueueGraph(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		sameGraph(t, got, first)
		if n := countRows(t, drv, "jobs"); n != 4 {
			t.Fatalf("%d jobs stored, want the first graph's 4", n)
		}
		// Inside a caller's transaction too.
		err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			got, err := c.EnqueueGraphTx(ctx, tx, licenceGraph("licence:42"))
			if err == nil {
				sameGraph(t, got, first)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		second, err := c.EnqueueGraph(ctx, licenceGraph("licence:43"))
		if err != nil {
			t.Fatal(err)
		}
		if second["hex"].ID == first["hex"].ID || second["hex"].Duplicate {
			t.Fatalf("another key returned the first graph")
		}
		if n := countRows(t, drv, "jobs"); n != 8 {
			t.Fatalf("%d jobs stored, want two graphs' 8", n)
		}
	})
}

// Two enqueues of one graph key racing: the second waits for the first's
// transaction and returns its graph if it commits, or inserts its own if it
// rolls back. Many at once make one graph.
func TestUniqueGraphConcurrentEnqueuesMakeOneGraph(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it holds a row lock open and waits (pg_stat_activity) for the racing enqueue to block on it; SQLite's one writer serializes the two enqueues whole.
	drv := testdb.New(t, testdb.Options{})
	c := newClient(t, drv, queue.Config{Logger: quietLogger()})
	ctx := ctxT(t)

	for _, commit := range []bool{true, false} {
		key := fmt.Sprintf("race:%v", commit)
		before := countRows(t, drv, "jobs")
		txA, err := drv.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = txA.Rollback(context.Background()) })
		firstA, err := c.EnqueueGraphTx(ctx, drv.WrapTx(txA), licenceGraph(key))
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			jobs map[string]*acidic.Job
			err  error
		}
		done := make(chan result, 1)
		go func() {
			jobs, err := c.EnqueueGraph(ctx, licenceGraph(key))
			done <- result{jobs, err}
		}()
		waitBlockedOn(t, drv, "job_graphs")
		if commit {
			err = txA.Commit(ctx)
		} else {
			err = txA.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		got := <-done
		if got.err != nil {
			t.Fatal(got.err)
		}
		if commit {
			sameGraph(t, got.jobs, firstA)
		} else if got.jobs["hex"].Duplicate || got.jobs["hex"].ID == firstA["hex"].ID {
			t.Fatalf("after the first rolled back, the second got %+v, want a graph of its own", got.jobs["hex"])
		}
		if n := countRows(t, drv, "jobs") - before; n != 4 {
			t.Fatalf("commit %v: %d jobs stored, want one graph's 4", commit, n)
		}
	}

	// A crowd.
	const n = 16
	before := countRows(t, drv, "jobs")
	results := make([]map[string]*acidic.Job, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = c.EnqueueGraph(ctx, licenceGraph("race:crowd"))
		})
	}
	close(start)
	wg.Wait()
	inserted := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("enqueue %d: %v", i, errs[i])
		}
		if !results[i]["hex"].Duplicate {
			inserted++
		}
		if results[i]["notify"].ID != results[0]["notify"].ID {
			t.Fatalf("enqueue %d got another graph (notify %d, not %d)", i, results[i]["notify"].ID, results[0]["notify"].ID)
		}
	}
	if inserted != 1 {
		t.Fatalf("%d enqueues inserted the graph, want 1", inserted)
	}
	if stored := countRows(t, drv, "jobs") - before; stored != 4 {
		t.Fatalf("%d jobs stored, want one graph's 4", stored)
	}
}

// A graph key is held while a job of its graph is stored, whatever state
// the jobs are in; once maintenance has pruned them all, it frees the key
// and the next enqueue makes a new graph.
func TestUniqueGraphKeyIsFreedOnceItsJobsArePruned(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		for _, k := range []string{"hex", "licence", "welcome", "notify"} {
			_ = ws.Handle(k, noopWork, queue.KindOptions{})
		}
		c := newClient(t, drv, queue.Config{Workers: ws, Logger: quietLogger(), Retention: queue.Retention{Completed: time.Hour}})
		ctx := ctxT(t)
		first, err := c.EnqueueGraph(ctx, licenceGraph("licence:7"))
		if err != nil {
			t.Fatal(err)
		}
		if res, err := c.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil || res.Success != 4 {
			t.Fatalf("drain: %+v %v", res, err)
		}
		// Finished, not pruned: still held.
		c.Maintain(ctx)
		again, err := c.EnqueueGraph(ctx, licenceGraph("licence:7"))
		if err != nil {
			t.Fatal(err)
		}
		sameGraph(t, again, first)
		// Three of the four pruned: still held, the stored job returned.
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET finalized_at = "+testdb.Earlier(drv, "finalized_at", 2*time.Hour)+" WHERE id <> $1", first["notify"].ID)
		execSQL(t, drv, "UPDATE "+table(drv, "job_graphs")+" SET created_at = "+testdb.Earlier(drv, "created_at", 2*time.Hour))
		if res := c.Maintain(ctx); res.Pruned != 3 {
			t.Fatalf("maintenance pruned %d jobs, want 3", res.Pruned)
		}
		again, err = c.EnqueueGraph(ctx, licenceGraph("licence:7"))
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 1 || again["notify"] == nil || again["notify"].ID != first["notify"].ID || !again["notify"].Duplicate {
			t.Fatalf("with one job left: %v, want that job alone, marked Duplicate", again)
		}
		// All pruned: the key is free.
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET finalized_at = "+testdb.Earlier(drv, "finalized_at", 2*time.Hour)+" WHERE id = $1", first["notify"].ID)
		if res := c.Maintain(ctx); res.Pruned != 1 {
			t.Fatalf("maintenance pruned %d jobs, want 1", res.Pruned)
		}
		if n := countRows(t, drv, "job_graphs"); n != 0 {
			t.Fatalf("%d graph keys left after their jobs were pruned", n)
		}
		fresh, err := c.EnqueueGraph(ctx, licenceGraph("licence:7"))
		if err != nil {
			t.Fatal(err)
		}
		if fresh["hex"].Duplicate || fresh["hex"].ID == first["hex"].ID || len(fresh) != 4 {
			t.Fatalf("after the prune: %+v, want a new graph", fresh["hex"])
		}
	})
}

// Bad keys, and a key outside a transaction, are refused before anything is
// written.
func TestUniqueGraphBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		c := newClient(t, drv, queue.Config{Logger: quietLogger()})
		ctx := ctxT(t)
		for name, key := range map[string]string{
			"NUL":      "a\x00b",
			"too long": string(make([]byte, storage.MaxKeyBytes+1)),
			"bad UTF8": "\xff",
		} {
			if _, err := c.EnqueueGraph(ctx, licenceGraph(key)); !errors.Is(err, queue.ErrInvalid) || !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		if _, err := c.EnqueueGraphTx(ctx, drv, licenceGraph("no-tx")); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("a keyed graph outside a transaction: %v, want ErrInvalid", err)
		}
		if _, err := drv.JobGraphReserve(ctx, storage.JobGraphReserveParams{Key: "no-tx"}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("JobGraphReserve on the pool: %v, want ErrInvalid", err)
		}
		if n := countRows(t, drv, "jobs") + countRows(t, drv, "job_graphs"); n != 0 {
			t.Fatalf("bad input wrote %d rows", n)
		}
	})
}

// waitBlockedOn waits until a session of drv's schema waits for a lock in a
// statement naming table.
func waitBlockedOn(t *testing.T, drv *postgres.Driver, tableName string) {
	t.Helper()
	for i := 0; ; i++ {
		var n int
		err := drv.Pool().QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND position($1 in query) > 0 AND position($2 in query) > 0`,
			drv.Schema(), "."+tableName).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if i > 2000 {
			t.Fatalf("no statement on %s ever waited for a lock", tableName)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
