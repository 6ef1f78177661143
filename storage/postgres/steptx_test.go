package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

func stepUpdate(r *acidic.Run, token, next string) storage.RunUpdateParams {
	return storage.RunUpdateParams{ID: r.ID, Token: token, State: acidic.RunRunning, RecoveryPoint: next,
		Attrs: []byte(`{"n":1}`), Step: &acidic.Step{Position: 0, Name: r.RecoveryPoint, State: acidic.StepSucceeded, Attempt: 1, StartedAt: time.Now()}}
}

// createNotes makes a table for a step's own writes.
func createNotes(ctx context.Context, t *testing.T, drv *postgres.Driver) string {
	t.Helper()
	table := pgx.Identifier{drv.Schema(), "notes"}.Sanitize()
	if _, err := drv.Pool().Exec(ctx, "CREATE TABLE "+table+" (k text PRIMARY KEY, v integer NOT NULL DEFAULT 0)"); err != nil {
		t.Fatal(err)
	}
	return table
}

func countRows(ctx context.Context, t *testing.T, drv *postgres.Driver, query string, args ...any) int {
	t.Helper()
	var n int
	if err := drv.Pool().QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// requireIdlePool fails unless every connection went back to the pool, in a
// state that lets it run statements.
func requireIdlePool(ctx context.Context, t *testing.T, drv *postgres.Driver) {
	t.Helper()
	if n := drv.Pool().Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d connections still acquired", n)
	}
	if err := drv.Pool().Ping(ctx); err != nil {
		t.Fatalf("pool unusable after the step: %v", err)
	}
}

func TestInStepTxUntouchedCommitsTheUpdateAlone(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	r := leasedRun(ctx, t, drv, "k", "a")
	got, err := drv.InStepTx(ctx, func(context.Context, storage.Tx) (storage.StepCommit, error) {
		// The transaction has not begun: no connection is held.
		if n := drv.Pool().Stat().AcquiredConns(); n != 0 {
			t.Errorf("%d connections acquired while the step runs without touching its transaction", n)
		}
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.RecoveryPoint != "step2" || string(got.Attrs) != `{"n": 1}` || got.LockedBy != "a" {
		t.Fatalf("returned run: recovery point %q, attrs %s, locked by %q", got.RecoveryPoint, got.Attrs, got.LockedBy)
	}
	if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step2" {
		t.Fatalf("stored recovery point %q, want step2", now.RecoveryPoint)
	}
	steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: r.ID})
	if err != nil || len(steps) != 1 || steps[0].State != acidic.StepSucceeded {
		t.Fatalf("step log %+v, %v", steps, err)
	}
	requireIdlePool(ctx, t, drv)
}

func TestInStepTxCommitsTheStepsWritesWithTheUpdate(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	notes := createNotes(ctx, t, drv)
	r := leasedRun(ctx, t, drv, "k", "a")
	_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		ptx := postgres.PgxTx(tx)
		if _, err := ptx.Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('charged')"); err != nil {
			return storage.StepCommit{}, err
		}
		var iso string
		if err := ptx.QueryRow(ctx, "SHOW transaction_isolation").Scan(&iso); err != nil || iso != "serializable" {
			return storage.StepCommit{}, fmt.Errorf("isolation %q (%v), want serializable", iso, err)
		}
		// The engine owns the end of the transaction.
		if err := ptx.Commit(ctx); !errors.Is(err, postgres.ErrStepTxOwned) {
			return storage.StepCommit{}, fmt.Errorf("Commit inside a step: %v, want ErrStepTxOwned", err)
		}
		if err := tx.Rollback(ctx); !errors.Is(err, postgres.ErrStepTxOwned) {
			return storage.StepCommit{}, fmt.Errorf("Rollback inside a step: %v, want ErrStepTxOwned", err)
		}
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 1 {
		t.Fatalf("%d rows written by the step, want 1", n)
	}
	requireIdlePool(ctx, t, drv)
}

