// Package acidictest helps test code that uses Acidic, in the tradition of
// net/http/httptest: each test gets its own schema in the test database, an
// engine that stores jobs without running them (Manual) or runs them at once
// in the test's goroutine (Inline), and helpers to drain queues, perform a
// workflow or job directly, and assert what was enqueued.
//
//	h := acidictest.New(t, acidictest.Options{}, refund)
//	h.Enqueue(ctx, "refund", RefundArgs{OrderID: 1}, workflow.EnqueueOptions{})
//	res := h.Drain("default", queue.DrainOptions{})
//	// res.Discarded == 1, res.Success == 0
//	h.RequireNotEnqueued(acidictest.JobFilter{Kind: "refund"})
//
// The database comes from DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/acidic_test). Schemas are dropped when
// the test ends; set ACIDIC_KEEP_SCHEMA=1 to keep those of failed tests.
package acidictest
