package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/examples/internal/exampletest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// syncBuffer collects the output of steps (worker goroutines) and runPayment.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig is a config on drv, a fresh store of the test's (a schema of
// the test database, or a SQLite file). The program's output and the
// engine's logs go to out, shown if the test fails.
func testConfig(t *testing.T, drv storage.Driver) (config, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	return config{
		Driver:  drv,
		Schema:  drv.Schema(),
		Order:   "order-1",
		Amount:  4200,
		Timeout: 30 * time.Second,
		Out:     out,
		Logger:  slog.New(slog.NewTextHandler(out, nil)),
	}, out
}

// count runs a count query of the example's tables on drv.
func count(t *testing.T, drv storage.Driver, sql string) int {
	t.Helper()
	var n int
	if err := storage.SQLOf(drv).QueryRow(context.Background(), inSchema(drv.Schema(), sql)).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// checkPaidOnce checks a finished report: succeeded, one charge, one ledger
// entry, one receipt, and the charge step ran once.
func checkPaidOnce(t *testing.T, rep report) {
	t.Helper()
	if rep.State != acidic.RunSucceeded {
		t.Fatalf("run %s: %s (%s)", rep.RunID, rep.State, rep.Error)
	}
	if rep.Charges != 1 || rep.LedgerRows != 1 || rep.Receipts != 1 {
		t.Errorf("charges %d, ledger rows %d, receipts %d; want 1 each", rep.Charges, rep.LedgerRows, rep.Receipts)
	}
	if len(rep.Steps) != 3 {
		t.Fatalf("step log %+v, want 3 steps", rep.Steps)
	}
	if s := rep.Steps[0]; s.Name != "charge" || s.State != acidic.StepSucceeded || s.Executions != 1 {
		t.Errorf("charge step %+v, want succeeded after 1 execution", s)
	}
	if rep.Final.ChargeID == "" || rep.Final.LedgerID == 0 || rep.Receipt == nil ||
		rep.Receipt.ChargeID != rep.Final.ChargeID || rep.Receipt.LedgerID != rep.Final.LedgerID {
		t.Errorf("receipt %+v, state %+v", rep.Receipt, rep.Final)
	}
}

func TestPayment(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, testPayment)
}

func testPayment(t *testing.T, drv storage.Driver) {
	cfg, out := testConfig(t, drv)
	rep, err := runPayment(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkPaidOnce(t, rep)
	if rep.Duplicate || rep.NewCharges != 1 {
		t.Errorf("duplicate %v, new charges %d; want a new run that charged once", rep.Duplicate, rep.NewCharges)
	}
	for _, s := range rep.Steps {
		if s.State != acidic.StepSucceeded || s.Executions != 1 {
			t.Errorf("step %+v, want succeeded after 1 execution", s)
		}
	}

	// The same order again is the same run: nothing runs, nothing is charged.
	again, err := runPayment(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkPaidOnce(t, again)
	if !again.Duplicate || again.RunID != rep.RunID || again.NewCharges != 0 {
		t.Errorf("second invocation: duplicate %v, run %s (first %s), new charges %d", again.Duplicate, again.RunID, rep.RunID, again.NewCharges)
	}
	if !strings.Contains(out.String(), "already enqueued") {
		t.Errorf("second invocation did not say the order was already enqueued")
	}
}

// TestCrashAndResume "crashes" between two steps, then runs again without the
// crash. The crash hook cannot exit the test binary, so it returns an error:
// the next step fails before doing anything and runPayment gives up, leaving
// the run half done. TestProcessCrashAndResume does it with a real exit.
func TestCrashAndResume(t *testing.T) {
	t.Parallel()
	for _, driver := range testdb.Drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			testCrashAndResume(t, driver)
		})
	}
}

