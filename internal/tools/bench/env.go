package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// bench is one run of the command: its database, and results so far.
type bench struct {
	cfg config
	drv storage.Driver
	// On PostgreSQL, the pool and the throwaway schema; on SQLite, lite
	// (pool is nil then, schema empty).
	pool     *pgxpool.Pool
	schema   string
	lite     *liteStore
	rep      *Report
	tbl      *table
	progress io.Writer
	logger   *slog.Logger // discards: the engine's logs would garble the table

	// Medians measured by earlier scenarios, by concurrency; the latency
	// scenario sizes its load from them.
	jobsPerSec map[int]float64
	runsPerSec map[int]float64

	noCheckpoint bool // CHECKPOINT failed once: not allowed
}

// run sets up the schema, runs the chosen scenarios in order and tears the
// schema down again, whatever happens.
func run(ctx context.Context, url string, cfg config, tbl *table, rep *Report, progress io.Writer) (err error) {
	if path, ok := strings.CutPrefix(url, sqlitePrefix); ok {
		return runSQLite(ctx, path, cfg, tbl, rep, progress)
	}
	rep.Driver = driverPostgres
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	schema := "acidic_bench_" + hex.EncodeToString(rnd[:])
	// The schema's name tells this run's backends apart (CPU accounting);
	// the listener's connection copies it too.
	pcfg.ConnConfig.RuntimeParams["application_name"] = schema
	// Workers, the baseline's goroutines, the enqueuers and the completer
	// each want a connection; the listener opens its own.
	pcfg.MaxConns = int32(cfg.maxWorkers()*2 + 8)
	connectCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(connectCtx, pcfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if err := pool.QueryRow(connectCtx, "SELECT version()").Scan(&rep.Postgres); err != nil {
		return fmt.Errorf("connect: %w", err)
	}

	rep.Schema = schema
	drv := postgres.New(pool, postgres.Options{Schema: schema})
	b := newBench(cfg, drv, tbl, rep, progress)
	b.pool, b.schema = pool, schema
	defer func() {
		// Ctrl-C cancelled ctx; the drop still has to happen.
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, dropErr := pool.Exec(dropCtx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); dropErr != nil {
			err = errors.Join(err, fmt.Errorf("drop schema %s: %w", schema, dropErr))
		}
	}()
	b.logf("schema %s, pool of %d connections, workers %v", schema, pcfg.MaxConns, cfg.workers)
	if _, err := drv.Migrator().Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	return b.runScenarios(ctx)
}

// newBench returns a bench on drv, without its database's own parts.
func newBench(cfg config, drv storage.Driver, tbl *table, rep *Report, progress io.Writer) *bench {
	return &bench{
		cfg: cfg, drv: drv, tbl: tbl, rep: rep, progress: progress,
		logger:     slog.New(slog.DiscardHandler),
		jobsPerSec: map[int]float64{},
		runsPerSec: map[int]float64{},
	}
}

// runScenarios runs the chosen scenarios in order; one the database cannot
// run is listed in the report's Skipped, with why.
func (b *bench) runScenarios(ctx context.Context) error {
	cfg := b.cfg
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"enqueue", b.enqueueScenario},
		{"jobs", b.jobsScenario},
		{"workflows", b.workflowScenario}, // runs the baseline too, interleaved
		{"latency", b.latencyScenario},
		{"memory", b.memoryScenario},
		{"growth", b.growthScenario},
		{"limits", b.limitsScenario},
		{"otel", b.otelScenario},
	}
	for _, s := range steps {
		if s.name == "workflows" && !cfg.has("workflows") && !cfg.has("baseline") {
			continue
		}
		if s.name != "workflows" && !cfg.has(s.name) {
			continue
		}
		if why := b.cannotRun(s.name); why != "" {
			num := slices.Index(scenarioNames, s.name) + 1
			b.rep.Skipped = append(b.rep.Skipped, Skip{Scenario: fmt.Sprintf("%d %s", num, s.name), Why: why})
			b.logf("%s: not run on %s: %s", s.name, b.rep.Driver, why)
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// Start each scenario without a checkpoint of the previous one's
		// WAL running underneath it.
		b.checkpoint(ctx)
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during %s: %w", s.name, ctx.Err())
			}
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.logf("%s done in %s", s.name, time.Since(t0).Round(100*time.Millisecond))
	}
	return nil
}

