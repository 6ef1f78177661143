package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/statebits"
	"github.com/acidic-go/acidic/storage"
)

// metaParam is a job's meta for the insert: an empty object when unset.
func metaParam(meta json.RawMessage) string {
	if len(meta) == 0 {
		return "{}"
	}
	return string(meta)
}

// newState is the state a new job starts in: pending as asked, else
// scheduled when its time is later than now, else available.
func newState(j storage.JobInsert, scheduledAt int64, now int64) acidic.JobState {
	switch {
	case j.State == acidic.JobPending:
		return acidic.JobPending
	case scheduledAt > now:
		return acidic.JobScheduled
	}
	return acidic.JobAvailable
}

// insertJob inserts one validated job and its dependency edges.
func insertJob(q wq, j storage.JobInsert, now int64) (*acidic.Job, error) {
	scheduledAt := now
	if !j.ScheduledAt.IsZero() {
		scheduledAt = j.ScheduledAt.UnixMicro()
	}
	var uniqueStates, deps any
	if j.UniqueKey != nil {
		uniqueStates = statebits.Mask(j.UniqueStates)
	}
	if len(j.DependsOn) > 0 {
		deps = idList(j.DependsOn)
	}
	depFailure := j.DependencyFailure
	if depFailure == "" {
		depFailure = "cancel"
	}
	var key any
	if j.UniqueKey != nil {
		key = j.UniqueKey
	}
	job, err := scanJob(q.queryRow("JobInsert", j.Queue, j.Kind, string(j.Args), blobID(j.RunID),
		string(newState(j, scheduledAt, now)), j.Priority, j.MaxAttempts, scheduledAt, metaParam(j.Meta),
		key, uniqueStates, deps, depFailure, now, tagsParam(j.Tags)))
	if err != nil {
		return nil, err
	}
	if deps != nil {
		if _, err := q.exec("JobDepsInsert", job.ID, deps); err != nil {
			return nil, err
		}
	}
	return job, nil
}

