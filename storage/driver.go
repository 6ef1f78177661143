package storage

import (
	"context"

	"github.com/acidic-go/acidic"
)

// Executor runs Acidic's queries, either each as its own statement (a Driver)
// or inside a transaction (a Tx).
//
// Every write checks what it is given with the row type's Validate method (or
// CheckRunState) and returns acidic.ErrInvalid, writing nothing, for a value the
// storage does not hold. Error texts are never refused: they are stored as
// Text leaves them.
type Executor interface {
	Retention
	Awaits // the queue jobs runs await (awaits.go)
	// JobInsertMany inserts jobs and returns them in the same order, and wakes
	// workers of the queues that received jobs eligible now (inside a
	// transaction, the wake-up is delivered only on commit).
	JobInsertMany(ctx context.Context, p JobInsertManyParams) ([]*acidic.Job, error)
	// JobInsertUnique inserts one job with a UniqueKey unless a job with the
	// key exists in a state its UniqueStates covers; then it returns that job
	// with Duplicate set, after replacing the fields replace names if the job
	// has not started. The database enforces the uniqueness, so concurrent
	// enqueues of one key make exactly one job. A duplicate that changes no
	// field writes nothing and wakes nobody; workers are woken only when the
	// job became available (inserted so, or replaced from later to now).
	JobInsertUnique(ctx context.Context, p JobInsertUniqueParams) (*acidic.Job, error)
	// JobMakeDue makes the scheduled and retryable jobs of a queue due now
	// and returns how many it changed.
	JobMakeDue(ctx context.Context, p JobMakeDueParams) (int, error)
	// JobFetch claims up to Max eligible jobs of a queue, highest priority and
	// earliest scheduled first, skipping rows other workers hold. It claims
	// nothing while the queue is paused (Controls.QueuePause).
	JobFetch(ctx context.Context, p JobFetchParams) ([]FetchedJob, error)
	// JobClaim claims one job for workerID if it is available, scheduled or
	// retryable (whatever its scheduled time), as a fetch would; otherwise it
	// returns acidic.ErrNotFound.
	JobClaim(ctx context.Context, p JobClaimParams) (*acidic.Job, error)
	// JobComplete marks running attempts completed. Attempts that are no
	// longer running (rescued, cancelled) are left alone; it returns the ids
	// it did complete.
	JobComplete(ctx context.Context, p JobCompleteParams) ([]int64, error)
	// JobResolveDependencies settles pending jobs after dependencies
	// failed or completed outside JobComplete: it cancels or discards
	// dependents of failed jobs (as each asked) and releases jobs whose
	// dependencies are all done, level by level. It looks only at the
	// dependents of the jobs in ended (and then of those it fails); nil
	// sweeps every pending job. It returns how many it failed and released.
	JobResolveDependencies(ctx context.Context, p JobResolveDependenciesParams) (failed, released int, err error)
	// JobFinish ends a running attempt as the outcome says. It reports false,
	// and changes nothing, when the attempt is no longer running.
	JobFinish(ctx context.Context, p JobFinishParams) (bool, error)
	// JobHeartbeat refreshes the heartbeat of the given attempts that are
	// still running, and returns the others (an operator cancelled them, or
	// they were rescued, and perhaps claimed again) with their job's state
	// now.
	JobHeartbeat(ctx context.Context, p JobHeartbeatParams) ([]JobStatus, error)
	// JobLostAttempts returns those of the given attempts that are no
	// longer running, with their job's state now, as JobHeartbeat does, but
	// writes nothing: a client runs it when a control notification (which
	// any role may send) tells it to look.
	JobLostAttempts(ctx context.Context, p JobLostAttemptsParams) ([]JobStatus, error)
	// JobRescue returns running jobs whose heartbeat is older than
	// p.StaleAfter to retryable (or discarded when out of attempts), at most
	// p.Limit of them, frees the run leases those attempts held, and returns
	// the rescued jobs.
	JobRescue(ctx context.Context, p JobRescueParams) ([]*acidic.Job, error)
	// JobPrune deletes up to limit jobs that reached a final state longer
	// than retention ago and returns how many it deleted.
	JobPrune(ctx context.Context, p JobPruneParams) (int, error)
	// JobStats counts jobs by queue and state.
	JobStats(ctx context.Context) ([]acidic.QueueStats, error)
	// JobGet returns one job, or acidic.ErrNotFound.
	JobGet(ctx context.Context, p JobGetParams) (*acidic.Job, error)
	// JobList returns jobs matching the filter, by ascending id.
	JobList(ctx context.Context, f acidic.JobFilter) ([]*acidic.Job, error)
	// JobCancel cancels a job that has not finished and returns it; a
	// finished job is returned unchanged.
	JobCancel(ctx context.Context, p JobCancelParams) (*acidic.Job, error)
	// JobRetry makes a job available again now and wakes the workers of its
	// queue (inside a transaction, on commit). If the job had no attempts
	// left, it gets one more. A running or pending job is returned unchanged.
	JobRetry(ctx context.Context, p JobRetryParams) (*acidic.Job, error)

	// Notify sends a notification to every listener of the topic (in this
	// driver's schema); inside a transaction it is delivered on commit, and
	// not at all on rollback.
	Notify(ctx context.Context, p NotifyParams) error

	// RunInsert creates a run unless one with the same idempotency key
	// exists; it returns the run and whether it was created.
	RunInsert(ctx context.Context, p RunInsertParams) (*acidic.Run, bool, error)
	// RunGet returns one run, or acidic.ErrNotFound.
	RunGet(ctx context.Context, p RunGetParams) (*acidic.Run, error)
	// RunGetByKey returns the run with an idempotency key, or acidic.ErrNotFound.
	RunGetByKey(ctx context.Context, p RunGetByKeyParams) (*acidic.Run, error)
	// RunList returns runs matching the filter, oldest first.
	RunList(ctx context.Context, f acidic.RunFilter) ([]*acidic.Run, error)
	// RunLease takes the run's lock lease for the token if the run is
	// pending or running and the lease is free: nobody holds it, or the job
	// attempt that holds it is no longer running (it ended, or was rescued),
	// or it is held by an earlier attempt of the same job. A live holder is
	// never overtaken, however old its lease. It returns the run as it is
	// after the attempt and whether the lease was taken.
	RunLease(ctx context.Context, p RunLeaseParams) (*acidic.Run, bool, error)
	// RunEnd ends a live (pending or running) run whose carrying job ended
	// for good: the run takes p.State and p.Error and its lease is cleared,
	// unless the job is not of the run's workflow kind or another job of
	// that kind is still unfinished (it carries the run on). Call it inside
	// a transaction that has already ended the job: it locks the run first,
	// so of two carrying jobs ending at once the later one ends the run. It
	// returns the run and whether it ended it.
	RunEnd(ctx context.Context, p RunEndParams) (*acidic.Run, bool, error)
	// RunSettle marks a finished run settled unless it already is, and
	// returns it and true when it did: the caller then meets the run's
	// finish obligations in the same transaction, exactly once per finish.
	// A run that is not finished, is already settled, or does not exist is
	// nil and false: there is nothing to do, and nothing is read again.
	RunSettle(ctx context.Context, p RunSettleParams) (*acidic.Run, bool, error)
	// RunUpdate writes a run's progress if the token still holds its lease;
	// otherwise it returns acidic.ErrLeaseLost and writes nothing.
	RunUpdate(ctx context.Context, p RunUpdateParams) (*acidic.Run, error)
	// RunRelease sets a run's state and error and clears its lease, if the
	// token still holds it (else acidic.ErrLeaseLost), leaving the recovery point,
	// persisted state and cursor as the last committed step left them.
	RunRelease(ctx context.Context, p RunReleaseParams) (*acidic.Run, error)
	// RunSetState moves a run from one of the states in from to the state to,
	// sets its error, clears its lease and its settled mark, for operator
	// actions (cancel, retry). It returns the run and whether it changed; a run in another
	// state is returned unchanged.
	RunSetState(ctx context.Context, p RunSetStateParams) (*acidic.Run, bool, error)
	// RunChildFinished counts the finished child run childID off its
	// awaiting parent, once in the child's life (a retried child that
	// finishes again is not counted twice), and returns the parent; when the
	// last child is counted, the parent is pending again and its await step
	// (the child's ParentStep) is marked succeeded in the step log. For a
	// child counted before, or a parent no longer awaiting (cancelled, say),
	// it changes no parent and returns nil and false.
	RunChildFinished(ctx context.Context, p RunChildFinishedParams) (*acidic.Run, bool, error)
	// RunSteps returns a run's step log in step order.
	RunSteps(ctx context.Context, p RunStepsParams) ([]acidic.Step, error)

	// OutboxInsert stages messages and wakes relays (on commit, inside a
	// transaction).
	OutboxInsert(ctx context.Context, p OutboxInsertParams) error
	// OutboxClaim claims up to limit messages that are the oldest
	// undelivered message of their key and due, and pushes their next
	// attempt lease into the future so no other relay takes them meanwhile.
	// Attempts is incremented. The result is ordered by id.
	OutboxClaim(ctx context.Context, p OutboxClaimParams) ([]*acidic.OutboxMessage, error)
	// OutboxDelivered marks messages delivered.
	OutboxDelivered(ctx context.Context, p OutboxDeliveredParams) error
	// OutboxFailed records a failed delivery of the claim with the given
	// attempt number and makes the message due again after retryIn (on the
	// database's clock). A claim that is no longer current (another relay
	// claimed the message since) changes nothing.
	OutboxFailed(ctx context.Context, p OutboxFailedParams) error
	// OutboxRelease gives back claims of messages that were not published:
	// each is due again now, its last error kept, and the claim's attempt is
	// not counted. A claim that is no longer current (its attempt number
	// moved on) changes nothing.
	OutboxRelease(ctx context.Context, p OutboxReleaseParams) error
	// OutboxPrune deletes up to limit messages delivered longer than
	// retention ago and returns how many it deleted.
	OutboxPrune(ctx context.Context, p OutboxPruneParams) (int, error)
	// OutboxList returns messages by ascending id, undelivered only when
	// pendingOnly is set.
	OutboxList(ctx context.Context, p OutboxListParams) ([]*acidic.OutboxMessage, error)

	// Periodic schedules: see PeriodicExecutor (periodic.go).
	PeriodicExecutor
	Uniqueness // unique periods from the first insert, unique job graphs (unique.go)
	StepLogs   // the logs and failed attempts kept with each step (steplogs.go)
}

