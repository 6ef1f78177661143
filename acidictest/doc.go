// Package acidictest helps test code that uses Acidic, in the tradition of
// net/http/httptest: each test gets its own schema in the test database, an
// engine that stores jobs without running them (Manual) or runs them at once
// in the test's goroutine (Inline), and helpers to drain queues, perform a
// workflow or a worker directly, and assert what was enqueued.
//
//	h := acidictest.New(t, acidictest.Options{}, refund)
//	h.Enqueue(ctx, "refund", RefundArgs{OrderID: 1}, workflow.EnqueueOptions{})
//	res := h.Drain("default", queue.DrainOptions{})
//	// res.Discarded == 1, res.Success == 0
//	h.RequireNotEnqueued(acidictest.JobFilter{Kind: "refund"})
//
// # Modes
//
// The mode says what Enqueue and EnqueueJob run before they return:
//
//   - Manual (the default) runs nothing; Drain, DrainAll and Perform run
//     the stored work when the test says so.
//   - Inline attempts each job the enqueue made runnable once (and each job
//     those made runnable in turn: children, staged jobs, a workflow's next
//     job). A retry or a snooze is left stored, as it would be in
//     production, for the test to look at or drain.
//   - InlineUntilDone works every queue until nothing is left to run,
//     retries and snoozes included, without waiting for their time.
//
// WithMode switches the mode for one part of a test and puts the previous
// mode back afterwards. EnqueueTx and EnqueueJobTx enqueue inside the test's
// own transaction and run nothing, whatever the mode.
//
// # Performing work directly
//
//   - PerformWorker runs a plain job kind's worker on a job built in memory
//     and returns the worker's error and the outcome it maps to. Nothing is
//     written, so it unit-tests a worker, unique or not, as often as needed.
//   - PerformJob enqueues a job and runs that stored job once, for a test
//     that looks at the job afterwards (its state, its error history).
//   - Perform enqueues a workflow run and works every queue until the run
//     rests, then returns it with its step log.
//
// # Asserting what was enqueued
//
// AllEnqueued, RequireEnqueued and RequireNotEnqueued select jobs with a
// JobFilter (kind, queue, args contained, run, schedule, states). The
// generic RequireEnqueued[A] returns the args of the job it found decoded
// into A:
//
//	mail := acidictest.RequireEnqueued[MailArgs](h, acidictest.JobFilter{Kind: "email"})
//	// mail.To == "ada@example.com"
//
// # A failure at every boundary
//
// EachFault runs your workflows once without faults, recording every call
// the engine makes to the database, and then once per call with a failure
// injected there: the process crashes before or after it (as kill -9
// would), or the call fails with its work done or not (a lost COMMIT
// acknowledgement is a failure after a commit). A fresh engine then
// recovers, as after a restart. Every case is checked for what Acidic
// promises (no run or job left hanging, every run in the state it reached
// without faults, finish callbacks staged once) and for your own invariants:
//
//	acidictest.EachFault(t, acidictest.FaultOptions{
//		Driver:    drv, // a *sqlite.Driver or a *postgres.Driver: the database the cases run on
//		Workflows: func(drv storage.Driver) []workflow.Definition { return []workflow.Definition{payment(drv)} },
//		Setup:     createChargesTable, // func(ctx, storage.Driver) error, once per store
//		Start: func(ctx context.Context, h *acidictest.Harness) error {
//			_, err := h.Enqueue(ctx, "payment", PaymentArgs{OrderID: "o-1", Cents: 4200}, workflow.EnqueueOptions{Key: "o-1"})
//			return err
//		},
//		Check: func(t testing.TB, c *acidictest.FaultCase) {
//			// one charge per order, whatever failed where
//		},
//	})
//
// The database comes from DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/acidic_test). Schemas are dropped when
// the test ends; set ACIDIC_KEEP_SCHEMA=1 to keep those of failed tests.
package acidictest