// checkpoint runs CHECKPOINT where the role may (superuser or
// pg_checkpoint); elsewhere the scenarios simply share the checkpointer.
func (b *bench) checkpoint(ctx context.Context) {
	if b.cfg.quick {
		return // sizes too small to matter; the server may be busy flushing others' writes
	}
	if b.lite != nil {
		b.lite.checkpoint(ctx, b)
		return
	}
	if _, err := b.pool.Exec(ctx, "CHECKPOINT"); err != nil && !b.noCheckpoint {
		b.noCheckpoint = true
		b.logf("CHECKPOINT not allowed (%v); measurements may overlap checkpoints", err)
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

func (b *bench) table(name string) string {
	if b.lite != nil {
		return pgx.Identifier{name}.Sanitize() // the same quoting in SQLite
	}
	return pgx.Identifier{b.schema, name}.Sanitize()
}

// reset empties the engine's tables, so rows left by one measurement never
// slow the next.
func (b *bench) reset(ctx context.Context) error {
	if b.lite != nil {
		return b.lite.reset(ctx)
	}
	_, err := b.pool.Exec(ctx, "TRUNCATE "+b.table("jobs")+", "+b.table("run_steps")+", "+b.table("runs")+", "+b.table("outbox")+", "+
		b.table("queue_slots")+", "+b.table("queue_limits")+" RESTART IDENTITY")
	if err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return nil
}

// warm opens n connections ahead of a timed part, so it does not include
// connecting (a new backend costs milliseconds).
func (b *bench) warm(ctx context.Context, n int) error {
	if b.lite != nil {
		return nil // the driver's connections are open for good
	}
	n = min(n, int(b.pool.Config().MaxConns))
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := b.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("warm pool: %w", err)
		}
		conns = append(conns, c)
	}
	return nil
}

func (b *bench) count(ctx context.Context, sql string, args ...any) (int, error) {
	if b.lite != nil {
		return b.lite.count(ctx, sql, args...)
	}
	var n int
	err := b.pool.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// queueConfig is the client configuration of every measurement: the
// defaults, one queue with the given workers, logs discarded.
func (b *bench) queueConfig(ws *queue.Workers, workers int) queue.Config {
	cfg := queue.Config{Workers: ws, Logger: b.logger}
	if workers > 0 {
		cfg.Queues = map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: workers}}
	}
	return cfg
}

// inserter is a client that only enqueues.
func (b *bench) inserter() (*queue.Client, error) {
	return queue.New(b.drv, b.queueConfig(nil, 0))
}

// fillJobs enqueues n trivial jobs of kind in EnqueueMany statements of at
// most 5,000 rows.
func (b *bench) fillJobs(ctx context.Context, kind string, n int) error {
	c, err := b.inserter()
	if err != nil {
		return err
	}
	const chunk = 5000
	params := make([]queue.EnqueueParams, min(n, chunk))
	for i := range params {
		params[i] = queue.EnqueueParams{Kind: kind}
	}
	for done := 0; done < n; {
		k := min(n-done, chunk)
		if _, err := c.EnqueueMany(ctx, params[:k]); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// enqueueRuns enqueues n runs of a workflow from a few goroutines, perTx
// runs per transaction (EnqueueTx), so setting up many runs is quick.
func (b *bench) enqueueRuns(ctx context.Context, e *workflow.Engine, name string, n, goroutines, perTx int) error {
	var next atomic.Int64
	return parallel(goroutines, func(int) error {
		for {
			start := int(next.Add(int64(perTx))) - perTx
			if start >= n {
				return nil
			}
			k := min(perTx, n-start)
			err := b.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
				for range k {
					if _, err := e.EnqueueTx(ctx, tx, name, struct{}{}, workflow.EnqueueOptions{}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("enqueue runs: %w", err)
			}
		}
	})
}

// parallel runs fn(0..n-1) in n goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopClient stops a started client or engine within a bound, even when ctx
// was cancelled.
func stopClient(ctx context.Context, stop func(context.Context) error) error {
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return stop(stopCtx)
}

// waitFor waits until done is closed, failing when ctx ends or when
// progress() has not moved for stall.
func waitFor(ctx context.Context, done <-chan struct{}, progress func() int64, stall time.Duration, what string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastMoved := progress(), time.Now()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if p := progress(); p != last {
			last, lastMoved = p, time.Now()
		} else if time.Since(lastMoved) > stall {
			return fmt.Errorf("%s: stuck at %d for %s", what, p, stall)
		}
	}
}

// counter counts up to a goal and closes done when it gets there.
type counter struct {
	n    atomic.Int64
	goal int64
	done chan struct{}
	once sync.Once
}

func newCounter(goal int) *counter {
	return &counter{goal: int64(goal), done: make(chan struct{})}
}

func (c *counter) add() {
	if c.n.Add(1) >= c.goal {
		c.once.Do(func() { close(c.done) })
	}
}

func (c *counter) load() int64 { return c.n.Load() }
