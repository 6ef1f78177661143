package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Awaits methods: sql/awaits.sql, migration 0002.

var _ storage.Awaits = (*Driver)(nil)

// AwaitedJobsInsert records the jobs a step awaits; see storage.Awaits.
func (e *executor) AwaitedJobsInsert(ctx context.Context, p storage.AwaitedJobsInsertParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.JobIDs) == 0 {
		return nil
	}
	err := e.write(ctx, false, func(q wq) error {
		_, err := q.exec("AwaitedJobsInsert", blobID(p.RunID), p.Step, idList(p.JobIDs))
		return err
	})
	if err != nil {
		return fmt.Errorf("record awaited jobs of run %s: %w", p.RunID, err)
	}
	return nil
}

// AwaitedJobsResume resumes a run awaiting jobs; see storage.Awaits. The
// guarded update, the record of the jobs and the step log's mark are one
// write transaction.
func (e *executor) AwaitedJobsResume(ctx context.Context, p storage.AwaitedJobsResumeParams) (*acidic.Run, bool, error) {
	var (
		r       *acidic.Run
		resumed bool
	)
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		var err error
		r, err = scanRun(q.queryRow("AwaitedJobsResume", blobID(p.ID), p.Step, p.RecoveryPoint, now))
		if isNotFound(err) {
			resumed = false
			r, err = scanRun(q.queryRow("RunGet", blobID(p.ID)))
			return err
		}
		if err != nil {
			return err
		}
		resumed = true
		if _, err := q.exec("AwaitedJobsRecord", blobID(p.ID), p.Step); err != nil {
			return err
		}
		_, err = q.exec("AwaitedJobsStepDone", blobID(p.ID), p.Step, now)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("resume run %s: %w", p.ID, err)
	}
	return r, resumed, nil
}

// AwaitedJobsList lists the jobs a run awaited; see storage.Awaits.
func (e *executor) AwaitedJobsList(ctx context.Context, p storage.AwaitedJobsListParams) ([]*acidic.AwaitedJob, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := r.query(ctx, "AwaitedJobsList", blobID(p.RunID), p.Step)
	if err != nil {
		return nil, fmt.Errorf("list awaited jobs of run %s: %w", p.RunID, wrapErr(err))
	}
	defer rows.Close()
	var out []*acidic.AwaitedJob
	for rows.Next() {
		var (
			j         acidic.AwaitedJob
			run       []byte
			args      []byte
			state     string
			errs      sql.NullString
			finalized sql.NullInt64
		)
		if err := rows.Scan(&run, &j.Step, &j.JobID, &j.Kind, &j.Queue, &args, &state, &errs, &finalized); err != nil {
			return nil, fmt.Errorf("list awaited jobs of run %s: %w", p.RunID, wrapErr(err))
		}
		if j.RunID, err = uuidOf(run); err != nil {
			return nil, fmt.Errorf("sqlite: awaited job %d: run id: %w", j.JobID, err)
		}
		if args != nil {
			j.Args = json.RawMessage(args)
		}
		j.State = acidic.JobState(state)
		j.FinalizedAt = nullTimeOf(finalized)
		if len(errs.String) > 2 {
			if err := json.Unmarshal([]byte(errs.String), &j.Errors); err != nil {
				return nil, fmt.Errorf("sqlite: awaited job %d: decode error history: %w", j.JobID, err)
			}
		}
		out = append(out, &j)
	}
	return out, wrapErr(rows.Err())
}
