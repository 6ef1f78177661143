package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/statebits"
	"github.com/acidic-go/acidic/storage"
)

func (e *executor) JobInsertMany(ctx context.Context, p storage.JobInsertManyParams) ([]*acidic.Job, error) {
	jobs := p.Jobs
	if len(jobs) == 0 {
		return nil, nil
	}
	for _, j := range jobs {
		if err := j.Validate(); err != nil {
			return nil, err
		}
	}
	n := len(jobs)
	var (
		queues       = make([]string, n)
		kinds        = make([]string, n)
		args         = make([]string, n)
		runIDs       = make([]pgtype.UUID, n)
		states       = make([]string, n)
		priorities   = make([]int16, n)
		maxAttempts  = make([]int32, n)
		scheduledAt  = make([]pgtype.Timestamptz, n)
		metas        = make([]string, n)
		uniqueKeys   = make([][]byte, n)
		uniqueStates = make([]pgtype.Int2, n)
		dependsOn    = make([]string, n)
		depFailure   = make([]string, n)
		tags         = make([]*string, n)
	)
	for i, j := range jobs {
		queues[i] = j.Queue
		kinds[i] = j.Kind
		args[i] = string(j.Args)
		runIDs[i] = nullUUID(j.RunID)
		states[i] = string(j.State)
		priorities[i] = int16(j.Priority)
		maxAttempts[i] = int32(j.MaxAttempts)
		scheduledAt[i] = nullTime(j.ScheduledAt)
		metas[i] = metaParam(j.Meta)
		uniqueKeys[i] = j.UniqueKey
		uniqueStates[i] = pgtype.Int2{Int16: int16(statebits.Mask(j.UniqueStates)), Valid: j.UniqueKey != nil}
		dependsOn[i] = int64ArrayLiteral(j.DependsOn)
		depFailure[i] = j.DependencyFailure
		tags[i] = tagsJSON(j.Tags)
	}
	out, err := collectJobs(e.db.Query(ctx, e.q.Get("JobInsertMany"),
		queues, kinds, args, runIDs, states, priorities, maxAttempts, scheduledAt, metas,
		uniqueKeys, uniqueStates, e.channelPrefix+storage.TopicInsert, dependsOn, depFailure, tags))
	if err != nil {
		return nil, fmt.Errorf("insert jobs: %w", err)
	}
	// Identity values follow the insertion order, which follows the input.
	slices.SortFunc(out, func(a, b *acidic.Job) int { return int(a.ID - b.ID) })
	return out, nil
}

func (e *executor) JobInsertUnique(ctx context.Context, p storage.JobInsertUniqueParams) (*acidic.Job, error) {
	j, r := p.Job, p.Replace
	if err := j.Validate(); err != nil {
		return nil, err
	}
	if j.State == acidic.JobPending || len(j.DependsOn) > 0 {
		return nil, fmt.Errorf("%w: unique job of kind %q: a unique job cannot wait for dependencies", acidic.ErrInvalid, j.Kind)
	}
	args := []any{j.Queue, j.Kind, string(j.Args), nullUUID(j.RunID),
		int16(j.Priority), int32(j.MaxAttempts), metaParam(j.Meta), nullTime(j.ScheduledAt), j.UniqueKey, int16(statebits.Mask(j.UniqueStates)),
		r.ScheduledAt, r.Args, r.Priority, r.MaxAttempts, e.channelPrefix + storage.TopicInsert, tagsParam(j.Tags)}
	// No row means the statement lost a race with a concurrent insert or
	// change of the job it could not see from its snapshot; a fresh
	// statement sees it.
	for try := 1; ; try++ {
		var woke, duplicate bool
		job, err := scanJobWith(e.db.QueryRow(ctx, e.q.Get("JobInsertUnique"), args...), &woke, &duplicate)
		if err == nil {
			job.Duplicate = duplicate
			return job, nil
		}
		if !errors.Is(err, acidic.ErrNotFound) {
			return nil, fmt.Errorf("insert unique job: %w", err)
		}
		if try == uniqueInsertTries {
			return nil, fmt.Errorf("insert unique job: %w: the job with its key kept changing (%d tries)", acidic.ErrSerialization, try)
		}
	}
}

// uniqueInsertTries bounds how often JobInsertUnique runs its statement
// again after losing a race; each loss means another session changed the
// job meanwhile, so more than a few in a row are unlikely.
const uniqueInsertTries = 20

// metaParam is a job's meta for the insert: an empty object when unset.
func metaParam(meta json.RawMessage) string {
	if len(meta) == 0 {
		return "{}"
	}
	return string(meta)
}

func (e *executor) JobMakeDue(ctx context.Context, p storage.JobMakeDueParams) (int, error) {
	queue := p.Queue
	tag, err := e.db.Exec(ctx, e.q.Get("JobMakeDue"), queue)
	if err != nil {
		return 0, fmt.Errorf("make jobs due: %w", wrapErr(err))
	}
	return int(tag.RowsAffected()), nil
}

