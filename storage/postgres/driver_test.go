package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// --- helpers shared by the package's tests ---

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// table returns the quoted, schema-qualified name of one of the driver's tables.
func table(drv *postgres.Driver, name string) string {
	return pgx.Identifier{drv.Schema(), name}.Sanitize()
}

// exec runs SQL on the driver's pool; {schema} is replaced by the quoted schema.
func exec(ctx context.Context, t *testing.T, drv *postgres.Driver, sql string, args ...any) int64 {
	t.Helper()
	sql = strings.ReplaceAll(sql, "{schema}", pgx.Identifier{drv.Schema()}.Sanitize())
	tag, err := drv.Pool().Exec(ctx, sql, args...)
	if err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
	return tag.RowsAffected()
}

// job returns a JobInsert for an available job of queue q with sensible defaults.
func job(q string) storage.JobInsert {
	return storage.JobInsert{
		Queue:       q,
		Kind:        "test_kind",
		Args:        json.RawMessage(`{}`),
		State:       acidic.JobAvailable,
		MaxAttempts: 3,
	}
}

func insertJobs(ctx context.Context, t *testing.T, e storage.Executor, jobs ...storage.JobInsert) []*acidic.Job {
	t.Helper()
	out, err := e.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: jobs})
	if err != nil {
		t.Fatalf("JobInsertMany: %v", err)
	}
	if len(out) != len(jobs) {
		t.Fatalf("JobInsertMany returned %d jobs, want %d", len(out), len(jobs))
	}
	return out
}

func getJob(ctx context.Context, t *testing.T, e storage.Executor, id int64) *acidic.Job {
	t.Helper()
	j, err := e.JobGet(ctx, storage.JobGetParams{ID: id})
	if err != nil {
		t.Fatalf("JobGet(%d): %v", id, err)
	}
	return j
}

func listJobs(ctx context.Context, t *testing.T, e storage.Executor, f acidic.JobFilter) []*acidic.Job {
	t.Helper()
	jobs, err := e.JobList(ctx, f)
	if err != nil {
		t.Fatalf("JobList(%+v): %v", f, err)
	}
	return jobs
}

// fetchOne claims exactly one job of queue q for worker and fails otherwise.
func fetchOne(ctx context.Context, t *testing.T, e storage.Executor, q, worker string) storage.FetchedJob {
	t.Helper()
	jobs, err := e.JobFetch(ctx, storage.JobFetchParams{Queue: q, Max: 1, WorkerID: worker})
	if err != nil {
		t.Fatalf("JobFetch(%s): %v", q, err)
	}
	if len(jobs) != 1 {
		t.Fatalf("JobFetch(%s) returned %d jobs, want 1", q, len(jobs))
	}
	return jobs[0]
}

func ids[J *acidic.Job | storage.FetchedJob](jobs []J) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		switch j := any(j).(type) {
		case *acidic.Job:
			out[i] = j.ID
		case storage.FetchedJob:
			out[i] = j.ID
		}
	}
	return out
}

// --- InTx ---

