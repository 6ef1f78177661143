package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

// TestQuickBench runs every scenario at -quick sizes against the test
// database: each one must print its rows, the JSON must hold the same rows,
// and the schema must be gone afterwards.
func TestQuickBench(t *testing.T) {
	t.Parallel()
	out, stderr, rep := runQuick(t, testdb.URL())
	checkQuickReport(t, out, rep, []string{
		"1 enqueue    Enqueue (one job per call)",
		"1 enqueue    EnqueueMany of",
		"2 jobs ",
		"3 workflows  runs of 3 empty steps",
		"3 workflows  steps of those runs",
		"4 baseline   raw SERIALIZABLE",
		"4 baseline   efficiency",
		"5 latency    idle: enqueue-to-start p50",
		"5 latency    idle: enqueue-to-start p99",
		"5 latency    idle: step commit p50",
		"5 latency    idle: step commit p99",
		"enqueue-to-start p95",
		"step commit p95",
		"6 memory     peak RSS",
		"6 memory     peak Go heap",
		"7 growth     fetch+complete",
		"7 growth     ratio",
		"8 limits     trivial jobs, no limit",
		"8 limits     trivial jobs, GlobalLimit 50",
		"8 limits     trivial jobs: with the limit ÷ without",
		"8 limits     jobs of 20ms, no limit",
		"8 limits     jobs of 20ms, GlobalLimit 50",
		"8 limits     jobs of 20ms: with the limit ÷ without",
		"9 otel       empty jobs, off",
		"9 otel       empty jobs: on (all spans) ÷ off",
		"9 otel       empty jobs: on (1% sampled) ÷ off",
		"9 otel       steps of 3-step runs: on (all spans) ÷ off",
		"9 otel       steps of 3-step runs: on (1% sampled) ÷ off",
		"9 otel       jobs of 1ms: on (all spans) ÷ off",
		"targets met",
	}, []string{"1 enqueue", "2 jobs", "3 workflows", "4 baseline", "5 latency", "6 memory", "7 growth", "9 otel"})
	if strings.Contains(out, "level=") || strings.Contains(stderr, "level=") {
		t.Errorf("engine logs leaked into the output")
	}
	if rep.Error != "" || rep.Schema == "" || rep.Postgres == "" {
		t.Errorf("report: error %q, schema %q, postgres %q", rep.Error, rep.Schema, rep.Postgres)
	}
	if rep.Targets == 0 {
		t.Error("no figure was checked against a target")
	}
	assertSchemaGone(t, rep.Schema)
}

// TestInterruptedBenchDropsSchema cancels the bench mid-way, as Ctrl-C does.
func TestInterruptedBenchDropsSchema(t *testing.T) {
	t.Parallel()
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	// The memory scenario alone takes longer than the timer.
	code := Main(ctx, testdb.URL(), []string{"-scenario", "memory", "-memory-runs", "200000", "-workers", "2", "-json", jsonPath}, &stdout, &stderr)
	if code != exitError {
		t.Fatalf("exit code %d after cancel, want %d\n%s", code, exitError, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
	}
	rep := readReport(t, jsonPath)
	if rep.Error == "" {
		t.Error("report of an interrupted bench has no error")
	}
	assertSchemaGone(t, rep.Schema)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-workers", "0"},
		{"-workers", "a"},
		{"-scenario", "nope"},
		{"-jobs", "0"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), testdb.URL(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit code %d, want %d (%s)", args, code, exitUsage, stderr.String())
		}
	}
	cfg, err := parseArgs([]string{"-quick", "-workers", "2,8", "-scenario", "1,latency"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxWorkers() != 8 || cfg.jobs != 200 || !cfg.has("enqueue") || !cfg.has("latency") || cfg.has("memory") {
		t.Errorf("parsed %+v", cfg)
	}
}

// runQuick runs every scenario at -quick sizes on the database at url and
// fails the test unless the bench exits OK. It returns the bench's stdout
// (the table), its stderr, and its JSON report.
func runQuick(t *testing.T, url string) (out, stderr string, rep Report) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdoutBuf, stderrBuf bytes.Buffer
	code := Main(ctx, url, []string{"-quick", "-json", jsonPath}, &stdoutBuf, &stderrBuf)
	out = stdoutBuf.String()
	if code != exitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, stderrBuf.String())
	}
	t.Logf("\n%s", out)
	return out, stderrBuf.String(), readReport(t, jsonPath)
}

// readReport reads and parses the JSON report the bench wrote to path.
func readReport(t *testing.T, path string) Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, b)
	}
	return rep
}

// checkQuickReport checks a -quick run's table out and report rep: out
// holds each of wants, every row is complete (unit, figure, concurrency,
// no negative value) with a pass exactly when it has a target, each of
// scenarios has a row, and the table has a line per row.
func checkQuickReport(t *testing.T, out string, rep Report, wants, scenarios []string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	rows := map[string]int{}
	for _, r := range rep.Rows {
		rows[r.Scenario]++
		if r.Unit == "" || r.Figure == "" || r.Concurrency < 1 {
			t.Errorf("incomplete row %+v", r)
		}
		if (r.Target == "") != (r.Pass == nil) {
			t.Errorf("row %q: target %q but pass %v", r.Figure, r.Target, r.Pass)
		}
		if r.Value < 0 {
			t.Errorf("row %q: negative value %v", r.Figure, r.Value)
		}
	}
	for _, s := range scenarios {
		if rows[s] == 0 {
			t.Errorf("JSON has no row of scenario %q", s)
		}
	}
	// The table: a header, a line per row, a blank line, the summary.
	if lines := strings.Count(out, "\n"); lines != len(rep.Rows)+3 {
		t.Errorf("table has %d lines for %d JSON rows", lines, len(rep.Rows))
	}
}

func assertSchemaGone(t *testing.T, schema string) {
	t.Helper()
	if schema == "" {
		t.Error("no schema name reported")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testdb.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s was not dropped", schema)
	}
}