func testCrashAndResume(t *testing.T, driver string) {
	for _, tc := range []struct {
		after      string
		ledgerRows int // after the crash
	}{
		{after: "charge"},
		{after: "ledger", ledgerRows: 1},
	} {
		t.Run(tc.after, func(t *testing.T) {
			t.Parallel()
			drv := testdb.Driver(t, driver, testdb.Options{})
			cfg, _ := testConfig(t, drv)
			crashing := cfg
			crashing.CrashAfter = tc.after
			crashing.Crash = func(string) error { return errors.New("crash hook") }
			if _, err := runPayment(context.Background(), crashing); !errors.Is(err, errCrashed) {
				t.Fatalf("runPayment with -crash-after=%s: %v, want errCrashed", tc.after, err)
			}
			charges := count(t, drv, `SELECT count(*) FROM {schema}.gateway_charges`)
			ledger := count(t, drv, `SELECT count(*) FROM {schema}.ledger`)
			receipts := count(t, drv, `SELECT count(*) FROM {schema}.receipts`)
			if charges != 1 || ledger != tc.ledgerRows || receipts != 0 {
				t.Fatalf("after the crash: charges %d, ledger rows %d, receipts %d; want 1, %d, 0", charges, ledger, receipts, tc.ledgerRows)
			}

			rep, err := runPayment(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkPaidOnce(t, rep)
			if !rep.Duplicate || rep.NewCharges != 0 {
				t.Errorf("resume: duplicate %v, new charges %d; want the existing run, no new charge", rep.Duplicate, rep.NewCharges)
			}
			if n := count(t, drv, `SELECT count(*) FROM {schema}.gateway_charges`); n != 1 {
				t.Errorf("gateway charges %d, want 1", n)
			}
		})
	}
}

func TestGatewayHonoursIdempotencyKey(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, testGatewayHonoursIdempotencyKey)
}

func testGatewayHonoursIdempotencyKey(t *testing.T, drv storage.Driver) {
	ctx := context.Background()
	gw, err := newGateway(ctx, storage.SQLOf(drv), drv.Schema())
	if err != nil {
		t.Fatal(err)
	}
	first, err := gw.Charge(ctx, "run-1/charge", 100)
	if err != nil || !first.New {
		t.Fatalf("first charge: %+v, %v", first, err)
	}
	again, err := gw.Charge(ctx, "run-1/charge", 100)
	if err != nil || again.New || again.ID != first.ID {
		t.Fatalf("same key: %+v, %v; want the first charge %s replayed", again, err, first.ID)
	}
	if _, err := gw.Charge(ctx, "run-1/charge", 200); err == nil {
		t.Fatal("same key, other amount: no error")
	}
	other, err := gw.Charge(ctx, "run-2/charge", 100)
	if err != nil || !other.New || other.ID == first.ID {
		t.Fatalf("other key: %+v, %v; want a new charge", other, err)
	}
	if n, err := gw.Charges(ctx, "run-1"); err != nil || n != 1 {
		t.Errorf("Charges(run-1) = %d, %v; want 1", n, err)
	}
	if gw.Created() != 2 {
		t.Errorf("Created() = %d, want 2", gw.Created())
	}
}

// TestProcessCrashAndResume builds the program and runs it twice on one
// store, on each driver: with -crash-after=charge it must die (os.Exit(3))
// right after charging; without, it must resume and finish, charging
// nobody twice. On SQLite the program is given no DATABASE_URL and no PG*
// variables, only ACIDIC_DB (a file in a temporary directory): it needs no
// PostgreSQL. Then `acidic runs list`, with the same environment, lists
// the run.
func TestProcessCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	t.Parallel()
	bins := t.TempDir()
	for _, pkg := range []string{".", "github.com/acidic-go/acidic/cmd/acidic"} {
		if out, err := exec.Command(goBin, "build", "-o", bins, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		testProcessCrashAndResume(t, drv, bins)
	})
}

