package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/storage/postgres"
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

// testConfig is a config on a fresh schema, dropped when the test ends. The
// program's output and the engine's logs go to out, shown if the test fails.
func testConfig(t *testing.T) (config, *syncBuffer) {
	t.Helper()
	pool := testdb.Pool(t, testdb.Options{})
	schema := testdb.SchemaName(t)
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	return config{
		Pool:    pool,
		Schema:  schema,
		Order:   "order-1",
		Amount:  4200,
		Timeout: 30 * time.Second,
		Out:     out,
		Logger:  slog.New(slog.NewTextHandler(out, nil)),
	}, out
}

func count(t *testing.T, pool *pgxpool.Pool, schema, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), inSchema(schema, sql)).Scan(&n); err != nil {
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
	cfg, out := testConfig(t)
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
	for _, tc := range []struct {
		after      string
		ledgerRows int // after the crash
	}{
		{after: "charge"},
		{after: "ledger", ledgerRows: 1},
	} {
		t.Run(tc.after, func(t *testing.T) {
			t.Parallel()
			cfg, _ := testConfig(t)
			crashing := cfg
			crashing.CrashAfter = tc.after
			crashing.Crash = func(string) error { return errors.New("crash hook") }
			if _, err := runPayment(context.Background(), crashing); !errors.Is(err, errCrashed) {
				t.Fatalf("runPayment with -crash-after=%s: %v, want errCrashed", tc.after, err)
			}
			charges := count(t, cfg.Pool, cfg.Schema, `SELECT count(*) FROM {schema}.gateway_charges`)
			ledger := count(t, cfg.Pool, cfg.Schema, `SELECT count(*) FROM {schema}.ledger`)
			receipts := count(t, cfg.Pool, cfg.Schema, `SELECT count(*) FROM {schema}.receipts`)
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
			if n := count(t, cfg.Pool, cfg.Schema, `SELECT count(*) FROM {schema}.gateway_charges`); n != 1 {
				t.Errorf("gateway charges %d, want 1", n)
			}
		})
	}
}

func TestGatewayHonoursIdempotencyKey(t *testing.T) {
	t.Parallel()
	cfg, _ := testConfig(t)
	ctx := context.Background()
	if _, err := cfg.Pool.Exec(ctx, inSchema(cfg.Schema, "CREATE SCHEMA {schema}")); err != nil {
		t.Fatal(err)
	}
	gw, err := newGateway(ctx, cfg.Pool, cfg.Schema)
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

// TestProcessCrashAndResume builds the program and runs it twice against the
// test schema: with -crash-after=charge it must die with status 3 right after
// charging; without, it must resume and finish, charging nobody twice.
func TestProcessCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	t.Parallel()
	cfg, _ := testConfig(t)
	bin := filepath.Join(t.TempDir(), "payment")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	program := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-schema", cfg.Schema, "-timeout", "20s"}, args...)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+testdb.URL())
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run %s: %v", bin, err)
		}
		t.Logf("payment %s: exit %d\n%s", strings.Join(args, " "), cmd.ProcessState.ExitCode(), out)
		return string(out), cmd.ProcessState.ExitCode()
	}

	out, code := program("-crash-after=charge")
	if code != 3 || !strings.Contains(out, "gateway new charge") {
		t.Fatalf("with -crash-after=charge: exit %d, want 3 after a new charge", code)
	}
	if n := count(t, cfg.Pool, cfg.Schema, `SELECT count(*) FROM {schema}.ledger`); n != 0 {
		t.Fatalf("ledger rows after the crash: %d, want 0", n)
	}

	out, code = program()
	if code != 0 || !strings.Contains(out, "already enqueued") || !strings.Contains(out, "succeeded") {
		t.Fatalf("resume: exit %d, want 0 and the run resumed to success", code)
	}
	charges := count(t, cfg.Pool, cfg.Schema, `SELECT count(*) FROM {schema}.gateway_charges`)
	ledger := count(t, cfg.Pool, cfg.Schema, `SELECT count(*) FROM {schema}.ledger`)
	if charges != 1 || ledger != 1 {
		t.Fatalf("after resuming: gateway charges %d, ledger rows %d; want 1 and 1", charges, ledger)
	}
}

// TestTheCommandFindsTheExamplesRuns: the example and the acidic command
// choose their schema the same way (ACIDIC_SCHEMA, else Acidic's default),
// so `acidic runs list` after the example shows its run with no flag.
func TestTheCommandFindsTheExamplesRuns(t *testing.T) {
	t.Parallel()
	if got := defaultSchema(func(string) string { return "" }); got != postgres.DefaultSchema {
		t.Errorf("the example's default schema is %q, want the acidic command's, %q", got, postgres.DefaultSchema)
	}
	cfg, _ := testConfig(t)
	env := map[string]string{"ACIDIC_SCHEMA": cfg.Schema, "DATABASE_URL": testdb.URL()}
	cfg.Schema = defaultSchema(func(k string) string { return env[k] })
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
}
