package storage

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
)

// AwaitedJobsInsertParams records that step Step of run RunID awaits the
// jobs JobIDs.
type AwaitedJobsInsertParams struct {
	RunID  uuid.UUID
	Step   string
	JobIDs []int64
}

// Validate returns acidic.ErrInvalid naming the problem, or nil.
func (p AwaitedJobsInsertParams) Validate() error {
	if p.RunID == uuid.Nil {
		return fmt.Errorf("%w: awaited jobs of no run", acidic.ErrInvalid)
	}
	return CheckName("step name", p.Step)
}

// AwaitedJobsResumeParams resumes run ID, parked at RecoveryPoint after its
// await step Step awaited jobs.
type AwaitedJobsResumeParams struct {
	ID            uuid.UUID
	Step          string
	RecoveryPoint string
}

// AwaitedJobsListParams selects the jobs awaited by step Step of run RunID
// (every step's when Step is empty).
type AwaitedJobsListParams struct {
	RunID uuid.UUID
	Step  string
}

// Awaits stores the queue jobs that runs await. A run awaiting jobs is
// parked (awaiting) with one job of its own waiting for them: a job of the
// run's workflow kind, pending with DependsOn set to the awaited jobs and
// DependencyFailure "ignore", which the queue releases once every awaited
// job has ended, however it ended (in the statement that completes the last
// of them, or in the resolution of dependencies that follows a cancel or
// discard). That job resumes the run with AwaitedJobsResume.
type Awaits interface {
	// AwaitedJobsInsert records the awaited jobs of a step; recording a job
	// a second time for the same run and step does nothing.
	AwaitedJobsInsert(ctx context.Context, p AwaitedJobsInsertParams) error
	// AwaitedJobsResume moves run ID from awaiting to pending, when it is
	// awaiting at RecoveryPoint, and in the same statement records the
	// state, errors and end of each job step Step awaited as they are then,
	// and marks the step succeeded in the step log.
	// It returns the run as it is, and whether it resumed it: of concurrent
	// calls for one awaiting run, exactly one resumes it. A run that does
	// not exist is acidic.ErrNotFound.
	AwaitedJobsResume(ctx context.Context, p AwaitedJobsResumeParams) (*acidic.Run, bool, error)
	// AwaitedJobsList returns the jobs awaited by the run's step (or all its
	// steps), by job id: each as recorded when the run resumed, or, before
	// that, as the job is now.
	AwaitedJobsList(ctx context.Context, p AwaitedJobsListParams) ([]*acidic.AwaitedJob, error)
}