// TestInTxSerializableRetriesWriteSkew runs the classic write-skew pair (two
// on-call doctors, each transaction takes one off call if the other is still
// on) at SERIALIZABLE. Both transactions read both rows before either writes,
// so one must fail with a serialization error; InTx runs it again, and the
// second run sees the other's write and leaves its doctor on call.
func TestInTxSerializableRetriesWriteSkew(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	exec(ctx, t, drv, `CREATE TABLE {schema}.doctors (id int PRIMARY KEY, on_call bool NOT NULL)`)
	exec(ctx, t, drv, `INSERT INTO {schema}.doctors VALUES (1, true), (2, true)`)
	doctors := table(drv, "doctors")

	var (
		bothRead sync.WaitGroup
		wg       sync.WaitGroup
		runs     [3]atomic.Int32 // runs of fn, per doctor
		errs     [3]error
		tookOff  [3]bool
	)
	bothRead.Add(2)
	for _, id := range []int{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[id] = drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
				n := runs[id].Add(1)
				ptx := postgres.PgxTx(tx)
				if ptx == nil {
					return errors.New("PgxTx returned nil for an InTx transaction")
				}
				var onCall int
				if err := ptx.QueryRow(ctx, "SELECT count(*) FROM "+doctors+" WHERE on_call").Scan(&onCall); err != nil {
					return err
				}
				if n == 1 {
					// Only the first run waits, so that both reads happen
					// before either write; a retry must not block.
					bothRead.Done()
					bothRead.Wait()
				}
				tookOff[id] = false
				if onCall >= 2 {
					if _, err := ptx.Exec(ctx, "UPDATE "+doctors+" SET on_call = false WHERE id = $1", id); err != nil {
						return err
					}
					tookOff[id] = true
				}
				return nil
			})
		}()
	}
	wg.Wait()

	for _, id := range []int{1, 2} {
		if errs[id] != nil {
			t.Errorf("InTx for doctor %d: %v", id, errs[id])
		}
	}
	var onCall int
	if err := drv.Pool().QueryRow(ctx, "SELECT count(*) FROM "+doctors+" WHERE on_call").Scan(&onCall); err != nil {
		t.Fatalf("count on call: %v", err)
	}
	if onCall != 1 {
		t.Errorf("%d doctors on call after both transactions, want 1 (write skew not prevented)", onCall)
	}
	if tookOff[1] == tookOff[2] {
		t.Errorf("took off doctor 1: %v, doctor 2: %v; want exactly one", tookOff[1], tookOff[2])
	}
	total := runs[1].Load() + runs[2].Load()
	if total < 3 {
		t.Errorf("fn ran %d times in all, want at least 3 (one retry)", total)
	}
	if got := drv.Stats().TxRetries; got < 1 || got != int64(total-2) {
		t.Errorf("Stats().TxRetries = %d, want %d (fn runs beyond the first of each)", got, total-2)
	}
}

var errBoom = errors.New("boom")

func TestInTxCommits(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	for _, iso := range []storage.Isolation{storage.ReadCommitted, storage.Serializable} {
		err := drv.InTx(ctx, iso, func(ctx context.Context, tx storage.Tx) error {
			var level string
			if err := postgres.PgxTx(tx).QueryRow(ctx, "SHOW transaction_isolation").Scan(&level); err != nil {
				return err
			}
			want := map[storage.Isolation]string{storage.ReadCommitted: "read committed", storage.Serializable: "serializable"}[iso]
			if level != want {
				t.Errorf("isolation %d: transaction runs at %q, want %q", iso, level, want)
			}
			insertJobs(ctx, t, tx, job("q"))
			return nil
		})
		if err != nil {
			t.Fatalf("InTx(%d): %v", iso, err)
		}
	}
	if jobs := listJobs(ctx, t, drv, acidic.JobFilter{}); len(jobs) != 2 {
		t.Errorf("JobList after two committed transactions returned %d jobs, want 2", len(jobs))
	}
}

// --- closed pool ---

