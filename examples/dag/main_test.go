package main

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
)

// The webhook is delivered three times: one workflow. Hex and licence run
// first, welcome and notify after both, each once.
func TestLicenceWebhookWorkflow(t *testing.T) {
	t.Parallel()
	schema := testdb.SchemaName(t)
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	rep, err := handleWebhook(context.Background(), config{Pool: testdb.Pool(t, testdb.Options{}), Schema: schema,
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
	if len(rep.Events) != 4 {
		t.Fatalf("events %v, want each of the four once", rep.Events)
	}
	first, then := rep.Events[:2], rep.Events[2:]
	slices.Sort(first)
	slices.Sort(then)
	if !slices.Equal(first, []string{"hex", "self_hosted"}) || !slices.Equal(then, []string{"notify", "welcome"}) {
		t.Fatalf("events in order %v: want both licences before welcome and notify", rep.Events)
	}
}