// Tx is an Executor inside a database transaction.
type Tx interface {
	Executor
	// Commit commits the transaction.
	Commit(ctx context.Context) error
	// Rollback aborts the transaction; after Commit it does nothing.
	Rollback(ctx context.Context) error
}

// Isolation is a transaction isolation level.
type Isolation int

// Isolation levels.
const (
	ReadCommitted Isolation = iota
	Serializable
)

// TxFunc is the body of a transaction.
type TxFunc func(ctx context.Context, tx Tx) error

// StepFunc is the body of a step transaction: it runs a step's code in tx and
// returns the write that records the step's progress.
type StepFunc func(ctx context.Context, tx Tx) (StepCommit, error)

// StepCommit is the write that ends a step transaction.
type StepCommit struct {
	// Update records the step's progress on its run. It fails with
	// acidic.ErrLeaseLost, and the whole transaction rolls back, unless the run's
	// lease is still held with Update.Token.
	Update RunUpdateParams
	// Then, when set, runs after Update in the same transaction, with the run
	// as Update left it: the bookkeeping of a run that just finished, say.
	Then func(ctx context.Context, tx Tx, r *acidic.Run) error
}

// Notification is a message received by a Listener.
type Notification struct {
	Topic   string
	Payload string
}

// Listener receives notifications sent with Driver.Notify on the topics it
// listens to. It owns one connection; it is not safe for concurrent use.
type Listener interface {
	// Listen subscribes to a topic.
	Listen(ctx context.Context, topic string) error
	// Wait blocks until a notification arrives or ctx ends.
	Wait(ctx context.Context) (Notification, error)
	// Close releases the connection.
	Close(ctx context.Context) error
}

