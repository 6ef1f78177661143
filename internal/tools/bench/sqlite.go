package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acidic-go/acidic/storage/sqlite"
)

// The bench on SQLite (-database sqlite:PATH). It never writes to PATH: it
// works in a throwaway file beside it, PATH.bench-<random>, on the same file
// system (what the figures depend on), and removes that file, its WAL and
// its shared-memory index when it ends, also on Ctrl-C or an error, as the
// PostgreSQL bench drops its schema.
//
// The baseline is issue 15's: BEGIN IMMEDIATE; UPDATE one row; COMMIT, on a
// connection of its own to the same file with the driver's writer pragmas
// (WAL, synchronous=FULL, the same busy timeout and page cache), its UPDATE
// prepared once. Its goroutines take turns on that one connection, as the
// driver's writers take turns on its one writer connection: SQLite runs one
// write transaction at a time per file, and a pool of connections waiting
// on SQLite's busy handler made no more transactions per second (it sleeps
// between tries; docs/performance.md).

const (
	sqlitePrefix   = "sqlite:"
	driverPostgres = "postgres"
	driverSQLite   = "sqlite"
	// liteBusyTimeout is the driver's default busy timeout
	// (sqlite.Options.BusyTimeout), which the bench's own connections use
	// too.
	liteBusyTimeout = 10 * time.Second
)

// liteStore is the SQLite side of a bench: the throwaway file and the
// bench's own connections to it.
type liteStore struct {
	file string
	// db serves set-up, counts and resets: connections with the driver's
	// pragmas, outside the driver (as psql would be).
	db *sql.DB

	// The baseline's connection and statement; mu makes its goroutines take
	// turns.
	mu     sync.Mutex
	raw    *sql.Conn
	update *sql.Stmt
}

// liteDSN is the data source name of a connection to file with the
// pragmas of the driver's writer connection (storage/sqlite's dsn).
func liteDSN(file string) string {
	q := url.Values{}
	for _, p := range []string{
		"busy_timeout(" + strconv.FormatInt(liteBusyTimeout.Milliseconds(), 10) + ")",
		"foreign_keys(1)", "journal_mode(WAL)", "synchronous(FULL)", "cache_size(-8192)",
	} {
		q.Add("_pragma", p)
	}
	return (&url.URL{Scheme: "file", Path: file, RawQuery: q.Encode()}).String()
}

// runSQLite runs the bench in a throwaway file beside path.
func runSQLite(ctx context.Context, path string, cfg config, tbl *table, rep *Report, progress io.Writer) (err error) {
	rep.Driver = driverSQLite
	if strings.TrimSpace(path) == "" {
		return errors.New("sqlite: needs a file path (sqlite:./acidic.db); the bench works in a throwaway file beside it")
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	file := abs + ".bench-" + hex.EncodeToString(rnd[:])
	rep.File = file
	defer func() {
		// Also when Open failed half-way: whatever it created goes.
		for _, f := range []string{file, file + "-wal", file + "-shm", file + "-journal"} {
			if rmErr := os.Remove(f); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove %s: %w", f, rmErr))
			}
		}
	}()
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	drv, err := sqlite.Open(openCtx, file, sqlite.Options{BusyTimeout: liteBusyTimeout, Migrate: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer func() {
		if closeErr := drv.Close(); closeErr != nil {
			err = errors.Join(err, fmt.Errorf("close the driver: %w", closeErr))
		}
	}()
	ls, err := openLiteStore(openCtx, file)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ls.close()) }()
	if err := ls.db.QueryRowContext(openCtx, "SELECT sqlite_version()").Scan(&rep.SQLite); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	b := newBench(cfg, drv, tbl, rep, progress)
	b.lite = ls
	b.logf("file %s (SQLite %s), workers %v", file, rep.SQLite, cfg.workers)
	return b.runScenarios(ctx)
}

func openLiteStore(ctx context.Context, file string) (*liteStore, error) {
	db, err := sql.Open("sqlite", liteDSN(file))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	raw, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return &liteStore{file: file, db: db, raw: raw}, nil
}

func (ls *liteStore) close() error {
	var errs []error
	if ls.update != nil {
		errs = append(errs, ls.update.Close())
	}
	errs = append(errs, ls.raw.Close(), ls.db.Close())
	return errors.Join(errs...)
}

// cannotRun says why a scenario cannot run on the bench's database; ""
// when it can. Every scenario runs on both drivers today; this is where a
// scenario that cannot says so, rather than leaving a silent gap.
func (b *bench) cannotRun(string) string { return "" }