func TestClosedPool(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	// A driver of its own on a second pool, so closing it leaves the test
	// schema's cleanup working.
	pool := testdb.Pool(t, testdb.Options{})
	closed := postgres.New(pool, postgres.Options{Schema: drv.Schema()})
	if _, err := closed.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("q")}}); err != nil {
		t.Fatalf("JobInsertMany before Close: %v", err)
	}
	pool.Close()

	calls := map[string]func() error{
		"JobInsertMany": func() error {
			_, err := closed.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("q")}})
			return err
		},
		"JobGet": func() error {
			_, err := closed.JobGet(ctx, storage.JobGetParams{ID: 1})
			return err
		},
		"JobFetch": func() error {
			_, err := closed.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 1, WorkerID: "w"})
			return err
		},
		"JobComplete": func() error {
			_, err := closed.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: 1, Attempt: 1}}})
			return err
		},
		"RunGetByKey": func() error {
			_, err := closed.RunGetByKey(ctx, storage.RunGetByKeyParams{Key: "k"})
			return err
		},
		"InTx read committed": func() error {
			return closed.InTx(ctx, storage.ReadCommitted, func(context.Context, storage.Tx) error { return nil })
		},
		"InTx serializable": func() error {
			return closed.InTx(ctx, storage.Serializable, func(context.Context, storage.Tx) error { return nil })
		},
		"Notify": func() error {
			return closed.Notify(ctx, storage.NotifyParams{Topic: storage.TopicControl, Payload: "x"})
		},
		"NewListener": func() error {
			l, err := closed.NewListener(ctx)
			if l != nil {
				_ = l.Close(ctx)
				if err == nil {
					return errors.New("NewListener returned a listener and no error")
				}
			}
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := call()
			if !errors.Is(err, acidic.ErrClosed) {
				t.Errorf("%s on a closed pool: err = %v, want ErrClosed", name, err)
			}
		})
	}
	t.Run("no retries", func(t *testing.T) {
		t.Parallel()
		if got := closed.Stats().TxRetries; got != 0 {
			t.Errorf("Stats().TxRetries = %d after failing on a closed pool, want 0", got)
		}
	})
}

// --- WrapTx ---

func TestWrapTx(t *testing.T) {
	t.Parallel()
	for _, commit := range []bool{false, true} {
		name := "rollback"
		if commit {
			name = "commit"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			drv := testdb.New(t, testdb.Options{})
			ptx, err := drv.Pool().Begin(ctx)
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			defer func() { _ = ptx.Rollback(ctx) }()
			tx := drv.WrapTx(ptx)
			if postgres.PgxTx(tx) != ptx {
				t.Error("PgxTx(WrapTx(tx)) does not return tx")
			}
			jobs := insertJobs(ctx, t, tx, job("q"))
			// Inside: visible. Outside: not yet.
			if got := listJobs(ctx, t, tx, acidic.JobFilter{}); len(got) != 1 {
				t.Errorf("JobList inside the transaction returned %d jobs, want 1", len(got))
			}
			if got := listJobs(ctx, t, drv, acidic.JobFilter{}); len(got) != 0 {
				t.Errorf("JobList outside the open transaction returned %d jobs, want 0", len(got))
			}
			if commit {
				err = tx.Commit(ctx)
			} else {
				err = tx.Rollback(ctx)
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got := listJobs(ctx, t, drv, acidic.JobFilter{})
			if !commit {
				if len(got) != 0 {
					t.Errorf("JobList after rollback returned %d jobs, want 0", len(got))
				}
				return
			}
			if len(got) != 1 || got[0].ID != jobs[0].ID {
				t.Errorf("JobList after commit returned %v, want [%d]", ids(got), jobs[0].ID)
			}
			// Rollback after Commit does nothing.
			if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("Rollback after Commit: %v", err)
			}
		})
	}
}

func TestPgxTxForeign(t *testing.T) {
	t.Parallel()
	if got := postgres.PgxTx(nil); got != nil {
		t.Errorf("PgxTx(nil) = %v, want nil", got)
	}
}

// --- Listener ---

