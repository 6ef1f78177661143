package main

import (
	"context"
	"io"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/acidictest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// The payment survives a failure at every boundary between the engine and
// the database: the process crashing before or after each call, or each
// call failing with its work done or not (a lost COMMIT acknowledgement).
// After each, a fresh engine recovers; the order must then be charged once,
// booked once, receipted once, and its run succeeded.
func TestPaymentSurvivesAFailureAtEveryBoundary(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		testPaymentFaults(t, drv)
	})
}

func testPaymentFaults(t *testing.T, drv storage.Driver) {
	rep := acidictest.EachFault(t, acidictest.FaultOptions{
		Driver: drv,
		Workflows: func(drv storage.Driver) []workflow.Definition {
			p := &payment{schema: drv.Schema(), gateway: &gateway{db: storage.SQLOf(drv), schema: drv.Schema()}, out: io.Discard}
			return []workflow.Definition{p.workflow()}
		},
		Setup: func(ctx context.Context, drv storage.Driver) error {
			if err := createTables(ctx, storage.SQLOf(drv), drv.Schema()); err != nil {
				return err
			}
			_, err := newGateway(ctx, storage.SQLOf(drv), drv.Schema())
			return err
		},
		Start: func(ctx context.Context, h *acidictest.Harness) error {
			// The run's key is the order id: a caller retrying after an
			// error gets the same run back. Any handle of the payment's
			// types enqueues it; the harness (an Enqueuer) runs it with the
			// definition this case registered.
			_, err := (&payment{}).workflow().Enqueue(ctx, h, paymentArgs{OrderID: "o-1", AmountCents: 4200}, workflow.EnqueueOptions{})
			return err
		},
		Check: func(t testing.TB, c *acidictest.FaultCase) {
			ctx := context.Background()
			db, schema := storage.SQLOf(c.Driver()), c.Driver().Schema()
			for query, want := range map[string]int{
				`SELECT count(*) FROM {schema}.gateway_charges`:                     1,
				`SELECT count(*) FROM {schema}.ledger WHERE order_id = 'o-1'`:       1,
				`SELECT count(*) FROM {schema}.receipts WHERE order_id = 'o-1'`:     1,
				`SELECT count(*) FROM {schema}.orders WHERE status = 'paid'`:        0, // the order row is the caller's; not inserted here
				`SELECT count(*) FROM {schema}.runs WHERE state = 'succeeded'`:      1,
				`SELECT count(*) FROM {schema}.runs WHERE state <> 'succeeded'`:     0,
				`SELECT count(*) FROM {schema}.run_steps WHERE state = 'succeeded'`: 3,
			} {
				var n int
				if err := db.QueryRow(ctx, inSchema(schema, query)).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != want {
					t.Errorf("%s: %d, want %d", query, n, want)
				}
			}
			for _, r := range c.Runs {
				if r.State != acidic.RunSucceeded {
					t.Errorf("run %s: %s (%s)", r.ID, r.State, r.Error)
				}
			}
		},
		MaxCases: 60,
	})
	t.Logf("faults: %s", rep)
	if rep.Fired == 0 || rep.Failed != 0 {
		t.Errorf("faults: %s", rep)
	}
}
