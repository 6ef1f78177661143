package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/examples/internal/exampletest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
)

// testConfig is a config on drv, a fresh store of the test's (a schema of
// the test database, or a SQLite file).
func testConfig(drv storage.Driver) config {
	return config{
		Driver:  drv,
		Schema:  drv.Schema(),
		Order:   "order-1",
		Timeout: 30 * time.Second,
		Logger:  slog.New(slog.DiscardHandler),
	}
}

// The SMS fails twice and goes out on its third attempt: the order is
// marked notified once, after both jobs, by a step that ran once.
func TestFanoutAwaitsJobsOnTwoQueues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := testConfig(drv)
		cfg.SMSFailures = 2
		rep, err := runOrder(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.State != acidic.RunSucceeded || rep.Deliveries != 2 || rep.Notified != 1 {
			t.Fatalf("run %s (%s): deliveries %d, notified %d", rep.State, rep.Error, rep.Deliveries, rep.Notified)
		}
		if len(rep.Steps) != 2 || rep.Steps[1].Executions != 1 {
			t.Fatalf("steps %+v: mark_notified should run once", rep.Steps)
		}
		if len(rep.Jobs) != 2 || rep.Jobs[0].Queue != mailersQueue || rep.Jobs[1].Queue != smsQueue ||
			!rep.Jobs[0].Succeeded() || !rep.Jobs[1].Succeeded() || len(rep.Jobs[1].Errors) != 2 {
			t.Fatalf("awaited jobs %+v", rep.Jobs)
		}
		// The same order again: its run exists, nothing is sent twice.
		again, err := runOrder(context.Background(), cfg)
		if err != nil || again.RunID != rep.RunID || again.Deliveries != 2 || again.Notified != 1 {
			t.Fatalf("again: %+v, %v", again, err)
		}
	})
}

// The SMS never goes out: its job is discarded after its fifth attempt and
// the run fails, naming it; the order is not marked notified.
func TestFanoutFailsWhenAJobIsDiscarded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := testConfig(drv)
		cfg.SMSFailures = -1
		rep, err := runOrder(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.State != acidic.RunFailed || !strings.Contains(rep.Error, "send_sms") || rep.Notified != 0 {
			t.Fatalf("run %s (%s), notified %d", rep.State, rep.Error, rep.Notified)
		}
	})
}

// TestProgram runs the program as the README does, on each driver: on
// SQLite with ACIDIC_DB alone (no DATABASE_URL, no PG* variables), on
// PostgreSQL with DATABASE_URL and ACIDIC_SCHEMA. The order is notified
// once, in the test's store; run again, the program finds the run and
// sends nothing twice.
func TestProgram(t *testing.T) {
	bin := exampletest.Build(t, ".")
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		out, code := exampletest.Run(t, bin, drv, "-order", "order-7", "-timeout", "60s")
		if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "deliveries: 2, marked notified: 1") {
			t.Fatalf("exit %d, want 0 and the order notified once", code)
		}
		if store := exampletest.StoreLine(drv); !strings.Contains(out, store) {
			t.Errorf("the program does not say %q", store)
		}
		runs, err := drv.RunList(context.Background(), acidic.RunFilter{})
		if err != nil || len(runs) != 1 || runs[0].State != acidic.RunSucceeded {
			t.Fatalf("runs in the test's store: %+v, %v; want one, succeeded", runs, err)
		}
		out, code = exampletest.Run(t, bin, drv, "-order", "order-7", "-timeout", "60s")
		if code != 0 || !strings.Contains(out, runs[0].ID.String()) || !strings.Contains(out, "deliveries: 2, marked notified: 1") {
			t.Fatalf("again: exit %d, want 0 and run %s, nothing sent twice", code, runs[0].ID)
		}
	})
}