// A step whose run was taken over must not commit anything, although its
// COMMIT is sent in the same round trip as the fenced update.
func TestInStepTxLeaseLostRollsBackTheStep(t *testing.T) {
	t.Parallel()
	for _, touched := range []bool{false, true} {
		t.Run(fmt.Sprintf("touched=%v", touched), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			drv := testdb.New(t, testdb.Options{})
			notes := createNotes(ctx, t, drv)
			r := leasedRun(ctx, t, drv, "k", "a")
			calls := 0
			_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
				calls++
				if touched {
					if _, err := postgres.PgxTx(tx).Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('charged')"); err != nil {
						return storage.StepCommit{}, err
					}
				}
				return storage.StepCommit{Update: stepUpdate(r, "b", "step2")}, nil
			})
			if !errors.Is(err, acidic.ErrLeaseLost) {
				t.Fatalf("err = %v, want ErrLeaseLost", err)
			}
			if calls != 1 {
				t.Errorf("step function ran %d times, want 1 (a lost lease is not retried)", calls)
			}
			if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 0 {
				t.Errorf("%d rows of the step committed", n)
			}
			if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step1" || now.LockedBy != "a" {
				t.Errorf("run changed: recovery point %q, locked by %q", now.RecoveryPoint, now.LockedBy)
			}
			if steps, _ := drv.RunSteps(ctx, storage.RunStepsParams{ID: r.ID}); len(steps) != 0 {
				t.Errorf("step log written: %+v", steps)
			}
			requireIdlePool(ctx, t, drv)
		})
	}
}

func TestInStepTxErrorAndPanicRollBack(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	notes := createNotes(ctx, t, drv)
	r := leasedRun(ctx, t, drv, "k", "a")
	write := func(ctx context.Context, tx storage.Tx) {
		if _, err := postgres.PgxTx(tx).Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('x')"); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("card declined")
	_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		write(ctx, tx)
		return storage.StepCommit{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the step's error", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "step panicked" {
				t.Fatalf("recovered %v, want the step's panic", p)
			}
		}()
		_, _ = drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			write(ctx, tx)
			panic("step panicked")
		})
	}()
	// Then runs after the update in the same transaction; its error rolls
	// back the update too.
	_, err = drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2"), Then: func(ctx context.Context, tx storage.Tx, got *acidic.Run) error {
			if got.RecoveryPoint != "step2" {
				t.Errorf("Then saw recovery point %q, want step2", got.RecoveryPoint)
			}
			write(ctx, tx)
			return boom
		}}, nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err from Then = %v, want its error", err)
	}
	if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 0 {
		t.Errorf("%d rows committed by failed steps", n)
	}
	if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step1" {
		t.Errorf("recovery point %q after failed steps, want step1", now.RecoveryPoint)
	}
	requireIdlePool(ctx, t, drv)

	// And a Then that succeeds commits with the update.
	_, err = drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2"), Then: func(ctx context.Context, tx storage.Tx, _ *acidic.Run) error {
			write(ctx, tx)
			return nil
		}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 1 {
		t.Errorf("%d rows after a step with Then, want 1", n)
	}
	requireIdlePool(ctx, t, drv)
}

// Two steps in write skew (each reads both rows and writes one): SERIALIZABLE
// fails one of them, and InStepTx runs its function again.
func TestInStepTxRetriesSerializationFailures(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	notes := createNotes(ctx, t, drv)
	if _, err := drv.Pool().Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('a'), ('b')"); err != nil {
		t.Fatal(err)
	}
	retries0 := drv.Stats().TxRetries
	var calls atomic.Int32
	var bothRead sync.WaitGroup
	bothRead.Add(2)
	step := func(key, token string, r *acidic.Run) error {
		var once sync.Once
		_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			calls.Add(1)
			ptx := postgres.PgxTx(tx)
			var sum int
			if err := ptx.QueryRow(ctx, "SELECT sum(v) FROM "+notes).Scan(&sum); err != nil {
				return storage.StepCommit{}, err
			}
			once.Do(func() { bothRead.Done(); bothRead.Wait() })
			if _, err := ptx.Exec(ctx, "UPDATE "+notes+" SET v = $2 WHERE k = $1", key, sum+1); err != nil {
				return storage.StepCommit{}, err
			}
			return storage.StepCommit{Update: stepUpdate(r, token, "step2")}, nil
		})
		return err
	}
	ra := leasedRun(ctx, t, drv, "ka", "a")
	rb := leasedRun(ctx, t, drv, "kb", "b")
	errs := make(chan error, 2)
	go func() { errs <- step("a", "a", ra) }()
	go func() { errs <- step("b", "b", rb) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() < 3 || drv.Stats().TxRetries == retries0 {
		t.Fatalf("%d calls, %d retries; want a serialization failure retried", calls.Load(), drv.Stats().TxRetries-retries0)
	}
	// Serial order: the second step saw the first one's write.
	if sum := countRows(ctx, t, drv, "SELECT sum(v) FROM "+notes); sum != 3 {
		t.Fatalf("sum = %d, want 3 (1, then 1+1)", sum)
	}
	for _, r := range []*acidic.Run{ra, rb} {
		if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step2" {
			t.Errorf("run %s at %q, want step2", r.IdempotencyKey, now.RecoveryPoint)
		}
	}
	requireIdlePool(ctx, t, drv)
}

