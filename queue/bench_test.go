package queue_test

// Benchmarks against the real test database (see internal/testdb). Run with
//
//	go test -run '^$' -bench . -benchtime 2000x ./queue/
//
// (an op of BenchmarkEnqueueMany is 1,000 jobs: -bench EnqueueMany
// -benchtime 200x is plenty). Every benchmark gets its own schema per b.N
// round, so rows left by one round never slow the next. The figures are only
// meaningful when no other session holds a snapshot open on the database;
// the benchmarks log a warning when one does.

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// benchMaxChunk caps the rows of one EnqueueMany statement in set-up code.
const benchMaxChunk = 5000

func benchLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func benchDriver(b *testing.B) *postgres.Driver {
	b.Helper()
	return testdb.New(b, testdb.Options{MaxConns: 40})
}

// benchQueueConfig is the client config every benchmark uses; workers 0 makes
// an insert-only client.
func benchQueueConfig(ws *queue.Workers, workers int) queue.Config {
	cfg := queue.Config{
		Workers:             ws,
		Logger:              benchLogger(),
		PollInterval:        50 * time.Millisecond,
		RescueAfter:         time.Hour,
		MaintenanceInterval: time.Hour,
	}
	if workers > 0 {
		cfg.Queues = map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: workers}}
	}
	return cfg
}

func benchInsertClient(b *testing.B, drv storage.Driver) *queue.Client {
	b.Helper()
	c, err := queue.New(drv, benchQueueConfig(nil, 0))
	if err != nil {
		b.Fatalf("queue.New: %v", err)
	}
	return c
}

// benchFill enqueues n trivial jobs of kind in statements of at most
// benchMaxChunk rows.
func benchFill(b *testing.B, c *queue.Client, kind string, n int) {
	b.Helper()
	ctx := context.Background()
	params := make([]queue.EnqueueParams, min(n, benchMaxChunk))
	for i := range params {
		params[i] = queue.EnqueueParams{Kind: kind}
	}
	for done := 0; done < n; {
		k := min(n-done, benchMaxChunk)
		if _, err := c.EnqueueMany(ctx, params[:k]); err != nil {
			b.Fatalf("EnqueueMany: %v", err)
		}
		done += k
	}
}

func benchCount(b *testing.B, drv *postgres.Driver, sql string, args ...any) int {
	b.Helper()
	var n int
	if err := drv.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
	return n
}

func benchExec(b *testing.B, drv *postgres.Driver, sql string, args ...any) {
	b.Helper()
	if _, err := drv.Pool().Exec(context.Background(), sql, args...); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}

// reportRate reports n items per second of the timed part of the benchmark.
func reportRate(b *testing.B, n int, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, unit)
	}
}

// BenchmarkEnqueue inserts one job per op (one INSERT … RETURNING with its
// pg_notify, autocommitted).
func BenchmarkEnqueue(b *testing.B) {
	drv := benchDriver(b)
	c := benchInsertClient(b, drv)
	ctx := context.Background()
	args := map[string]int{"n": 1}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Enqueue(ctx, "noop", args, queue.EnqueueOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b, b.N, "jobs/s")
}

// BenchmarkEnqueueMany inserts 1,000 jobs per op in one statement.
func BenchmarkEnqueueMany(b *testing.B) {
	const batch = 1000
	drv := benchDriver(b)
	c := benchInsertClient(b, drv)
	ctx := context.Background()
	params := make([]queue.EnqueueParams, batch)
	for i := range params {
		params[i] = queue.EnqueueParams{Kind: "noop", Args: map[string]int{"n": i}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		jobs, err := c.EnqueueMany(ctx, params)
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) != batch {
			b.Fatalf("EnqueueMany returned %d jobs, want %d", len(jobs), batch)
		}
	}
	b.StopTimer()
	reportRate(b, b.N*batch, "jobs/s")
}

