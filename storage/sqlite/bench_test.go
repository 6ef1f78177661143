package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// The benchmarks compare a workflow step's transaction (InStepTx: the
// step's own write and the run's progress, committed with synchronous=FULL)
// with the raw transaction of issue 15's target, BEGIN IMMEDIATE; UPDATE
// one row; COMMIT, on a connection of its own to the same file with the
// same pragmas. Issue 15 asks steps/s ≥ 0.8 × raw tx/s.
//
//	go test -run '^$' -bench . -benchtime 3s ./storage/sqlite/

// benchFile opens a migrated driver on a new file with a one-row table the
// raw transactions and the steps update.
func benchFile(b *testing.B) (*sqlite.Driver, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	ctx := context.Background()
	drv, err := sqlite.Open(ctx, path, sqlite.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = drv.Close() })
	err = drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		_, err := sqlite.SQLTx(tx).ExecContext(ctx, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)")
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return drv, path
}

// rawConn is a connection of its own to the file at path, with the
// driver's pragmas, and the baseline's prepared UPDATE.
type rawConn struct {
	db     *sql.DB
	conn   *sql.Conn
	update *sql.Stmt
}

func openRaw(b *testing.B, path string) *rawConn {
	b.Helper()
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "foreign_keys(1)", "journal_mode(WAL)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	update, err := conn.PrepareContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1")
	if err != nil {
		b.Fatal(err)
	}
	r := &rawConn{db: db, conn: conn, update: update}
	b.Cleanup(func() {
		_ = r.update.Close()
		_ = r.conn.Close()
		_ = r.db.Close()
	})
	return r
}

// tx runs one baseline transaction.
func (r *rawConn) tx(b *testing.B) {
	ctx := context.Background()
	if _, err := r.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		b.Fatal(err)
	}
	if _, err := r.update.ExecContext(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := r.conn.ExecContext(ctx, "COMMIT"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRawTx is the baseline: BEGIN IMMEDIATE; UPDATE counter; COMMIT
// through database/sql on one connection, WAL, synchronous=FULL.
func BenchmarkRawTx(b *testing.B) {
	_, path := benchFile(b)
	raw := openRaw(b, path)
	b.ResetTimer()
	for range b.N {
		raw.tx(b)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// leasedRunFor inserts a run and leases it to a claimed job's attempt, as
// the engine's fetch does.
func leasedRunFor(b *testing.B, drv *sqlite.Driver) *acidic.Run {
	b.Helper()
	ctx := context.Background()
	r, _, err := drv.RunInsert(ctx, storage.RunInsertParams{ID: newID(), IdempotencyKey: "bench", Workflow: "wf",
		Args: json.RawMessage(`{}`), Queue: "q", RecoveryPoint: "s0", DefinitionHash: "h"})
	if err != nil {
		b.Fatal(err)
	}
	jobs, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{{Queue: "q", Kind: "wf",
		Args: json.RawMessage(`{}`), RunID: r.ID, State: acidic.JobAvailable, MaxAttempts: 3}}})
	if err != nil {
		b.Fatal(err)
	}
	fetched, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 1, WorkerID: "w"})
	if err != nil || len(fetched) != 1 || fetched[0].ID != jobs[0].ID || fetched[0].LeasedRun == nil {
		b.Fatalf("fetch: %+v, %v", fetched, err)
	}
	return fetched[0].LeasedRun
}

// stepper runs step transactions on one leased run.
type stepper struct {
	drv *sqlite.Driver
	run *acidic.Run
	i   int
}

var stepAttrs = json.RawMessage(`{"n":1}`)

// step runs one step transaction, with the user's write when write is set.
func (s *stepper) step(b *testing.B, write bool) {
	s.i++
	started := time.Now()
	_, err := s.drv.InStepTx(context.Background(), func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		if write {
			if _, err := sqlite.SQLTx(tx).ExecContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1"); err != nil {
				return storage.StepCommit{}, err
			}
		}
		return storage.StepCommit{Update: storage.RunUpdateParams{ID: s.run.ID, Token: s.run.LockedBy, State: acidic.RunRunning,
			RecoveryPoint: "s", Attrs: stepAttrs, Cursor: int64(s.i),
			Step: &acidic.Step{Position: s.i % 8, Name: "s", State: acidic.StepSucceeded, Attempt: 1, StartedAt: started}}}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// benchSteps runs b.N step transactions on one run.
func benchSteps(b *testing.B, write bool) {
	drv, _ := benchFile(b)
	s := &stepper{drv: drv, run: leasedRunFor(b, drv)}
	b.ResetTimer()
	for range b.N {
		s.step(b, write)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkStepTx is a step that writes one row of its own and commits its
// progress (the run's update and its step log) in one transaction.
func BenchmarkStepTx(b *testing.B) { benchSteps(b, true) }

// BenchmarkEmptyStepTx is a step that writes nothing of its own.
func BenchmarkEmptyStepTx(b *testing.B) { benchSteps(b, false) }

// BenchmarkStepVsRaw alternates rounds of baseline transactions and of empty
// steps on one file, so that both see the same disk (whose sync times
// wander with the machine's load), and reports the median over the rounds
// of steps/s ÷ tx/s: issue 15's efficiency, which it wants ≥ 0.8.
func BenchmarkStepVsRaw(b *testing.B) {
	drv, path := benchFile(b)
	raw := openRaw(b, path)
	s := &stepper{drv: drv, run: leasedRunFor(b, drv)}
	const round = 50
	var txRates, stepRates, ratios []float64
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		start := time.Now()
		for range round {
			raw.tx(b)
		}
		txRate := round / time.Since(start).Seconds()
		start = time.Now()
		for range round {
			s.step(b, false)
		}
		stepRate := round / time.Since(start).Seconds()
		txRates, stepRates, ratios = append(txRates, txRate), append(stepRates, stepRate), append(ratios, stepRate/txRate)
	}
	b.ReportMetric(median(txRates), "tx/s")
	b.ReportMetric(median(stepRates), "steps/s")
	b.ReportMetric(median(ratios), "steps/tx")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
