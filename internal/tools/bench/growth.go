package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
)

const (
	growthWorkers = 4
	fillChunk     = 250000
)

// Scenario 7: the cost per job of fetching and completing (the whole client
// loop, at 4 workers) with 10k, 100k and 1M finished jobs already in the
// table. The finished rows are inserted with one INSERT … SELECT
// generate_series per chunk, then VACUUM ANALYZE runs, as autovacuum would
// have by the time a table holds that many rows.
func (b *bench) growthScenario(ctx context.Context) error {
	if err := b.reset(ctx); err != nil {
		return err
	}
	rows := 0
	var perJob []float64
	for _, size := range b.cfg.growth {
		t0 := time.Now()
		if err := b.fillFinished(ctx, size-rows); err != nil {
			return err
		}
		rows = max(rows, size)
		b.logf("growth: %d finished rows in the table (filled in %s)", rows, time.Since(t0).Round(100*time.Millisecond))
		var rates []float64
		for range b.growthRounds() {
			if err := b.fillJobs(ctx, noopKind, b.cfg.growthBatch); err != nil {
				return err
			}
			elapsed, _, err := b.workBatch(ctx, growthWorkers, b.cfg.growthBatch)
			if err != nil {
				return err
			}
			rows += b.cfg.growthBatch
			rates = append(rates, float64(elapsed.Microseconds())/float64(b.cfg.growthBatch))
		}
		us := median(rates)
		perJob = append(perJob, us)
		b.tbl.add("7 growth", fmt.Sprintf("fetch+complete, %s finished rows", short(size)), growthWorkers, us, "µs/job", nil,
			joinNotes(runsNote(b.growthRounds()), fmt.Sprintf("%d jobs each", b.cfg.growthBatch)))
		b.logf("growth: %s rows: %.0f µs/job", short(size), us)
	}
	if len(perJob) >= 2 {
		first, last := b.cfg.growth[0], b.cfg.growth[len(b.cfg.growth)-1]
		b.tbl.add("7 growth", fmt.Sprintf("ratio %s ÷ %s rows", short(last), short(first)), growthWorkers,
			perJob[len(perJob)-1]/perJob[0], "ratio", atMost(1.5), "")
	}
	return nil
}

// growthRounds is how many batches are timed at each size (median kept):
// the sizes cannot be interleaved, so repetition is what evens out noise.
func (b *bench) growthRounds() int {
	if b.cfg.quick {
		return b.cfg.runs
	}
	return 3 * b.cfg.runs
}

// fillFinished adds n completed jobs straight in SQL (set-up, not engine
// code), then vacuums and analyzes the table.
func (b *bench) fillFinished(ctx context.Context, n int) error {
	if b.lite != nil {
		return b.lite.fillFinished(ctx, b, n)
	}
	for n > 0 {
		k := min(n, fillChunk)
		_, err := b.pool.Exec(ctx, `INSERT INTO `+b.table("jobs")+`
  (queue, kind, args, state, attempt, max_attempts, scheduled_at, attempted_at, attempted_by, finalized_at)
SELECT 'default', 'bench.filler', '{}', 'completed', 1, 20, t, t, 'bench', t
FROM (SELECT now() - make_interval(secs => g / 1000.0) AS t FROM generate_series(1, $1::integer) g) s`, k)
		if err != nil {
			return fmt.Errorf("fill jobs: %w", err)
		}
		n -= k
	}
	if _, err := b.pool.Exec(ctx, "VACUUM (ANALYZE) "+b.table("jobs")); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	// The fill wrote WAL in proportion to its size: 1M rows start a
	// checkpoint that would otherwise run (and add full-page writes)
	// during the 1M measurement only.
	b.checkpoint(ctx)
	return nil
}

// workBatch times a client with w workers working the n available jobs,
// from Start until Stop returned with every completion written.
func (b *bench) workBatch(ctx context.Context, w, n int) (time.Duration, cpuUse, error) {
	worked := newCounter(n)
	ws := queue.NewWorkers()
	if err := ws.Handle(noopKind, func(context.Context, *acidic.Job) error { worked.add(); return nil }, queue.KindOptions{}); err != nil {
		return 0, cpuUse{}, err
	}
	c, err := queue.New(b.drv, b.queueConfig(ws, w))
	if err != nil {
		return 0, cpuUse{}, err
	}
	if err := b.warm(ctx, w+4); err != nil {
		return 0, cpuUse{}, err
	}
	cpu0 := b.cpuSnapshot(ctx)
	t0 := time.Now()
	if err := c.Start(ctx); err != nil {
		return 0, cpuUse{}, err
	}
	err = waitFor(ctx, worked.done, worked.load, stall, "jobs worked")
	if stopErr := stopClient(ctx, c.Stop); err == nil && stopErr != nil {
		err = fmt.Errorf("stop: %w", stopErr)
	}
	elapsed := time.Since(t0)
	cpu := b.cpuSnapshot(ctx).since(cpu0)
	if err != nil {
		return 0, cpuUse{}, err
	}
	// Both through partial indexes: cheap however many rows the table has.
	jobs := b.table("jobs")
	left, err := b.count(ctx, "SELECT (SELECT count(*) FROM "+jobs+" WHERE state IN ('available', 'scheduled', 'retryable'))"+
		" + (SELECT count(*) FROM "+jobs+" WHERE state = 'running')")
	if err != nil {
		return 0, cpuUse{}, err
	}
	if left != 0 {
		return 0, cpuUse{}, fmt.Errorf("%d jobs not completed", left)
	}
	return elapsed, cpu, nil
}

// short writes 1000000 as 1M and 10000 as 10k.
func short(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func joinNotes(notes ...string) string {
	out := ""
	for _, n := range notes {
		if n == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += n
	}
	return out
}