// wireLog records what the connections of a pool send, through pgx's tracer
// hooks and a count of the writes to their sockets.
type wireLog struct {
	mu     sync.Mutex
	events []wireEvent
	writes int // socket writes: each flush of the client is one round trip
}

// wireEvent is one query sent on its own, one prepare, or one batch.
type wireEvent struct {
	kind string   // "query", "prepare" or "batch"
	sqls []string // the statement, or the batch's statements in order
	args [][]any
}

func (e wireEvent) String() string { return e.kind + " " + strings.Join(e.sqls, " ; ") }

func (l *wireLog) add(e wireEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns what was recorded since the last call and starts afresh.
func (l *wireLog) take() ([]wireEvent, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	events, writes := l.events, l.writes
	l.events, l.writes = nil, 0
	return events, writes
}

func (l *wireLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.add(wireEvent{kind: "query", sqls: []string{d.SQL}, args: [][]any{d.Args}})
	return ctx
}

func (l *wireLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *wireLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	e := wireEvent{kind: "batch"}
	for _, q := range d.Batch.QueuedQueries {
		e.sqls = append(e.sqls, q.SQL)
		e.args = append(e.args, q.Arguments)
	}
	l.add(e)
	return ctx
}

func (l *wireLog) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (l *wireLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (l *wireLog) TracePrepareStart(ctx context.Context, _ *pgx.Conn, d pgx.TracePrepareStartData) context.Context {
	l.add(wireEvent{kind: "prepare", sqls: []string{d.SQL}})
	return ctx
}

func (l *wireLog) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

var (
	_ pgx.QueryTracer   = (*wireLog)(nil)
	_ pgx.BatchTracer   = (*wireLog)(nil)
	_ pgx.PrepareTracer = (*wireLog)(nil)
)

// countingConn counts the writes to a connection's socket. pgconn buffers a
// round trip's messages and writes them with one call when it flushes.
type countingConn struct {
	net.Conn
	log *wireLog
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes++
	c.log.mu.Unlock()
	return c.Conn.Write(b)
}

// tracedDriver returns a driver on drv's schema whose pool has one
// connection, traced by the returned log. The pool does not ping the
// connection when it is acquired, so every write is the driver's.
func tracedDriver(ctx context.Context, t *testing.T, drv *postgres.Driver) (*postgres.Driver, *wireLog) {
	t.Helper()
	log := &wireLog{}
	cfg, err := pgxpool.ParseConfig(testdb.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	cfg.ConnConfig.Tracer = log
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, log: log}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // before testdb drops the schema
	return postgres.New(pool, postgres.Options{Schema: drv.Schema()}), log
}

// The end of a step is one round trip (doc.go, commitPipelined): the fenced
// RunUpdate and the COMMIT go in one pgx batch, with the BEGIN in front of
// them when the step never used its transaction. The steps measured here run
// on a connection that already ran the same statements, so pgx has them
// prepared (on a fresh connection, pgx first prepares a batch's new
// statements in a round trip of their own).
//
// Asserted, on the connection of a one-connection pool:
//   - a step that does not touch its transaction sends exactly one batch,
//     [BEGIN, RunUpdate, COMMIT], and nothing else; one socket write;
//   - a step that runs one query sends the transaction's BEGIN (pgx's BeginTx,
//     on first use), then that query, then exactly one batch,
//     [RunUpdate, COMMIT], and nothing else; three socket writes, so the
//     step's end after its query is one.
func TestInStepTxEndIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	setup := testdb.New(t, testdb.Options{})
	notes := createNotes(ctx, t, setup)
	r := leasedRun(ctx, t, setup, "k", "a")
	drv, log := tracedDriver(ctx, t, setup)
	const query = "INSERT INTO %s (k) VALUES ($1)"
	position := 0
	step := func(t *testing.T, touch bool) {
		t.Helper()
		position++
		u := stepUpdate(r, "a", fmt.Sprintf("step%d", position+1))
		u.Step.Position = position
		got, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			if touch {
				if _, err := postgres.PgxTx(tx).Exec(ctx, fmt.Sprintf(query, notes), fmt.Sprint(position)); err != nil {
					return storage.StepCommit{}, err
				}
			}
			return storage.StepCommit{Update: u}, nil
		})
		if err != nil {
			t.Fatalf("step %d: %v", position, err)
		}
		if got.RecoveryPoint != u.RecoveryPoint {
			t.Fatalf("step %d: recovery point %q, want %q", position, got.RecoveryPoint, u.RecoveryPoint)
		}
	}
	isBegin := func(sql string) bool { return strings.HasPrefix(strings.ToUpper(sql), "BEGIN") }
	isCommit := func(sql string) bool { return strings.EqualFold(strings.TrimSpace(sql), "COMMIT") }
	// The fenced update is the statement with the run's token as its second
	// argument.
	isUpdate := func(args []any) bool { return len(args) > 1 && args[1] == "a" }
	dump := func(events []wireEvent) string {
		var b strings.Builder
		for _, e := range events {
			fmt.Fprintf(&b, "\n\t%.160s", strings.Join(strings.Fields(e.String()), " "))
		}
		return b.String()
	}

	// Warm the connection: both kinds of step once.
	step(t, false)
	step(t, true)
	log.take()

	t.Run("untouched", func(t *testing.T) {
		step(t, false)
		events, writes := log.take()
		if len(events) != 1 || events[0].kind != "batch" {
			t.Fatalf("sent %d things, want exactly one batch:%s", len(events), dump(events))
		}
		b := events[0]
		if len(b.sqls) != 3 || !isBegin(b.sqls[0]) || !isUpdate(b.args[1]) || !isCommit(b.sqls[2]) {
			t.Fatalf("batch is not [BEGIN, RunUpdate, COMMIT]:%s", dump(events))
		}
		if writes != 1 {
			t.Fatalf("%d socket writes (round trips), want 1:%s", writes, dump(events))
		}
	})
	t.Run("one query", func(t *testing.T) {
		step(t, true)
		events, writes := log.take()
		if len(events) != 3 || events[0].kind != "query" || !isBegin(events[0].sqls[0]) ||
			events[1].kind != "query" || events[1].sqls[0] != fmt.Sprintf(query, notes) || events[2].kind != "batch" {
			t.Fatalf("sent %d things, want the BEGIN, the step's query, then one batch:%s", len(events), dump(events))
		}
		b := events[2]
		if len(b.sqls) != 2 || !isUpdate(b.args[0]) || !isCommit(b.sqls[1]) {
			t.Fatalf("batch is not [RunUpdate, COMMIT]:%s", dump(events))
		}
		if writes != 3 {
			t.Fatalf("%d socket writes (round trips), want 3 (BEGIN, query, batch):%s", writes, dump(events))
		}
	})
	if n := countRows(ctx, t, setup, "SELECT count(*) FROM "+notes); n != 2 {
		t.Fatalf("%d rows written by the steps, want 2", n)
	}
	if now := getRun(ctx, t, setup, r.ID); now.RecoveryPoint != "step5" {
		t.Fatalf("recovery point %q, want step5", now.RecoveryPoint)
	}
	if steps := runSteps(ctx, t, setup, r.ID); len(steps) != 4 {
		t.Fatalf("%d steps logged, want 4", len(steps))
	}
}