func (e *executor) JobFetch(ctx context.Context, p storage.JobFetchParams) ([]storage.FetchedJob, error) {
	var jobs []storage.FetchedJob
	err := e.bookkeeping(ctx, e.q.Get("JobFetch"), []any{p.Queue, p.Max, p.WorkerID, p.SkipRunJobs}, func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				leasedJob pgtype.Int8
				run       runRow
			)
			j, err := scanJobWith(rows, append([]any{&leasedJob}, run.dest()...)...)
			if err != nil {
				return err
			}
			jobs = append(jobs, storage.FetchedJob{Job: j, LeasedRun: run.run()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch jobs: %w", err)
	}
	slices.SortFunc(jobs, func(a, b storage.FetchedJob) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		if c := a.ScheduledAt.Compare(b.ScheduledAt); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return jobs, nil
}

func (e *executor) JobClaim(ctx context.Context, p storage.JobClaimParams) (*acidic.Job, error) {
	id, workerID := p.ID, p.WorkerID
	j, err := scanJob(e.db.QueryRow(ctx, e.q.Get("JobClaim"), id, workerID))
	if err != nil {
		return nil, fmt.Errorf("claim job %d: %w", id, err)
	}
	return j, nil
}

// attemptArrays splits attempts into the parallel arrays the queries unnest.
func attemptArrays(attempts []storage.JobAttempt) ([]int64, []int32) {
	ids := make([]int64, len(attempts))
	nums := make([]int32, len(attempts))
	for i, a := range attempts {
		ids[i], nums[i] = a.ID, int32(a.Attempt)
	}
	return ids, nums
}

func (e *executor) JobComplete(ctx context.Context, p storage.JobCompleteParams) ([]int64, error) {
	attempts := p.Attempts
	ids, nums := attemptArrays(attempts)
	done := make([]int64, 0, len(attempts))
	err := e.bookkeeping(ctx, e.q.Get("JobComplete"), []any{ids, nums, e.channelPrefix + storage.TopicInsert}, func(rows pgx.Rows) error {
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return wrapErr(err)
			}
			done = append(done, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete jobs: %w", err)
	}
	return done, nil
}

func (e *executor) JobFinish(ctx context.Context, o storage.JobFinishParams) (bool, error) {
	if err := o.Validate(); err != nil {
		return false, err
	}
	var errJSON any
	if o.Error != nil {
		stored := *o.Error
		stored.Error = storage.Text(stored.Error)
		b, err := json.Marshal(stored)
		if err != nil {
			return false, fmt.Errorf("finish job %d: encode error: %w", o.ID, err)
		}
		errJSON = string(b)
	}
	var updated bool
	err := e.bookkeeping(ctx, e.q.Get("JobFinish"), []any{o.ID, o.Attempt, string(o.State), nullTime(o.ScheduledAt), errJSON},
		func(rows pgx.Rows) error {
			for rows.Next() {
				updated = true
			}
			return nil
		})
	if err != nil {
		return false, fmt.Errorf("finish job %d: %w", o.ID, err)
	}
	return updated, nil
}

func (e *executor) JobHeartbeat(ctx context.Context, p storage.JobHeartbeatParams) ([]storage.JobStatus, error) {
	attempts := p.Attempts
	if len(attempts) == 0 {
		return nil, nil
	}
	ids, nums := attemptArrays(attempts)
	var lost []storage.JobStatus
	err := e.bookkeeping(ctx, e.q.Get("JobHeartbeat"), []any{ids, nums}, func(rows pgx.Rows) error {
		for rows.Next() {
			s, err := scanJobStatus(rows)
			if err != nil {
				return err
			}
			lost = append(lost, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat jobs: %w", err)
	}
	return lost, nil
}

func (e *executor) JobLostAttempts(ctx context.Context, p storage.JobLostAttemptsParams) ([]storage.JobStatus, error) {
	attempts := p.Attempts
	if len(attempts) == 0 {
		return nil, nil
	}
	ids, nums := attemptArrays(attempts)
	rows, err := e.db.Query(ctx, e.q.Get("JobLostAttempts"), ids, nums)
	if err != nil {
		return nil, fmt.Errorf("check job attempts: %w", wrapErr(err))
	}
	defer rows.Close()
	var lost []storage.JobStatus
	for rows.Next() {
		s, err := scanJobStatus(rows)
		if err != nil {
			return nil, fmt.Errorf("check job attempts: %w", err)
		}
		lost = append(lost, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check job attempts: %w", wrapErr(err))
	}
	return lost, nil
}

// scanJobStatus reads an attempt and its job's state and attempt now.
func scanJobStatus(rows pgx.Rows) (storage.JobStatus, error) {
	var s storage.JobStatus
	var state string
	if err := rows.Scan(&s.ID, &s.Attempt, &state, &s.CurrentAttempt); err != nil {
		return s, wrapErr(err)
	}
	s.State = acidic.JobState(state)
	return s, nil
}

func (e *executor) JobRescue(ctx context.Context, p storage.JobRescueParams) ([]*acidic.Job, error) {
	jobs, err := collectJobs(e.db.Query(ctx, e.q.Get("JobRescue"), p.StaleAfter.Microseconds(), p.Limit, p.SkipRunJobs, p.Except))
	if err != nil {
		return nil, fmt.Errorf("rescue jobs: %w", err)
	}
	return jobs, nil
}

func (e *executor) JobPrune(ctx context.Context, p storage.JobPruneParams) (int, error) {
	retention, limit := p.Retention, p.Limit
	// One retention for every final state (see retention.go).
	return e.JobPruneByState(ctx, storage.JobPruneByStateParams{Limit: limit, Retention: map[acidic.JobState]time.Duration{
		acidic.JobCompleted: retention, acidic.JobCancelled: retention, acidic.JobDiscarded: retention}})
}

func (e *executor) JobStats(ctx context.Context) ([]acidic.QueueStats, error) {
	rows, err := e.db.Query(ctx, e.q.Get("JobStats"))
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", wrapErr(err))
	}
	defer rows.Close()
	var out []acidic.QueueStats
	for rows.Next() {
		var s acidic.QueueStats
		var state string
		var oldest pgtype.Timestamptz
		if err := rows.Scan(&s.Queue, &state, &s.Count, &oldest); err != nil {
			return nil, wrapErr(err)
		}
		s.State, s.OldestDue = acidic.JobState(state), timePtr(oldest)
		out = append(out, s)
	}
	return out, wrapErr(rows.Err())
}

func (e *executor) JobGet(ctx context.Context, p storage.JobGetParams) (*acidic.Job, error) {
	id := p.ID
	j, err := scanJob(e.db.QueryRow(ctx, e.q.Get("JobGet"), id))
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}

func (e *executor) JobList(ctx context.Context, f acidic.JobFilter) ([]*acidic.Job, error) {
	if err := storage.CheckTags(f.Tags); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	var states []string
	for _, s := range f.States {
		states = append(states, string(s))
	}
	var ids []int64
	if f.IDs != nil {
		ids = f.IDs
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	jobs, err := collectJobs(e.db.Query(ctx, e.q.Get("JobList"), states, f.Queue, f.Kind, nullUUID(f.RunID), ids, f.AfterID, limit, tagsParam(f.Tags)))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

func (e *executor) JobCancel(ctx context.Context, p storage.JobCancelParams) (*acidic.Job, error) {
	id := p.ID
	j, err := scanJob(e.db.QueryRow(ctx, e.q.Get("JobCancel"), id))
	if err == nil {
		return j, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("cancel job %d: %w", id, err)
	}
	return e.JobGet(ctx, storage.JobGetParams{ID: id})
}

func (e *executor) JobRetry(ctx context.Context, p storage.JobRetryParams) (*acidic.Job, error) {
	id := p.ID
	j, err := scanJob(e.db.QueryRow(ctx, e.q.Get("JobRetry"), id, e.channelPrefix+storage.TopicInsert))
	if err == nil {
		return j, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("retry job %d: %w", id, err)
	}
	return e.JobGet(ctx, storage.JobGetParams{ID: id})
}

func (e *executor) JobResolveDependencies(ctx context.Context, p storage.JobResolveDependenciesParams) (int, int, error) {
	ended := p.Ended
	var failed, released int
	// Each pass settles one level of a graph; a chain of n failed
	// dependents takes n passes. Seeded, the next level is the dependents of
	// the jobs this pass failed; a sweep (nil) repeats until nothing changes.
	sweep := ended == nil
	for pass := 0; pass < 1000; pass++ {
		var seeds any // NULL: every pending job
		if !sweep {
			seeds = ended
		}
		var failedIDs []int64
		var r int
		if err := e.db.QueryRow(ctx, e.q.Get("JobResolveDependencies"), e.channelPrefix+storage.TopicInsert, seeds).Scan(&failedIDs, &r); err != nil {
			return failed, released, fmt.Errorf("resolve dependencies: %w", wrapErr(err))
		}
		failed, released = failed+len(failedIDs), released+r
		if len(failedIDs) == 0 && (!sweep || r == 0) {
			break
		}
		ended = failedIDs
	}
	return failed, released, nil
}

// int64ArrayLiteral writes ids as a PostgreSQL array literal; empty for none.
func int64ArrayLiteral(ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	b := []byte{'{'}
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, '}'))
}
