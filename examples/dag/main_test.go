package main

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/examples/internal/exampletest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
)

// The webhook is delivered three times: one workflow. Hex and licence run
// first, welcome and notify after both, each once.
func TestLicenceWebhookWorkflow(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		rep, err := handleWebhook(context.Background(), config{Driver: drv, Schema: drv.Schema(),
			Event: "evt_1", Customer: "cus_1", Deliveries: 3, Timeout: 30 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if rep.State != acidic.RunSucceeded || rep.Result != "licensed cus_1" {
			t.Fatalf("workflow %s (%s) %q", rep.State, rep.Error, rep.Result)
		}
		if len(rep.RunIDs) != 3 || rep.RunIDs[1] != rep.RunIDs[0] || rep.RunIDs[2] != rep.RunIDs[0] {
			t.Fatalf("deliveries found runs %v, want one", rep.RunIDs)
		}
		checkOrder(t, rep.Events)
	})
}

// checkOrder checks the workers' events: each of the four once, both
// licences before welcome and notify.
func checkOrder(t *testing.T, events []string) {
	t.Helper()
	if len(events) != 4 {
		t.Fatalf("events %v, want each of the four once", events)
	}
	first, then := slices.Clone(events[:2]), slices.Clone(events[2:])
	slices.Sort(first)
	slices.Sort(then)
	if !slices.Equal(first, []string{"hex", "self_hosted"}) || !slices.Equal(then, []string{"notify", "welcome"}) {
		t.Fatalf("events in order %v: want both licences before welcome and notify", events)
	}
}

// TestProgram runs the README's command as a program, on each driver: on
// SQLite with ACIDIC_DB alone (no DATABASE_URL, no PG* variables), on
// PostgreSQL with DATABASE_URL and ACIDIC_SCHEMA. Three deliveries make
// one workflow, in the test's store.
func TestProgram(t *testing.T) {
	bin := exampletest.Build(t, ".")
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		out, code := exampletest.Run(t, bin, drv, "-event", "evt_1", "-customer", "cus_1", "-deliveries", "3", "-timeout", "60s")
		if code != 0 || !strings.Contains(out, "workflow succeeded licensed cus_1") || !strings.Contains(out, exampletest.StoreLine(drv)) {
			t.Fatalf("exit %d, want 0 and the workflow succeeded, on the test's store", code)
		}
		runs, err := drv.RunList(context.Background(), acidic.RunFilter{})
		if err != nil || len(runs) != 1 || runs[0].State != acidic.RunSucceeded {
			t.Fatalf("runs in the test's store: %+v, %v; want one, succeeded", runs, err)
		}
		_, events, _ := strings.Cut(out, "in order: ")
		checkOrder(t, strings.Split(strings.TrimSpace(events), ", "))
	})
}