func newListener(ctx context.Context, t *testing.T, drv storage.Driver, topics ...string) storage.Listener {
	t.Helper()
	l, err := drv.NewListener(ctx)
	if err != nil {
		t.Fatalf("NewListener: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	for _, topic := range topics {
		if err := l.Listen(ctx, topic); err != nil {
			t.Fatalf("Listen(%s): %v", topic, err)
		}
	}
	return l
}

// waitNone checks that nothing arrives within d.
func waitNone(ctx context.Context, t *testing.T, l storage.Listener, d time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	n, err := l.Wait(wctx)
	if err == nil {
		t.Fatalf("got notification %+v, want none within %v", n, d)
	}
	if !errors.Is(err, context.DeadlineExceeded) && wctx.Err() == nil {
		t.Fatalf("Wait: %v, want a timeout", err)
	}
}

func waitOne(ctx context.Context, t *testing.T, l storage.Listener) storage.Notification {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := l.Wait(wctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return n
}

// queueHint returns the payload of queue's insert notifications.
func queueHint(ctx context.Context, t *testing.T, drv *postgres.Driver, queue string) string {
	t.Helper()
	hints, err := drv.QueueHints(ctx, storage.QueueHintsParams{Queues: []string{queue}})
	if err != nil || len(hints) != 1 {
		t.Fatalf("QueueHints(%q) = %v, %v", queue, hints, err)
	}
	return hints[0]
}

// An insert notification names its queue by a keyed hash: 32 hex digits,
// the same for one queue whenever asked, different for other queues and in
// other schemas (each has its own key), and neither the name nor its plain
// SHA-256.
func TestQueueHintsAreKeyedHashes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	other := testdb.New(t, testdb.Options{})
	hints, err := drv.QueueHints(ctx, storage.QueueHintsParams{Queues: []string{"default", "emails", "default"}})
	if err != nil {
		t.Fatal(err)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	plain := sha256.Sum256([]byte("default"))
	if len(hints) != 3 || !hex32.MatchString(hints[0]) || hints[0] != hints[2] || hints[0] == hints[1] ||
		strings.Contains(hex.EncodeToString(plain[:]), hints[0]) {
		t.Fatalf("QueueHints(default, emails, default) = %q: want 32 hex digits each, equal for equal names only, not the plain hash", hints)
	}
	if h := queueHint(ctx, t, other, "default"); h == hints[0] {
		t.Fatal("two schemas give a queue the same hint: the key is not per schema")
	}
	if got, err := drv.QueueHints(ctx, storage.QueueHintsParams{Queues: nil}); err != nil || len(got) != 0 {
		t.Fatalf("QueueHints(nil) = %v, %v; want none", got, err)
	}
}

func TestListenerRollbackNotDelivered(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	l := newListener(ctx, t, drv, storage.TopicInsert)

	err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		insertJobs(ctx, t, tx, job("rolled_back"))
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want errBoom", err)
	}
	ptx, err := drv.Pool().Begin(ctx)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	insertJobs(ctx, t, drv.WrapTx(ptx), job("rolled_back_too"))
	if err := ptx.Rollback(ctx); err != nil {
		t.Fatalf("Rollback: %v", err)
	}

	// Committed in a transaction: delivered, after the rolled-back ones
	// would have been.
	ptx, err = drv.Pool().Begin(ctx)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	insertJobs(ctx, t, drv.WrapTx(ptx), job("committed"))
	if err := ptx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicInsert, Payload: queueHint(ctx, t, drv, "committed")}) {
		t.Errorf("first notification = %+v, want {insert <hint of committed>}", n)
	}
	waitNone(ctx, t, l, 100*time.Millisecond)
}

// TestLongSchemaName uses the longest schema name PostgreSQL allows (63
// bytes). Channel names have the same limit, so the driver's
// "<schema>.<topic>" channels must still fit.
func TestLongSchemaName(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pool := testdb.Pool(t, testdb.Options{})
	schema := testdb.SchemaName(t)
	schema += strings.Repeat("x", 63-len(schema))
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	drv := postgres.New(pool, postgres.Options{Schema: schema})
	if _, err := drv.Migrator().Up(ctx); err != nil {
		t.Fatalf("migrate schema %q: %v", schema, err)
	}
	l := newListener(ctx, t, drv, storage.TopicInsert, storage.TopicControl)

	if _, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("q")}}); err != nil {
		t.Fatalf("JobInsertMany with a %d-byte schema name: %v", len(schema), err)
	}
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicInsert, Payload: queueHint(ctx, t, drv, "q")}) {
		t.Errorf("notification = %+v, want {insert <hint of q>}", n)
	}
	if err := drv.Notify(ctx, storage.NotifyParams{Topic: storage.TopicControl, Payload: "cancel:1"}); err != nil {
		t.Fatalf("Notify(control) with a %d-byte schema name: %v", len(schema), err)
	}
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicControl, Payload: "cancel:1"}) {
		t.Errorf("notification = %+v, want {control cancel:1}", n)
	}
}