// Topics used by the engine. Any role that can connect to the database may
// listen and send on them, so a notification is only ever a hint to look at
// the tables, and its payload names nothing a role without grants on them
// could not see.
const (
	// TopicInsert tells workers that jobs of a queue became eligible; the
	// payload is the queue's hint (Driver.QueueHints), not its name.
	TopicInsert = "insert"
	// TopicControl tells clients to check their running attempts now (an
	// operator cancelled a job, say); it has no payload. A client acts only
	// on what the jobs table says (JobLostAttempts).
	TopicControl = "control"
	// TopicOutbox tells relays that messages were staged.
	TopicOutbox = "outbox"
)

// Driver is a database Acidic runs on.
type Driver interface {
	Executor
	Migrations // the driver's migration files and how they run (migrate.go)
	Nodes
	JobAges
	Controls
	LimitedFetcher
	// InTx runs fn in a transaction at the given isolation and commits it
	// when fn returns nil. A serialization failure or deadlock (from fn or
	// from the commit; at ReadCommitted only deadlocks occur) rolls back and
	// runs fn again with jittered exponential backoff, up to the driver's
	// retry limit and within ctx; errors.Is(err, acidic.ErrSerialization) tells such
	// an error apart.
	InTx(ctx context.Context, iso Isolation, fn TxFunc) error
	// InStepTx runs fn in a SERIALIZABLE transaction, applies the StepCommit
	// fn returns and commits, retrying serialization failures like InTx, and
	// returns the run as the update left it. The transaction begins when fn
	// first uses tx, so a step that never touches the database holds no
	// connection while its code runs; the update is sent together with the
	// COMMIT (and, when fn did not use tx, with the BEGIN too), so the step's
	// end costs one round trip to the database (once the connection has the
	// statements prepared: its first step prepares them in one more).
	InStepTx(ctx context.Context, fn StepFunc) (*acidic.Run, error)
	// NewListener opens a Listener on its own connection. A driver whose
	// Capabilities().Notify is NotifyNone returns an error.
	NewListener(ctx context.Context) (Listener, error)
	// QueueHints returns, in order, the payloads the insert notifications
	// (TopicInsert) of the given queues carry: a keyed hash of the queue
	// name, computable only by roles that may read the key, so a role that
	// may listen but not read the tables learns no queue names.
	QueueHints(ctx context.Context, p QueueHintsParams) ([]string, error)
	// Capabilities says what the driver can do beyond the Executor
	// contract; it never changes for a driver value.
	Capabilities() Capabilities
	// Stats returns counters kept by the driver.
	Stats() Stats
	// Schema is the database schema holding the tables.
	Schema() string
}

// Stats are counters kept by a Driver since it was created.
type Stats struct {
	// TxRetries counts transactions run again after a serialization failure
	// or deadlock.
	TxRetries int64
}
