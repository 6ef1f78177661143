// Package storagetest is the conformance suite of the storage.Driver
// contract: the tests every driver must pass, written only against the
// interfaces of package storage, as net/http/httptest serves net/http.
//
// A driver author calls Run from a test of the driver's package, with a
// function that returns a driver on a fresh, migrated, empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Driver {
//			return mydriver.OpenTestStore(t) // dropped by t.Cleanup
//		})
//	}
//
// Run runs one parallel subtest per method group (Jobs, Runs, Tx, Notify,
// Outbox, Capabilities, Migrate) and, inside it, one parallel test per contract, each on stores of
// its own, so a failure names the contract broken. What passing proves:
//
//   - Jobs: inserts keep their order and take their state from schedule and
//     dependencies; a fetch claims by priority and schedule, at most Max,
//     bumps the attempt, never hands one job to two workers, leases the
//     job's run when it is free and leaves run jobs alone with SkipRunJobs;
//     every write that ends an attempt (complete, finish, rescue) is fenced
//     by the attempt and frees the run lease the attempt held; a snooze
//     does not spend an attempt; heartbeats report lost attempts; rescue
//     takes only stale attempts and discards on the last one; unique
//     inserts report duplicates, honour the states mask, replace only a
//     waiting job and make one job under concurrent enqueues; cancel,
//     retry, list, get, prune and dependency resolution behave as
//     documented; invalid values are refused with acidic.ErrInvalid.
//   - Runs: inserts are idempotent by key (under concurrency too); a lease
//     is taken only from a free holder (none, ended, or an earlier attempt
//     of the same job), never from a live one, never of a resting or
//     finished run, and needs a job attempt; fenced writes (RunUpdate,
//     RunRelease) return acidic.ErrLeaseLost and write nothing for a
//     stale token; a release never moves the recovery point nor undoes a
//     succeeded step; RunEnd ends only live runs, only for a job of the
//     run's kind and only when no other such job is unfinished; RunSettle
//     settles once per finish; RunChildFinished counts each child once and
//     resumes the parent exactly once, however many children finish at
//     the same time; listing and paging are stable.
//   - Tx: InTx commits, rolls back on error (without retrying), and
//     InStepTx applies the step's commit, rolls the step's writes back
//     when the lease was lost, and runs StepCommit.Then in the same
//     transaction.
//   - Notify: insert notifications are sent for eligible jobs only, once
//     per queue, carry the queue's hint, and stay inside one store. The
//     group is skipped for a driver that declares no notifications.
//   - Outbox: a key's messages are claimed one at a time in id order, a
//     claim leases its message and is never handed to two relays, writes
//     for a claim that is no longer current change nothing, a release does
//     not count the attempt, and only delivered messages are pruned.
//   - Capabilities: the driver does what its Capabilities declare
//     (NewListener fails without notifications, and delivers with them);
//     serializable transactions lose no update, whether the driver retries
//     conflicts or serializes writers; JobMakeDue and JobStats.
//   - Migrate: the driver's migration files load (package migrations'
//     rules); the record lists every applied version with its name and
//     time; MigrationApply and MigrationRevert run SQL and keep the record
//     with the transaction, which an error or a panic rolls back, releasing
//     the lock; concurrent MigrationLocked calls do not overlap; and package
//     migrations, through these primitives alone, reverts every migration
//     of a store and applies them again.
//
// Some tests wait a little over a second for heartbeats to become stale
// (the suite cannot move a store's clock); they run in parallel with the
// rest. What the suite cannot observe through the interfaces (query plans,
// row versions, the wire protocol) stays in the driver's own tests.
package storagetest
