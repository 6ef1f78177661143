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

// The warehouse fails at the third item: the run fails there with the
// first two reserved. The next invocation retries the run, which resumes at
// the third item: every item is reserved once, and only the third was
// tried twice.
func TestIterateResumesAtTheFailedItem(t *testing.T) {
	t.Parallel()
	schema := testdb.SchemaName(t)
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	cfg := config{Pool: testdb.Pool(t, testdb.Options{}), Schema: schema, Order: "order-1", FailAt: 3,
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
}