// Two READ COMMITTED transactions that lock two rows in opposite orders
// deadlock; PostgreSQL aborts one, and InTx runs it again, so both commit.
func TestInTxRetriesDeadlockAtReadCommitted(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	tbl := pgx.Identifier{drv.Schema(), "pair"}.Sanitize()
	if _, err := drv.Pool().Exec(ctx, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, n int NOT NULL); INSERT INTO "+tbl+" VALUES (1, 0), (2, 0)"); err != nil {
		t.Fatal(err)
	}
	locked := make(chan struct{}, 2)
	both := make(chan struct{})
	go func() { <-locked; <-locked; close(both) }()
	lockInOrder := func(first, second int) error {
		tries := 0
		return drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			pt := postgres.PgxTx(tx)
			if _, err := pt.Exec(ctx, "UPDATE "+tbl+" SET n = n + 1 WHERE id = $1", first); err != nil {
				return err
			}
			if tries++; tries == 1 {
				locked <- struct{}{}
				<-both // each holds its first row: the second lock deadlocks
			}
			_, err := pt.Exec(ctx, "UPDATE "+tbl+" SET n = n + 1 WHERE id = $1", second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- lockInOrder(1, 2) }()
	go func() { errs <- lockInOrder(2, 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("InTx: %v", err)
		}
	}
	var total int
	if err := drv.Pool().QueryRow(ctx, "SELECT sum(n) FROM "+tbl).Scan(&total); err != nil || total != 4 {
		t.Fatalf("sum %d (%v), want 4: both transactions committed once", total, err)
	}
	if drv.Stats().TxRetries == 0 {
		t.Fatal("no retry counted: the deadlock was not retried")
	}
}

// TestInTxSerializationRetryLimit guards the SERIALIZABLE retry limit of
// InTx: a transaction that keeps failing with a serialization failure (or a
// deadlock) runs once plus Options.MaxTxRetries times, then fails with
// ErrRetriesExhausted (keeping ErrSerialization and the PostgreSQL error),
// and Stats().TxRetries counts each retry. It also guards that the backoff
// between runs honours the context: cancelling it while InTx waits to run
// the transaction again returns context.Canceled at once, with no further
// run.
func TestInTxSerializationRetryLimit(t *testing.T) {
	t.Parallel()
	const maxRetries = 3

	for _, code := range []string{"40001", "40P01"} {
		t.Run("exhausted "+code, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			base := testdb.New(t, testdb.Options{})
			drv := postgres.New(base.Pool(), postgres.Options{
				Schema: base.Schema(), MaxTxRetries: maxRetries, RetryInitialInterval: time.Millisecond,
			})
			runs := 0
			err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
				runs++
				if runs > 10*(maxRetries+1) {
					// The limit is ignored; stop rather than retry until the
					// test times out.
					return errors.New("ran far too often")
				}
				return &pgconn.PgError{Code: code, Message: "could not serialize access (test)"}
			})
			if runs != maxRetries+1 {
				t.Errorf("fn ran %d times, want %d (1 + MaxTxRetries)", runs, maxRetries+1)
			}
			if !errors.Is(err, acidic.ErrRetriesExhausted) {
				t.Errorf("InTx error = %v, want one matching ErrRetriesExhausted", err)
			}
			if !errors.Is(err, acidic.ErrSerialization) {
				t.Errorf("InTx error = %v, want one matching ErrSerialization", err)
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != code {
				t.Errorf("InTx error = %v, want the PostgreSQL error %s kept", err, code)
			}
			if got := drv.Stats().TxRetries; got != maxRetries {
				t.Errorf("Stats().TxRetries = %d, want %d", got, maxRetries)
			}
		})
	}

	t.Run("cancelled while backing off", func(t *testing.T) {
		t.Parallel()
		base := testdb.New(t, testdb.Options{})
		// A backoff far longer than the test: only the context can end it.
		drv := postgres.New(base.Pool(), postgres.Options{
			Schema: base.Schema(), MaxTxRetries: maxRetries, RetryInitialInterval: 10 * time.Minute,
		})
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		var runs atomic.Int32
		done := make(chan error, 1)
		go func() {
			done <- drv.InTx(ctx, storage.Serializable, func(context.Context, storage.Tx) error {
				runs.Add(1)
				return &pgconn.PgError{Code: "40001", Message: "could not serialize access (test)"}
			})
		}()

		// The retry is counted just before the backoff starts.
		deadline := time.Now().Add(10 * time.Second)
		for drv.Stats().TxRetries == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("InTx never started backing off (ran fn %d times)", runs.Load())
			}
			time.Sleep(time.Millisecond)
		}
		if n := runs.Load(); n != 1 {
			t.Fatalf("fn ran %d times before the first backoff, want 1", n)
		}
		cancelled := time.Now()
		cancel()

		select {
		case err := <-done:
			if took := time.Since(cancelled); took > 2*time.Second {
				t.Errorf("InTx returned %v after cancellation, want promptly", took)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("InTx error = %v, want one matching context.Canceled", err)
			}
			if errors.Is(err, acidic.ErrRetriesExhausted) {
				t.Errorf("InTx error = %v claims the retries were exhausted", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("InTx still backing off 5s after its context was cancelled")
		}
		time.Sleep(20 * time.Millisecond)
		if n := runs.Load(); n != 1 {
			t.Errorf("fn ran %d times, want 1: no run after cancellation", n)
		}
		if got := drv.Stats().TxRetries; got != 1 {
			t.Errorf("Stats().TxRetries = %d, want 1", got)
		}
	})
}

