// Package reliability holds Acidic's reliability suite: tests only, no API.
//
// Each scenario runs many multi-step workflow runs while something goes
// wrong underneath them, and then checks the project's promise: every
// enqueued run finished (succeeded), and every step's effect, recorded in a
// table with a unique key (run_id, step, item) inside the step's own
// transaction, exists exactly once.
//
//   - TestWorkerCrashes: three worker processes (this test binary, started
//     again by TestMain) are SIGKILLed and restarted at random while they work.
//   - TestDatabaseRestart: a throwaway PostgreSQL cluster owned by the test is
//     restarted (fast and immediate shutdowns) under load.
//   - TestDroppedConnections: the engines' connections are terminated with
//     pg_terminate_backend while runs are mid-step.
//   - TestLostCommitAcknowledgement: a proxy between the engine and the
//     database drops the connection right after PostgreSQL acknowledged a
//     step's COMMIT, so the engine cannot tell whether the step committed.
//   - TestContention: 1,000 concurrent enqueues onto 10 idempotency keys,
//     worked by 32 workers on two engines, with serialization failures.
//   - TestLongStepKeepsItsLease: a step runs long while its worker lives; a
//     second job for the run waits and runs nothing; the step commits once.
//   - TestStepFailingDuringOutageResumesPromptly: a step fails while the
//     database is unreachable; once it is back, the run resumes at once.
//   - TestConnectionLostResumingAwaitingRunIsRetried: a lost connection while
//     an awaiting run resumes is retried, not fatal to the run.
//   - TestLeaderAmongEngineProcesses: three engine processes elect exactly
//     one leader; it is SIGKILLed, and another takes the lead once its lease
//     has run out (never before), and deletes the dead node's row.
//   - TestBadInputChangesNothing: malformed input through the public API gets
//     a clear error and leaves every row as it was.
//
// Each scenario logs one line in a fixed format:
//
//	reliability: scenario=NAME runs=N kills=N restarts=N tx_retries=N duplicates=0 lost=0
//
// Run with -v to see it, or set ACIDIC_RELIABILITY_REPORT=/path/file to have
// the lines appended to a file. The default sizes keep the package under a
// few minutes on two cores; ACIDIC_RELIABILITY_FULL=1 runs the full sizes.
// See docs/guarantees.md.
package reliability
