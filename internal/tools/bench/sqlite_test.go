package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickBenchSQLite runs every scenario at -quick sizes on a SQLite
// file: each prints its rows (the baseline is SQLite's BEGIN IMMEDIATE
// transaction), the JSON holds the same rows, and the throwaway file, its
// WAL and its index are gone afterwards, the file named never created.
func TestQuickBenchSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, _, rep := runQuick(t, "sqlite:"+filepath.Join(dir, "acidic.db"))
	checkQuickReport(t, out, rep, []string{
		"1 enqueue    Enqueue (one job per call)",
		"1 enqueue    EnqueueMany of",
		"2 jobs ",
		"3 workflows  runs of 3 empty steps",
		"3 workflows  steps of those runs",
		"4 baseline   raw BEGIN IMMEDIATE; 1-row UPDATE; COMMIT",
		"4 baseline   efficiency: steps/s ÷ tx/s",
		"5 latency    idle: enqueue-to-start p50",
		"5 latency    idle: enqueue-to-start p99",
		"5 latency    idle: step commit p50",
		"6 memory     peak RSS",
		"7 growth     fetch+complete",
		"7 growth     ratio",
		"8 limits     trivial jobs: with the limit ÷ without",
		"8 limits     jobs of 20ms: with the limit ÷ without",
		"targets met",
		"SQLite 3.",
	}, []string{"1 enqueue", "2 jobs", "3 workflows", "4 baseline", "5 latency", "6 memory", "7 growth", "8 limits"})
	if strings.Contains(out, "SERIALIZABLE") || strings.Contains(out, "postgres") {
		t.Errorf("the SQLite bench's table names PostgreSQL:\n%s", out)
	}
	if rep.Error != "" || rep.Driver != driverSQLite || rep.SQLite == "" || rep.File == "" || rep.Schema != "" || rep.Postgres != "" {
		t.Errorf("report: error %q, driver %q, sqlite %q, file %q, schema %q, postgres %q",
			rep.Error, rep.Driver, rep.SQLite, rep.File, rep.Schema, rep.Postgres)
	}
	targets := map[string]string{}
	for _, r := range rep.Rows {
		if r.Target != "" {
			targets[r.Figure] = r.Target
		}
	}
	// Issue 15's targets on SQLite.
	for fig, want := range map[string]string{
		"efficiency: steps/s ÷ tx/s": "≥ 0.80",
		"idle: enqueue-to-start p50": "≤ 5.00",
		"peak RSS":                   "≤ 64.0",
	} {
		if targets[fig] != want {
			t.Errorf("%s: target %q, want %q", fig, targets[fig], want)
		}
	}
	assertDirEmpty(t, dir)
}

// TestSkippedScenarioIsSaid checks that a scenario the database cannot run
// is named in the table's output and the JSON, with why, rather than
// missing without a word.
func TestSkippedScenarioIsSaid(t *testing.T) {
	rep := Report{Driver: driverSQLite, SQLite: "3", Skipped: []Skip{{Scenario: "9 example", Why: "it needs something"}}}
	var stdout bytes.Buffer
	tbl := &table{}
	tbl.add("1 enqueue", "x", 1, 1, "jobs/s", nil, "")
	rep.Rows = tbl.sorted()
	printReport(&stdout, rep, time.Second)
	if !strings.Contains(stdout.String(), "9 example: not run on sqlite: it needs something") {
		t.Errorf("output does not say the scenario was not run:\n%s", stdout.String())
	}
}

// TestInterruptedSQLiteBenchRemovesFile cancels the bench mid-way, as
// Ctrl-C does: the throwaway file goes all the same.
func TestInterruptedSQLiteBenchRemovesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	code := Main(ctx, "sqlite:"+filepath.Join(dir, "acidic.db"), []string{"-scenario", "memory", "-memory-runs", "200000", "-workers", "2"}, &stdout, &stderr)
	if code != exitError {
		t.Fatalf("exit code %d after cancel, want %d\n%s", code, exitError, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
	}
	assertDirEmpty(t, dir)
}

func assertDirEmpty(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("bench left %s behind", e.Name())
	}
}