// liteResetTables are emptied between measurements, children first.
var liteResetTables = []string{
	"run_step_logs", "run_step_failures", "run_steps", "awaited_jobs", "job_graphs", "jobs", "runs", "outbox",
	"queue_slots", "queue_limits",
}

// reset empties the engine's tables and restarts their ids, as the
// PostgreSQL bench's TRUNCATE … RESTART IDENTITY does.
func (ls *liteStore) reset(ctx context.Context) error {
	var q strings.Builder
	q.WriteString("BEGIN IMMEDIATE;\n")
	for _, t := range liteResetTables {
		q.WriteString("DELETE FROM " + t + ";\n")
	}
	q.WriteString("DELETE FROM sqlite_sequence;\nCOMMIT;")
	conn, err := ls.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, q.String()); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}

func (ls *liteStore) count(ctx context.Context, q string, args ...any) (int, error) {
	var n int
	err := ls.db.QueryRowContext(ctx, q, args...).Scan(&n)
	return n, err
}

// checkpoint copies the WAL into the file and truncates it, so that a
// scenario does not pay for the previous one's checkpoint.
func (ls *liteStore) checkpoint(ctx context.Context, b *bench) {
	if _, err := ls.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.logf("wal_checkpoint: %v", err)
	}
}

// createBaselineTable (re)creates bench_rows with a row for each of
// goroutines goroutines, BaselineSpacing apart as on PostgreSQL, and
// prepares the baseline's UPDATE on its connection.
func (ls *liteStore) createBaselineTable(ctx context.Context, goroutines int) error {
	rows := goroutines*BaselineSpacing + 1
	_, err := ls.raw.ExecContext(ctx, `DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
INSERT INTO bench_rows (id) WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < `+strconv.Itoa(rows-1)+`) SELECT i FROM g;`)
	if err != nil {
		return fmt.Errorf("baseline table: %w", err)
	}
	if ls.update != nil {
		_ = ls.update.Close()
	}
	ls.update, err = ls.raw.PrepareContext(ctx, "UPDATE bench_rows SET n = n + 1 WHERE id = ?")
	if err != nil {
		return fmt.Errorf("baseline table: %w", err)
	}
	return nil
}

// runBaseline runs n baseline transactions from goroutines goroutines, each
// updating its own row.
func (ls *liteStore) runBaseline(ctx context.Context, goroutines, n int) error {
	var next atomic.Int64
	return parallel(goroutines, func(i int) error {
		row := i * BaselineSpacing
		for next.Add(1) <= int64(n) {
			if err := ls.baselineTx(ctx, row); err != nil {
				return err
			}
		}
		return nil
	})
}

func (ls *liteStore) baselineTx(ctx context.Context, row int) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, err := ls.raw.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if _, err := ls.update.ExecContext(ctx, row); err != nil {
		_, _ = ls.raw.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := ls.raw.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = ls.raw.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	return nil
}

// fillFinished adds n completed jobs straight in SQL (set-up, not engine
// code), in transactions of fillChunk, then runs ANALYZE and checkpoints.
func (ls *liteStore) fillFinished(ctx context.Context, b *bench, n int) error {
	for n > 0 {
		k := min(n, fillChunk)
		now := time.Now().UnixMicro()
		_, err := ls.db.ExecContext(ctx, `INSERT INTO jobs
  (queue, kind, args, state, attempt, max_attempts, scheduled_at, attempted_at, attempted_by, finalized_at, created_at)
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)
SELECT 'default', 'bench.filler', '{}', 'completed', 1, 20, t, t, 'bench', t, t
FROM (SELECT ? - i * 1000 AS t FROM g)`, k, now)
		if err != nil {
			return fmt.Errorf("fill jobs: %w", err)
		}
		n -= k
	}
	if _, err := ls.db.ExecContext(ctx, "ANALYZE jobs"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	b.checkpoint(ctx)
	return nil
}

// openNode opens a driver of its own on the file for one client of the
// limits scenario.
func (ls *liteStore) openNode(ctx context.Context) (limitNode, error) {
	drv, err := sqlite.Open(ctx, ls.file, sqlite.Options{BusyTimeout: liteBusyTimeout})
	if err != nil {
		return limitNode{}, fmt.Errorf("node driver: %w", err)
	}
	return limitNode{
		drv:   drv,
		warm:  func(context.Context) error { return nil },
		close: func() { _ = drv.Close() },
	}, nil
}