func testProcessCrashAndResume(t *testing.T, drv storage.Driver, bins string) {
	env := exampletest.Env(drv)
	dir := t.TempDir() // the working directory: where ./acidic.db would go
	program := func(name string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bins, name), args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run %s: %v", name, err)
		}
		t.Logf("%s %s: exit %d\n%s", name, strings.Join(args, " "), cmd.ProcessState.ExitCode(), out)
		return string(out), cmd.ProcessState.ExitCode()
	}

	out, code := program("payment", "-timeout", "60s", "-order", "order-7", "-crash-after=charge")
	if code != 3 || !strings.Contains(out, "gateway new charge") {
		t.Fatalf("with -crash-after=charge: exit %d, want 3 after a new charge", code)
	}
	if n := count(t, drv, `SELECT count(*) FROM {schema}.ledger`); n != 0 {
		t.Fatalf("ledger rows after the crash: %d, want 0", n)
	}

	out, code = program("payment", "-timeout", "60s", "-order", "order-7")
	if code != 0 || !strings.Contains(out, "already enqueued") || !strings.Contains(out, "succeeded") {
		t.Fatalf("resume: exit %d, want 0 and the run resumed to success", code)
	}
	charges := count(t, drv, `SELECT count(*) FROM {schema}.gateway_charges`)
	ledger := count(t, drv, `SELECT count(*) FROM {schema}.ledger`)
	if charges != 1 || ledger != 1 {
		t.Fatalf("after resuming: gateway charges %d, ledger rows %d; want 1 and 1", charges, ledger)
	}
	runs, err := drv.RunList(context.Background(), acidic.RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].State != acidic.RunSucceeded {
		t.Fatalf("runs %+v, %v; want one, succeeded", runs, err)
	}
	if _, ok := drv.(*sqlite.Driver); ok {
		if _, err := os.Stat(filepath.Join(dir, "acidic.db")); err == nil {
			t.Error("with ACIDIC_DB set, the program made ./acidic.db too")
		}
	}

	out, code = program("acidic", "runs", "list")
	if code != 0 || !strings.Contains(out, runs[0].ID.String()) {
		t.Errorf("acidic runs list, with the example's environment: exit %d, does not list run %s", code, runs[0].ID)
	}
}

// TestBareMachine runs the program as a newcomer would on a machine with
// Go and nothing else: no DATABASE_URL, no ACIDIC_DB, no PG* variables, in
// an empty directory. It uses ./acidic.db there, and crashes and resumes.
func TestBareMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "payment")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "DATABASE_URL" && !strings.HasPrefix(k, "ACIDIC_") && !strings.HasPrefix(k, "PG") {
			env = append(env, kv)
		}
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = env, dir
		out, _ := cmd.CombinedOutput()
		t.Logf("payment %s: exit %d\n%s", strings.Join(args, " "), cmd.ProcessState.ExitCode(), out)
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("-crash-after=charge", "-order", "order-7", "-timeout", "60s"); code != 3 || !strings.Contains(out, "SQLite file acidic.db (default)") {
		t.Fatalf("first run: exit %d, want 3 on ./acidic.db", code)
	}
	if out, code := run("-order", "order-7", "-timeout", "60s"); code != 0 || !strings.Contains(out, "gateway charges for this run: 1") ||
		!strings.Contains(out, "ledger entries for the order: 1") {
		t.Fatalf("second run: exit %d, want the run resumed: one charge, one ledger entry", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "acidic.db")); err != nil {
		t.Errorf("no ./acidic.db: %v", err)
	}
	// A bad ACIDIC_DB is a clear error before anything else.
	bad := filepath.Join(dir, "no-such-dir", "x.db")
	cmd := exec.Command(bin)
	cmd.Env, cmd.Dir = append(slices.Clone(env), "ACIDIC_DB="+bad), dir
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "database (ACIDIC_DB): sqlite: cannot open") ||
		strings.Contains(string(out), "enqueued") {
		t.Errorf("a bad ACIDIC_DB: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// TestTheCommandFindsTheExamplesRuns: the example and the acidic command
// choose their store the same way (storeurl.FromEnv) and their schema too
// (ACIDIC_SCHEMA, else Acidic's default), so `acidic runs list` after the
// example shows its run with no flag, on either driver.
func TestTheCommandFindsTheExamplesRuns(t *testing.T) {
	t.Parallel()
	if got := defaultSchema(func(string) string { return "" }); got != postgres.DefaultSchema {
		t.Errorf("the example's default schema is %q, want the acidic command's, %q", got, postgres.DefaultSchema)
	}
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg, _ := testConfig(t, drv)
		env := map[string]string{}
		for _, kv := range exampletest.Env(drv) {
			if k, v, _ := strings.Cut(kv, "="); k == "DATABASE_URL" || strings.HasPrefix(k, "ACIDIC_") {
				env[k] = v
			}
		}
		rep, err := runPayment(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		cmd := cli.Command{Stdout: &stdout, Stderr: &stderr, LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}}
		if code := cmd.Run(context.Background(), []string{"runs", "list"}); code != 0 || !strings.Contains(stdout.String(), rep.RunID.String()) {
			t.Errorf("acidic runs list: exit %d, does not list run %s\n%s%s", code, rep.RunID, stdout.String(), stderr.String())
		}
	})
}
