package workflow

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
)

// A run awaiting queue jobs (steps.AwaitJobs) rests in state awaiting,
// with one job of its own staged in the await step's transaction: its
// resume job, of the run's workflow kind, pending with DependsOn set to
// the awaited jobs and DependencyFailure "ignore". The queue releases it
// once every awaited job has ended, however it ended: in the statement
// that completes the last of them (JobComplete, batched), or in the
// resolution of dependencies that follows a discard, a cancel or a
// rescue's discard (and, should the process die in between, in the
// leader's maintenance pass, which resolves every pending job). So the
// awaited jobs are counted off by the database, in the statements that
// end them, whichever client (an engine's or a bare queue.Client) works
// them, and no job is counted twice: a retried or rescued job is not
// final, and a job ends once.
//
// The resume job's delivery resumes the run (awaiting → pending, guarded:
// exactly once) and, in the same statement, records what each awaited
// job did; the next step then runs under the job's lease. Its args name
// the await step, so a resume job delivered again later (rescued after
// the run moved on and parked at another await) resumes nothing.

// resumeArgs are the args of a resume job.
type resumeArgs struct {
	Resume string `json:"resume"`
}

// awaitJobs stages the jobs a step of rec awaits, in the step's
// transaction, and records them as the step's awaited jobs.
func (e *Engine) awaitJobs(ctx context.Context, tx storage.Tx, rec *acidic.Run, step string, params []queue.EnqueueParams) ([]*acidic.Job, error) {
	jobs, err := e.q.EnqueueManyTx(ctx, tx, params)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	if err := tx.AwaitedJobsInsert(ctx, storage.AwaitedJobsInsertParams{RunID: rec.ID, Step: step, JobIDs: ids}); err != nil {
		return nil, err
	}
	return jobs, nil
}

// stageResume stages the resume job of a run whose step awaited jobs, in
// the step's transaction. It is released at once when every awaited job
// has already ended (unique jobs that existed).
func (e *Engine) stageResume(ctx context.Context, tx storage.Tx, rec *acidic.Run, step string, awaited []*acidic.Job) error {
	args, err := json.Marshal(resumeArgs{Resume: step})
	if err != nil {
		return err
	}
	opts := queue.EnqueueOptions{Queue: rec.Queue}
	if d, err := e.definition(rec.Workflow); err == nil {
		opts.Priority, opts.MaxAttempts = d.options().Priority, d.options().MaxAttempts
	}
	job, err := e.q.JobInsert(queue.EnqueueParams{Kind: rec.Workflow, Args: json.RawMessage(args), Opts: opts})
	if err != nil {
		return err
	}
	job.DependencyFailure = string(queue.IgnoreFailure)
	for _, j := range awaited {
		job.DependsOn = append(job.DependsOn, j.ID)
		if !j.State.Final() {
			job.State = acidic.JobPending
		}
	}
	return insertRunJob(ctx, tx, job, rec.ID)
}

// resume resumes a run resting in awaiting when job is its resume job for
// the await the run is parked at, and reports whether the run is no
// longer awaiting (resumed now or before): then the job leases it.
func (w *Workflow[A, S]) resume(ctx context.Context, e *Engine, job *acidic.Job, rec *acidic.Run) (bool, error) {
	var args resumeArgs
	if json.Unmarshal(job.Args, &args) != nil || args.Resume == "" || len(job.DependsOn) == 0 {
		return false, nil // a job of the run delivered again: nothing to do
	}
	idx := w.index(rec.RecoveryPoint)
	if idx < 1 || w.steps[idx-1].Name() != args.Resume {
		return false, nil // the resume job of an earlier await
	}
	r, resumed, err := e.drv.AwaitedJobsResume(ctx, storage.AwaitedJobsResumeParams{ID: rec.ID, Step: args.Resume, RecoveryPoint: rec.RecoveryPoint})
	if err != nil {
		return false, err
	}
	if resumed {
		e.cfg.Logger.Info("workflow: awaited jobs ended; run resumed", "run", rec.ID, "workflow", rec.Workflow, "step", args.Resume, "job", job.ID)
	}
	return r.State != acidic.RunAwaiting, nil
}

// checkJobs fails the run when an await step's awaited jobs did not all
// complete, unless the step continues on failure.
func checkJobs(ctx context.Context, e *Engine, rec *acidic.Run, step string) error {
	jobs, err := e.drv.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: rec.ID, Step: step})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if !j.Succeeded() {
			state := string(j.State)
			if state == "" {
				state = "gone"
			}
			return fmt.Errorf("%w: step %q: job %d (%s) %s: %s", steps.ErrChildFailed, step, j.JobID, j.Kind, state, j.LastError())
		}
	}
	return nil
}

// cancelAwaitedJobs cancels the unfinished queue jobs run id awaits, in the
// transaction that cancels the run, as its unfinished children are.
func (e *Engine) cancelAwaitedJobs(ctx context.Context, tx storage.Tx, id uuid.UUID) error {
	jobs, err := tx.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: id})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.State == "" || j.State.Final() {
			continue
		}
		if _, err := e.q.CancelTx(ctx, tx, j.JobID); err != nil {
			return err
		}
	}
	return nil
}

// AwaitedJobs returns the queue jobs the steps of run id awaited, by step
// and job id: each as the run recorded it when it resumed (its final state
// and errors), or, before that, as the job is now. A run that awaited no
// job has none.
func (e *Engine) AwaitedJobs(ctx context.Context, id uuid.UUID) ([]*acidic.AwaitedJob, error) {
	return e.drv.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: id})
}