// BenchmarkEnqueueToCompletion enqueues b.N trivial jobs (untimed), then
// times a client working them all to completed, completion rows written.
func BenchmarkEnqueueToCompletion(b *testing.B) {
	for _, workers := range []int{1, 4, 16} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			benchEnqueueToCompletion(b, workers, 0)
		})
	}
}

// BenchmarkEnqueueToCompletionNoCooldown is BenchmarkEnqueueToCompletion
// with FetchCooldown at 1µs instead of its 2ms default. The producer waits
// out the cooldown before refilling freed slots, so with trivial jobs the
// default caps a client near MaxWorkers/2ms; this shows what the rest of the
// pipeline does without that cap.
func BenchmarkEnqueueToCompletionNoCooldown(b *testing.B) {
	for _, workers := range []int{1, 4, 16} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			benchEnqueueToCompletion(b, workers, time.Microsecond)
		})
	}
}

// benchEnqueueToCompletion: cooldown 0 keeps the default FetchCooldown.
func benchEnqueueToCompletion(b *testing.B, workers int, cooldown time.Duration) {
	drv := benchDriver(b)
	benchFill(b, benchInsertClient(b, drv), "noop", b.N)

	var worked atomic.Int64
	allWorked := make(chan struct{})
	n := int64(b.N)
	ws := queue.NewWorkers()
	if err := ws.Handle("noop", func(ctx context.Context, job *acidic.Job) error {
		if worked.Add(1) == n {
			close(allWorked)
		}
		return nil
	}, queue.KindOptions{}); err != nil {
		b.Fatal(err)
	}
	cfg := benchQueueConfig(ws, workers)
	cfg.FetchCooldown = cooldown
	c, err := queue.New(drv, cfg)
	if err != nil {
		b.Fatal(err)
	}
	testdb.WarmPool(b, drv.Pool(), 4)
	testdb.WarnOldSnapshots(b, drv.Pool())
	completed := "SELECT count(*) FROM " + table(drv, "jobs") + " WHERE state = 'completed'"

	b.ReportAllocs()
	b.ResetTimer()
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-allWorked:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d jobs worked", worked.Load(), n)
	}
	// The work functions returned; wait for the completer to write the last
	// batch.
	deadline := time.Now().Add(time.Minute)
	for benchCount(b, drv, completed) < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("completions not written: %d of %d", benchCount(b, drv, completed), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	reportRate(b, b.N, "jobs/s")
	// Every row of one fetch (one completion batch) gets the same
	// transaction timestamp, which tells the batch sizes reached.
	var fetches, completes int
	err = drv.Pool().QueryRow(context.Background(),
		"SELECT count(DISTINCT attempted_at), count(DISTINCT finalized_at) FROM "+table(drv, "jobs")).Scan(&fetches, &completes)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/float64(max(fetches, 1)), "jobs/fetch")
	b.ReportMetric(float64(b.N)/float64(max(completes, 1)), "jobs/complete")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		b.Fatalf("Stop: %v", err)
	}
}

// BenchmarkFetchBatch claims 100 jobs per op with the driver's fetch query,
// from a table pre-filled with b.N*100 available jobs.
func BenchmarkFetchBatch(b *testing.B) { benchFetchBatch(b, false) }

// BenchmarkFetchBatchOldSnapshot is BenchmarkFetchBatch while another session
// holds a transaction open, as a long report query or a connection left idle
// in transaction would. The entries that claimed jobs leave at the head of
// the partial index jobs_fetch cannot be marked dead then, so every fetch
// walks (and visits the heap for) all jobs claimed since that transaction
// began: ns/op grows with b.N, unlike BenchmarkFetchBatch.
func BenchmarkFetchBatchOldSnapshot(b *testing.B) { benchFetchBatch(b, true) }