// TestJobStateBitMatchesSQL guards that the driver's state bits agree with the
// job_state_bit function of the schema, which the unique-jobs index and
// JobInsertUnique use to apply a job's unique-states mask: a state whose bits
// differ would make a unique job collide in the wrong states.
func TestJobStateBitMatchesSQL(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	query := "SELECT " + pgx.Identifier{drv.Schema()}.Sanitize() + ".job_state_bit($1)"
	seen := make(map[int16]acidic.JobState)
	for _, s := range append(slices.Clone(acidic.AllJobStates), "no_such_state") {
		var sqlBit int16
		if err := drv.Pool().QueryRow(ctx, query, string(s)).Scan(&sqlBit); err != nil {
			t.Fatalf("job_state_bit(%q): %v", s, err)
		}
		if sqlBit != postgres.StateBit(s) {
			t.Errorf("state %q: job_state_bit = %d, stateBit = %d", s, sqlBit, postgres.StateBit(s))
		}
		if !s.Valid() {
			continue
		}
		if b := postgres.StateBit(s); b == 0 || b&(b-1) != 0 {
			t.Errorf("state %q: bit %d is not a single bit", s, b)
		} else if other, dup := seen[b]; dup {
			t.Errorf("states %q and %q share bit %d", other, s, b)
		}
		seen[postgres.StateBit(s)] = s
	}
	if len(seen) != len(acidic.AllJobStates) {
		t.Errorf("%d distinct bits for %d states", len(seen), len(acidic.AllJobStates))
	}
}

// TestInTxRollsBackWhenFnExitsOrPanics: an InTx function that panics, or
// ends its goroutine with runtime.Goexit (t.FailNow in a test), leaves no
// transaction open: the lock it took is free at once for the next one.
func TestInTxRollsBackWhenFnExitsOrPanics(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	for how, end := range map[string]func(){"panic": func() { panic("fn exploded") }, "goexit": runtime.Goexit} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { _ = recover() }()
			_ = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
				if _, err := postgres.PgxTx(tx).Exec(ctx, "SELECT pg_advisory_xact_lock(4242)"); err != nil {
					return err
				}
				end()
				return nil
			})
		}()
		<-done
		err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			var free bool
			if err := postgres.PgxTx(tx).QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(4242)").Scan(&free); err != nil {
				return err
			}
			if !free {
				t.Errorf("after an InTx function's %s: its transaction still holds its lock", how)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
