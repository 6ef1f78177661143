package reliability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

// Environment variables of the suite.
const (
	// envFull selects the full sizes (ACIDIC_RELIABILITY_FULL=1).
	envFull = "ACIDIC_RELIABILITY_FULL"
	// envReport names a file the count lines are appended to.
	envReport = "ACIDIC_RELIABILITY_REPORT"
	// envWorker makes the test binary a worker process (TestMain).
	envWorker = "ACIDIC_RELIABILITY_WORKER"
	// envSchema, envWorkers and envURL configure a worker process.
	envSchema  = "ACIDIC_RELIABILITY_SCHEMA"
	envWorkers = "ACIDIC_RELIABILITY_WORKERS"
	envURL     = "ACIDIC_RELIABILITY_DATABASE_URL"
	envSleep   = "ACIDIC_RELIABILITY_STEP_SLEEP"
)

// TestMain doubles as a worker process: TestWorkerCrashes starts this test
// binary again with ACIDIC_RELIABILITY_WORKER set, and SIGKILLs it.
func TestMain(m *testing.M) {
	if mode := os.Getenv(envWorker); mode != "" {
		os.Exit(workerMain(mode))
	}
	os.Exit(m.Run())
}

// fullRun reports whether the full sizes were asked for.
func fullRun() bool {
	v := strings.ToLower(os.Getenv(envFull))
	return v != "" && v != "0" && v != "false"
}

// pick returns def, or full when the full sizes were asked for.
func pick[T any](def, full T) T {
	if fullRun() {
		return full
	}
	return def
}

// stallTimeout is how long a scenario waits without any progress before it
// fails: well past the rescue delays of every scenario.
func stallTimeout() time.Duration { return pick(45*time.Second, 90*time.Second) }

// counts are what a scenario reports.
type counts struct {
	scenario   string
	runs       int
	kills      int
	restarts   int
	txRetries  int64
	duplicates int
	lost       int
}

// report logs the scenario's counts in the fixed format (and appends them to
// $ACIDIC_RELIABILITY_REPORT when set).
func report(t *testing.T, c counts, started time.Time) {
	t.Helper()
	line := fmt.Sprintf("reliability: scenario=%s runs=%d kills=%d restarts=%d tx_retries=%d duplicates=%d lost=%d",
		c.scenario, c.runs, c.kills, c.restarts, c.txRetries, c.duplicates, c.lost)
	t.Log(line)
	t.Logf("reliability: scenario=%s took=%s full=%v", c.scenario, time.Since(started).Round(time.Millisecond), fullRun())
	if path := os.Getenv(envReport); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report file: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "%s took=%s full=%v\n", line, time.Since(started).Round(time.Millisecond), fullRun())
	}
	if c.duplicates != 0 || c.lost != 0 {
		t.Errorf("scenario %s: %d duplicate effects and %d lost runs, want 0 and 0", c.scenario, c.duplicates, c.lost)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// quietLogger drops the engines' logs below Error (the scenarios make them
// warn a lot, on purpose) and counts every message, for diagnostics.
type quietLogger struct {
	mu     sync.Mutex
	counts map[string]int
	out    io.Writer
}

func newQuietLogger(out io.Writer) (*slog.Logger, *quietLogger) {
	q := &quietLogger{counts: map[string]int{}, out: out}
	return slog.New(q), q
}

func (q *quietLogger) Enabled(context.Context, slog.Level) bool { return true }
func (q *quietLogger) WithAttrs([]slog.Attr) slog.Handler       { return q }
func (q *quietLogger) WithGroup(string) slog.Handler            { return q }
func (q *quietLogger) Handle(_ context.Context, r slog.Record) error {
	q.mu.Lock()
	q.counts[r.Message]++
	q.mu.Unlock()
	if r.Level >= slog.LevelError && q.out != nil {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		q.mu.Lock()
		fmt.Fprintln(q.out, b.String())
		q.mu.Unlock()
	}
	return nil
}

// count returns how often a message was logged.
func (q *quietLogger) count(msg string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.counts[msg]
}

// summary lists the messages logged, for a failing test's output.
func (q *quietLogger) summary() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var b strings.Builder
	for m, n := range q.counts {
		fmt.Fprintf(&b, "  %5d × %s\n", n, m)
	}
	return b.String()
}

// poolConfig parses url into a pool config with an application name and a
// pool size.
func poolConfig(t testing.TB, url, appName string, maxConns int32) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	cfg.MaxConns = maxConns
	if appName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 5*time.Second {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return cfg
}

// newPool opens a pool closed when the test ends.
func newPool(t testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("cannot reach the database (run the README's test command, or set DATABASE_URL): %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// testURL is the shared test database.
func testURL() string { return testdb.URL() }

func qualify(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// createScenarioTables makes the tables every scenario records into:
//
//   - effects: one row per step effect, written in the step's transaction;
//     the primary key (run_id, step, item) makes a second commit of the same
//     effect fail loudly.
//   - dup_events: every time a step's code found its effect already
//     committed (a unique violation), written outside the transaction so it
//     survives the rollback. Each row is a step that ran again after it
//     committed.
//   - executions: every execution of a step's code, committed or not,
//     written outside the transaction with the database's clock.
//   - worker_stats: serialization retries reported by worker processes.
//   - tally: a counter every contended step increments in its transaction.
func createScenarioTables(t testing.TB, pool *pgxpool.Pool, schema string) {
	t.Helper()
	stmts := []string{
		"CREATE TABLE " + qualify(schema, "effects") + ` (
			run_id uuid NOT NULL, step text NOT NULL, item int NOT NULL DEFAULT 0,
			actor text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp(),
			PRIMARY KEY (run_id, step, item))`,
		"CREATE TABLE " + qualify(schema, "dup_events") + ` (
			id bigserial PRIMARY KEY, run_id uuid NOT NULL, step text NOT NULL, item int NOT NULL,
			actor text NOT NULL, err text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
		"CREATE TABLE " + qualify(schema, "executions") + ` (
			id bigserial PRIMARY KEY, run_id uuid NOT NULL, step text NOT NULL, item int NOT NULL,
			actor text NOT NULL, started_at timestamptz NOT NULL DEFAULT clock_timestamp(), finished_at timestamptz)`,
		"CREATE TABLE " + qualify(schema, "worker_stats") + ` (actor text PRIMARY KEY, tx_retries bigint NOT NULL)`,
		"CREATE TABLE " + qualify(schema, "tally") + ` (id int PRIMARY KEY, n bigint NOT NULL)`,
		"INSERT INTO " + qualify(schema, "tally") + ` VALUES (1, 0)`,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("create scenario tables: %v\n%s", err, s)
		}
	}
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitUntil polls cond every interval until it reports true or timeout
// passes; it returns cond's last description on timeout.
func waitUntil(timeout, interval time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return true, saw
		}
		if time.Now().After(deadline) {
			return false, saw
		}
		time.Sleep(interval)
	}
}