func benchFetchBatch(b *testing.B, holdSnapshot bool) {
	const batch = 100
	drv := benchDriver(b)
	benchFill(b, benchInsertClient(b, drv), "noop", b.N*batch)
	benchExec(b, drv, "ANALYZE "+table(drv, "jobs"))
	ctx := context.Background()
	if holdSnapshot {
		tx, err := drv.Pool().Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		var xid int64
		if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&xid); err != nil {
			b.Fatal(err)
		}
	} else {
		testdb.WarnOldSnapshots(b, drv.Pool())
	}
	fetch := storage.JobFetchParams{Queue: queue.DefaultQueue, Max: batch, WorkerID: "bench"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		jobs, err := drv.JobFetch(ctx, fetch)
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) != batch {
			b.Fatalf("fetched %d jobs, want %d", len(jobs), batch)
		}
	}
	b.StopTimer()
	reportRate(b, b.N*batch, "jobs/s")
}

// BenchmarkCompleteBatch completes 100 running jobs per op with the driver's
// batch completion, from b.N*100 jobs claimed beforehand.
func BenchmarkCompleteBatch(b *testing.B) {
	const batch = 100
	drv := benchDriver(b)
	benchFill(b, benchInsertClient(b, drv), "noop", b.N*batch)
	ctx := context.Background()
	var attempts []storage.JobAttempt
	for len(attempts) < b.N*batch {
		jobs, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: queue.DefaultQueue, Max: benchMaxChunk, WorkerID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) == 0 {
			b.Fatalf("claimed %d jobs, want %d", len(attempts), b.N*batch)
		}
		for _, j := range jobs {
			attempts = append(attempts, storage.JobAttempt{ID: j.ID, Attempt: j.Attempt})
		}
	}
	benchExec(b, drv, "ANALYZE "+table(drv, "jobs"))
	testdb.WarnOldSnapshots(b, drv.Pool())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: attempts[i*batch : (i+1)*batch]})
		if err != nil {
			b.Fatal(err)
		}
		if len(done) != batch {
			b.Fatalf("completed %d jobs, want %d", len(done), batch)
		}
	}
	b.StopTimer()
	reportRate(b, b.N*batch, "jobs/s")
}

// BenchmarkEnqueueUniqueDuplicate enqueues one unique job (untimed), then
// times b.N enqueues of the same job, each a duplicate, and reports
// duplicates/s and the WAL each duplicate wrote. A duplicate that replaces
// nothing should write nothing: "replace-equal" asks to replace the args,
// priority and attempts with the values the job already has.
//
// The WAL figure is the cluster's WAL insert position before and after, so
// other sessions writing meanwhile (other tests, autovacuum) inflate it; run
// it on a quiet database.
func BenchmarkEnqueueUniqueDuplicate(b *testing.B) {
	for _, tc := range []struct {
		name    string
		replace *queue.ReplaceOptions
	}{
		{"plain", nil},
		{"replace-equal", &queue.ReplaceOptions{Args: true, Priority: true, MaxAttempts: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			drv := benchDriver(b)
			c := benchInsertClient(b, drv)
			ctx := context.Background()
			args := map[string]int{"order": 1}
			opts := queue.EnqueueOptions{Unique: &queue.UniqueOptions{}, Replace: tc.replace}
			first, err := c.Enqueue(ctx, "unique", args, opts)
			if err != nil {
				b.Fatal(err)
			}
			testdb.WarnOldSnapshots(b, drv.Pool())
			lsn := func() string {
				var s string
				if err := drv.Pool().QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
					b.Fatal(err)
				}
				return s
			}
			b.ReportAllocs()
			b.ResetTimer()
			before := lsn()
			for i := 0; i < b.N; i++ {
				j, err := c.Enqueue(ctx, "unique", args, opts)
				if err != nil {
					b.Fatal(err)
				}
				if !j.Duplicate || j.ID != first.ID {
					b.Fatalf("enqueue %d: job %d duplicate %v, want a duplicate of %d", i, j.ID, j.Duplicate, first.ID)
				}
			}
			after := lsn()
			b.StopTimer()
			reportRate(b, b.N, "duplicates/s")
			var wal float64
			if err := drv.Pool().QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)", after, before).Scan(&wal); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(wal/float64(b.N), "WAL-bytes/dup")
		})
	}
}
