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

// The warehouse fails at the third item: the run fails there with the
// first two reserved. The next invocation retries the run, which resumes at
// the third item: every item is reserved once, and only the third was
// tried twice.
func TestIterateResumesAtTheFailedItem(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := config{Driver: drv, Schema: drv.Schema(), Order: "order-1", FailAt: 3,
			Timeout: 30 * time.Second, Logger: slog.New(slog.DiscardHandler)}
		first, err := runOrder(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if first.State != acidic.RunFailed || !strings.Contains(first.Error, "item 3 (cheese): warehouse unavailable") {
			t.Fatalf("first run %s (%s)", first.State, first.Error)
		}
		if first.Reserved["apple"] != 1 || first.Reserved["bread"] != 1 || len(first.Reserved) != 2 {
			t.Fatalf("reserved after the failure: %v, want apple and bread once", first.Reserved)
		}
		cfg.FailAt = 0
		second, err := runOrder(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if second.RunID != first.RunID || !second.Retried || second.State != acidic.RunSucceeded || second.Result != "24 units reserved" {
			t.Fatalf("second invocation: %+v", second)
		}
		for _, it := range items {
			calls := 1
			if it.SKU == "cheese" {
				calls = 2
			}
			if second.Reserved[it.SKU] != 1 || second.Calls[it.SKU] != calls {
				t.Errorf("%s: reserved %d, warehouse calls %d; want 1 and %d", it.SKU, second.Reserved[it.SKU], second.Calls[it.SKU], calls)
			}
		}
	})
}

// TestProgram runs the README's two commands as programs, on each driver:
// on SQLite with ACIDIC_DB alone (no DATABASE_URL, no PG* variables), on
// PostgreSQL with DATABASE_URL and ACIDIC_SCHEMA. The first fails at
// cheese; the second, a new process, resumes the run there.
func TestProgram(t *testing.T) {
	bin := exampletest.Build(t, ".")
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		out, code := exampletest.Run(t, bin, drv, "-order", "o-1", "-fail-at", "3", "-timeout", "60s")
		if code != 0 || !strings.Contains(out, "failed (retried: false): ") ||
			!strings.Contains(out, "item 3 (cheese): warehouse unavailable") ||
			!strings.Contains(out, exampletest.StoreLine(drv)) {
			t.Fatalf("with -fail-at 3: exit %d, want the run failed at cheese, on the test's store", code)
		}
		out, code = exampletest.Run(t, bin, drv, "-order", "o-1", "-timeout", "60s")
		if code != 0 || !strings.Contains(out, "succeeded (retried: true): 24 units reserved") ||
			!strings.Contains(out, "cheese  reserved 1 time(s), warehouse called 2 time(s)") ||
			!strings.Contains(out, "bread   reserved 1 time(s), warehouse called 1 time(s)") {
			t.Fatalf("again: exit %d, want the run resumed at cheese", code)
		}
		runs, err := drv.RunList(context.Background(), acidic.RunFilter{})
		if err != nil || len(runs) != 1 || runs[0].State != acidic.RunSucceeded {
			t.Fatalf("runs in the test's store: %+v, %v; want one, succeeded", runs, err)
		}
	})
}