func (e *executor) JobInsertMany(ctx context.Context, p storage.JobInsertManyParams) ([]*acidic.Job, error) {
	if len(p.Jobs) == 0 {
		return nil, nil
	}
	for _, j := range p.Jobs {
		if err := j.Validate(); err != nil {
			return nil, err
		}
	}
	out := make([]*acidic.Job, 0, len(p.Jobs))
	err := e.write(ctx, false, func(q wq) error {
		out = out[:0]
		now := q.now()
		woken := map[string]bool{}
		for _, in := range p.Jobs {
			j, err := insertJob(q, in, now)
			if err != nil {
				return err
			}
			out = append(out, j)
			if j.State == acidic.JobAvailable && !woken[j.Queue] {
				woken[j.Queue] = true
				q.notify(storage.TopicInsert, j.Queue)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert jobs: %w", err)
	}
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
	if j.UniqueKey == nil {
		return nil, fmt.Errorf("%w: unique job of kind %q: no unique key", acidic.ErrInvalid, j.Kind)
	}
	var out *acidic.Job
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		existing, err := scanJob(q.queryRow("JobUniqueFind", j.UniqueKey))
		switch {
		case errors.Is(err, acidic.ErrNotFound):
			if out, err = insertJob(q, j, now); err != nil {
				return err
			}
			if out.State == acidic.JobAvailable {
				q.notify(storage.TopicInsert, out.Queue)
			}
			return nil
		case err != nil:
			return err
		}
		out = existing
		out.Duplicate = true
		if existing.State != acidic.JobAvailable && existing.State != acidic.JobScheduled {
			return nil
		}
		// The fields to replace, as a duplicate of a job that has not
		// started asks; nothing is written when none differs.
		scheduledAt := existing.ScheduledAt.UnixMicro()
		state, args, priority, maxAttempts := existing.State, []byte(existing.Args), existing.Priority, existing.MaxAttempts
		changed := false
		if want := now; r.ScheduledAt {
			if !j.ScheduledAt.IsZero() {
				want = j.ScheduledAt.UnixMicro()
			}
			if want != scheduledAt {
				scheduledAt, changed = want, true
				state = acidic.JobAvailable
				if want > now {
					state = acidic.JobScheduled
				}
			}
		}
		if r.Args && !sameJSON(args, j.Args) {
			args, changed = j.Args, true
		}
		if r.Priority && priority != j.Priority {
			priority, changed = j.Priority, true
		}
		if r.MaxAttempts && maxAttempts != j.MaxAttempts {
			maxAttempts, changed = j.MaxAttempts, true
		}
		if !changed {
			return nil
		}
		replaced, err := scanJob(q.queryRow("JobUniqueReplace", existing.ID, scheduledAt, string(state), string(args), priority, maxAttempts))
		if err != nil {
			return err
		}
		if replaced.State == acidic.JobAvailable && existing.State != acidic.JobAvailable {
			q.notify(storage.TopicInsert, replaced.Queue)
		}
		replaced.Duplicate = true
		out = replaced
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert unique job: %w", err)
	}
	return out, nil
}

// sameJSON reports whether two JSON documents are equal as values, as
// PostgreSQL's jsonb compares them: whitespace and key order aside.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	decode := func(raw []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		return v, true
	}
	va, oka := decode(a)
	vb, okb := decode(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

func (e *executor) JobMakeDue(ctx context.Context, p storage.JobMakeDueParams) (int, error) {
	var n int64
	err := e.write(ctx, false, func(q wq) error {
		var err error
		n, err = q.execCount("JobMakeDue", p.Queue, q.now())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("make jobs due: %w", err)
	}
	return int(n), nil
}

// leaseToken names a lease for operators (the job attempt that holds it)
// and is unique besides.
func leaseToken(job *acidic.Job) string {
	return "job:" + strconv.FormatInt(job.ID, 10) + ":" + strconv.Itoa(job.Attempt) + ":" + rand.Text()
}

func (e *executor) JobFetch(ctx context.Context, p storage.JobFetchParams) ([]storage.FetchedJob, error) {
	if p.Max <= 0 {
		return nil, nil
	}
	var out []storage.FetchedJob
	err := e.write(ctx, true, func(q wq) error {
		out = out[:0]
		now := q.now()
		jobs, err := collectJobs(q.query("JobFetch", p.Queue, p.Max, p.WorkerID, now, p.SkipRunJobs))
		if err != nil {
			return err
		}
		for _, j := range jobs {
			f := storage.FetchedJob{Job: j}
			if j.RunID != uuid.Nil {
				// Lease the job's run too when it is free, saving the
				// executor a lease of its own.
				r, err := scanRun(q.queryRow("JobFetchLease", blobID(j.RunID), leaseToken(j), j.ID, j.Attempt, now, j.Kind))
				switch {
				case err == nil:
					f.LeasedRun = r
				case !errors.Is(err, acidic.ErrNotFound):
					return err
				}
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch jobs: %w", err)
	}
	slices.SortFunc(out, func(a, b storage.FetchedJob) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		if c := a.ScheduledAt.Compare(b.ScheduledAt); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out, nil
}

func (e *executor) JobClaim(ctx context.Context, p storage.JobClaimParams) (*acidic.Job, error) {
	var j *acidic.Job
	err := e.write(ctx, true, func(q wq) error {
		var err error
		j, err = scanJob(q.queryRow("JobClaim", p.ID, p.WorkerID, q.now()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim job %d: %w", p.ID, err)
	}
	return j, nil
}

// attemptList writes attempts as the JSON pairs the queries read.
func attemptList(attempts []storage.JobAttempt) string {
	return pairList(len(attempts), func(i int) (int64, int) { return attempts[i].ID, attempts[i].Attempt })
}

// readIDs reads a column of ids.
func readIDs(rows rowset, err error) ([]int64, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, wrapErr(err)
		}
		out = append(out, id)
	}
	return out, wrapErr(rows.Err())
}

func (e *executor) JobComplete(ctx context.Context, p storage.JobCompleteParams) ([]int64, error) {
	if len(p.Attempts) == 0 {
		return []int64{}, nil
	}
	done := []int64{}
	err := e.write(ctx, true, func(q wq) error {
		now := q.now()
		ids, err := readIDs(q.query("JobComplete", attemptList(p.Attempts), now))
		if err != nil {
			return err
		}
		done = append(done[:0], ids...)
		if len(ids) == 0 {
			return nil
		}
		// Release the dependents whose last dependency this completed.
		dependents, err := readIDs(q.query("JobDependents", idList(ids)))
		if err != nil || len(dependents) == 0 {
			return err
		}
		_, err = releaseDependents(q, dependents, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("complete jobs: %w", err)
	}
	slices.Sort(done)
	return done, nil
}

// releaseDependents releases those of the pending jobs ids whose
// dependencies are all done, waking the queues of those now available, and
// returns how many it released.
func releaseDependents(q wq, ids []int64, now int64) (int, error) {
	rows, err := q.query("JobReleaseDependents", idList(ids), now)
	if err != nil {
		return 0, wrapErr(err)
	}
	defer rows.Close()
	n := 0
	woken := map[string]bool{}
	for rows.Next() {
		var queue, state string
		if err := rows.Scan(&queue, &state); err != nil {
			return n, wrapErr(err)
		}
		n++
		if state == string(acidic.JobAvailable) && !woken[queue] {
			woken[queue] = true
			q.notify(storage.TopicInsert, queue)
		}
	}
	return n, wrapErr(rows.Err())
}

func (e *executor) JobResolveDependencies(ctx context.Context, p storage.JobResolveDependenciesParams) (int, int, error) {
	var failed, released int
	err := e.write(ctx, false, func(q wq) error {
		failed, released = 0, 0
		ended := p.Ended
		// Each pass settles one level of a graph. Seeded, the next level
		// is the dependents of the jobs this pass failed; a sweep (nil)
		// repeats until nothing changes.
		sweep := ended == nil
		for pass := 0; pass < 1000; pass++ {
			now := q.now()
			var candidates []int64
			var err error
			if sweep {
				candidates, err = readIDs(q.query("JobPendingAll"))
			} else {
				candidates, err = readIDs(q.query("JobDependents", idList(ended)))
			}
			if err != nil {
				return err
			}
			if len(candidates) == 0 {
				return nil
			}
			failedIDs, err := readIDs(q.query("JobFailDependents", idList(candidates), now, jsonTime(now)))
			if err != nil {
				return err
			}
			r, err := releaseDependents(q, candidates, now)
			if err != nil {
				return err
			}
			failed, released = failed+len(failedIDs), released+r
			if len(failedIDs) == 0 && (!sweep || r == 0) {
				return nil
			}
			ended = failedIDs
		}
		return nil
	})
	if err != nil {
		return failed, released, fmt.Errorf("resolve dependencies: %w", err)
	}
	return failed, released, nil
}

// releaseLease frees the run lease that a job attempt that just ended held.
func releaseLease(q wq, runID uuid.UUID, jobID int64, attempt int, now int64) error {
	if runID == uuid.Nil {
		return nil
	}
	_, err := q.exec("JobReleaseLease", blobID(runID), jobID, attempt, now)
	return err
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
	var ended bool
	err := e.write(ctx, true, func(q wq) error {
		ended = false
		now := q.now()
		var (
			id      int64
			attempt int
			runID   []byte
		)
		err := q.queryRow("JobFinish", o.ID, o.Attempt, string(o.State), micros(o.ScheduledAt), errJSON, now).Scan(&id, &attempt, &runID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return wrapErr(err)
		}
		ended = true
		run, err := uuidOf(runID)
		if err != nil {
			return err
		}
		return releaseLease(q, run, id, attempt, now)
	})
	if err != nil {
		return false, fmt.Errorf("finish job %d: %w", o.ID, err)
	}
	return ended, nil
}

// readStatuses reads attempts and their job's state now.
func readStatuses(rows rowset, err error) ([]storage.JobStatus, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []storage.JobStatus
	for rows.Next() {
		var s storage.JobStatus
		var state string
		if err := rows.Scan(&s.ID, &s.Attempt, &state, &s.CurrentAttempt); err != nil {
			return nil, wrapErr(err)
		}
		s.State = acidic.JobState(state)
		out = append(out, s)
	}
	return out, wrapErr(rows.Err())
}

func (e *executor) JobHeartbeat(ctx context.Context, p storage.JobHeartbeatParams) ([]storage.JobStatus, error) {
	if len(p.Attempts) == 0 {
		return nil, nil
	}
	held := attemptList(p.Attempts)
	var lost []storage.JobStatus
	err := e.write(ctx, true, func(q wq) error {
		if _, err := q.exec("JobHeartbeat", held, q.now()); err != nil {
			return err
		}
		var err error
		lost, err = readStatuses(q.query("JobLostAttempts", held))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat jobs: %w", err)
	}
	return lost, nil
}

func (e *executor) JobLostAttempts(ctx context.Context, p storage.JobLostAttemptsParams) ([]storage.JobStatus, error) {
	if len(p.Attempts) == 0 {
		return nil, nil
	}
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("check job attempts: %w", err)
	}
	lost, err := readStatuses(r.query(ctx, "JobLostAttempts", attemptList(p.Attempts)))
	if err != nil {
		return nil, fmt.Errorf("check job attempts: %w", err)
	}
	return lost, nil
}

func (e *executor) JobRescue(ctx context.Context, p storage.JobRescueParams) ([]*acidic.Job, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	var rescued []*acidic.Job
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		var err error
		rescued, err = collectJobs(q.query("JobRescue", now-p.StaleAfter.Microseconds(), p.Limit, p.SkipRunJobs,
			idList(p.Except), now, jsonTime(now)))
		if err != nil {
			return err
		}
		for _, j := range rescued {
			if err := releaseLease(q, j.RunID, j.ID, j.Attempt, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rescue jobs: %w", err)
	}
	return rescued, nil
}

func (e *executor) JobPrune(ctx context.Context, p storage.JobPruneParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	// One retention for every final state (see retention.go).
	r := p.Retention
	return e.JobPruneByState(ctx, storage.JobPruneByStateParams{Limit: p.Limit, Retention: map[acidic.JobState]time.Duration{
		acidic.JobCompleted: r, acidic.JobCancelled: r, acidic.JobDiscarded: r}})
}

func (e *executor) JobStats(ctx context.Context) ([]acidic.QueueStats, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	rows, err := r.query(ctx, "JobStats")
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", wrapErr(err))
	}
	defer rows.Close()
	var out []acidic.QueueStats
	for rows.Next() {
		var s acidic.QueueStats
		var state string
		var oldest sql.NullInt64
		if err := rows.Scan(&s.Queue, &state, &s.Count, &oldest); err != nil {
			return nil, wrapErr(err)
		}
		s.State, s.OldestDue = acidic.JobState(state), nullTimeOf(oldest)
		out = append(out, s)
	}
	return out, wrapErr(rows.Err())
}

func (e *executor) JobGet(ctx context.Context, p storage.JobGetParams) (*acidic.Job, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", p.ID, err)
	}
	j, err := scanJob(r.queryRow(ctx, "JobGet", p.ID))
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", p.ID, err)
	}
	return j, nil
}

func (e *executor) JobList(ctx context.Context, f acidic.JobFilter) ([]*acidic.Job, error) {
	if err := storage.CheckTags(f.Tags); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	var ids any
	if f.IDs != nil {
		ids = idList(f.IDs)
	}
	name := "JobList"
	if f.RunID != uuid.Nil {
		name = "JobListByRun"
	}
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	jobs, err := collectJobs(r.query(ctx, name, stringList(f.States), f.Queue, f.Kind, blobID(f.RunID), ids, f.AfterID, limit, tagsParam(f.Tags)))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

func (e *executor) JobCancel(ctx context.Context, p storage.JobCancelParams) (*acidic.Job, error) {
	var j *acidic.Job
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		var err error
		j, err = scanJob(q.queryRow("JobCancel", p.ID, now))
		switch {
		case err == nil:
			return releaseLease(q, j.RunID, j.ID, j.Attempt, now)
		case errors.Is(err, acidic.ErrNotFound):
			// Finished already, or no such job.
			j, err = scanJob(q.queryRow("JobGet", p.ID))
			return err
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel job %d: %w", p.ID, err)
	}
	return j, nil
}

func (e *executor) JobRetry(ctx context.Context, p storage.JobRetryParams) (*acidic.Job, error) {
	var j *acidic.Job
	err := e.write(ctx, false, func(q wq) error {
		var err error
		j, err = scanJob(q.queryRow("JobRetry", p.ID, q.now()))
		switch {
		case err == nil:
			q.notify(storage.TopicInsert, j.Queue)
			return nil
		case errors.Is(err, acidic.ErrNotFound):
			// Running or pending, or no such job.
			j, err = scanJob(q.queryRow("JobGet", p.ID))
			return err
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retry job %d: %w", p.ID, err)
	}
	return j, nil
}
