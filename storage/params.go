package storage

import (
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
)

// The parameters of the Executor's methods: one struct per method, named
// after it, so a field can be added without changing every driver's
// signature. JobList and RunList take the user's filter (acidic.JobFilter,
// acidic.RunFilter) as their parameters. The structs of the methods that
// write rows (JobInsert, RunInsertParams, RunUpdateParams, ...) are in
// job.go, run.go and outbox.go with their Validate methods.

// JobInsertManyParams are the jobs JobInsertMany inserts, in order.
type JobInsertManyParams struct {
	Jobs []JobInsert
}

// JobInsertUniqueParams is the unique job JobInsertUnique inserts, and what
// it replaces on a duplicate that has not started.
type JobInsertUniqueParams struct {
	Job     JobInsert
	Replace JobReplace
}

// JobMakeDueParams names the queue whose scheduled and retryable jobs
// JobMakeDue makes due now.
type JobMakeDueParams struct {
	Queue string
}

// FetchedJob is one job JobFetch claimed.
type FetchedJob struct {
	*acidic.Job
	// LeasedRun is the job's workflow run when the fetch also leased the
	// run to this attempt (LeasedRun.LockedBy is the lease token), saving
	// the executor a lease of its own; nil otherwise. A driver that cannot
	// lease in the fetch leaves it nil.
	LeasedRun *acidic.Run
}

// JobClaimParams names the job JobClaim claims and the worker it claims
// it for.
type JobClaimParams struct {
	ID       int64
	WorkerID string
}

// JobCompleteParams are the running attempts JobComplete completes.
type JobCompleteParams struct {
	Attempts []JobAttempt
}

// JobResolveDependenciesParams are the jobs whose dependents
// JobResolveDependencies settles; nil Ended sweeps every pending job.
type JobResolveDependenciesParams struct {
	Ended []int64
}

// JobHeartbeatParams are the running attempts JobHeartbeat refreshes.
type JobHeartbeatParams struct {
	Attempts []JobAttempt
}

// JobLostAttemptsParams are the attempts JobLostAttempts looks at.
type JobLostAttemptsParams struct {
	Attempts []JobAttempt
}

// JobPruneParams: JobPrune deletes up to Limit jobs that reached a final
// state longer than Retention ago.
type JobPruneParams struct {
	Retention time.Duration
	Limit     int
}

// JobGetParams names the job JobGet returns.
type JobGetParams struct {
	ID int64
}

// JobCancelParams names the job JobCancel cancels.
type JobCancelParams struct {
	ID int64
}

// JobRetryParams names the job JobRetry makes available again.
type JobRetryParams struct {
	ID int64
}

// NotifyParams is the notification Notify sends.
type NotifyParams struct {
	Topic   string
	Payload string
}

// RunGetParams names the run RunGet returns.
type RunGetParams struct {
	ID uuid.UUID
}

// RunGetByKeyParams names the run RunGetByKey returns by its idempotency
// key.
type RunGetByKeyParams struct {
	Key string
}

// RunSettleParams names the finished run RunSettle settles.
type RunSettleParams struct {
	ID uuid.UUID
}

// RunSetStateParams moves run ID from one of the states in From to To,
// with Error as its error (see Executor.RunSetState).
type RunSetStateParams struct {
	ID    uuid.UUID
	From  []acidic.RunState
	To    acidic.RunState
	Error string
}

// RunChildFinishedParams names the finished child run RunChildFinished
// counts off its parent.
type RunChildFinishedParams struct {
	ChildID uuid.UUID
}

// RunStepsParams names the run whose step log RunSteps returns.
type RunStepsParams struct {
	ID uuid.UUID
}

// OutboxInsertParams are the messages OutboxInsert stages.
type OutboxInsertParams struct {
	Messages []OutboxInsert
}

// OutboxClaimParams: OutboxClaim claims up to Limit messages and keeps
// other relays off them for Lease.
type OutboxClaimParams struct {
	Limit int
	Lease time.Duration
}

// OutboxDeliveredParams are the messages OutboxDelivered marks delivered.
type OutboxDeliveredParams struct {
	IDs []int64
}

// OutboxFailedParams records a failed delivery of message ID's claim with
// attempt number Attempt; the message is due again after RetryIn.
type OutboxFailedParams struct {
	ID      int64
	Attempt int
	RetryIn time.Duration
	Error   string
}

// OutboxReleaseParams are the claims OutboxRelease gives back.
type OutboxReleaseParams struct {
	Claims []OutboxClaim
}

// OutboxPruneParams: OutboxPrune deletes up to Limit messages delivered
// longer than Retention ago.
type OutboxPruneParams struct {
	Retention time.Duration
	Limit     int
}

// OutboxListParams: OutboxList returns up to Limit messages, undelivered
// only when PendingOnly is set.
type OutboxListParams struct {
	PendingOnly bool
	Limit       int
}

// QueueHintsParams are the queues whose notification payloads QueueHints
// returns.
type QueueHintsParams struct {
	Queues []string
}
