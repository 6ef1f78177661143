package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

func testConfig(t *testing.T) config {
	t.Helper()
	schema := testdb.SchemaName(t)
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	return config{
		Pool:    testdb.Pool(t, testdb.Options{}),
		Schema:  schema,
		Order:   "order-1",
		Timeout: 30 * time.Second,
		Logger:  slog.New(slog.DiscardHandler),
	}
}

// The SMS fails twice and goes out on its third attempt: the order is
// marked notified once, after both jobs, by a step that ran once.
func TestFanoutAwaitsJobsOnTwoQueues(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
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
	if len(rep.Jobs) != 2 || rep.Jobs[0].Queue != "mailers" || rep.Jobs[1].Queue != "sms" ||
		!rep.Jobs[0].Succeeded() || !rep.Jobs[1].Succeeded() || len(rep.Jobs[1].Errors) != 2 {
		t.Fatalf("awaited jobs %+v", rep.Jobs)
	}
	// The same order again: its run exists, nothing is sent twice.
	again, err := runOrder(context.Background(), cfg)
	if err != nil || again.RunID != rep.RunID || again.Deliveries != 2 || again.Notified != 1 {
		t.Fatalf("again: %+v, %v", again, err)
	}
}

// The SMS never goes out: its job is discarded after its fifth attempt and
// the run fails, naming it; the order is not marked notified.
func TestFanoutFailsWhenAJobIsDiscarded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SMSFailures = -1
	rep, err := runOrder(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != acidic.RunFailed || !strings.Contains(rep.Error, "send_sms") || rep.Notified != 0 {
		t.Fatalf("run %s (%s), notified %d", rep.State, rep.Error, rep.Notified)
	}
}
