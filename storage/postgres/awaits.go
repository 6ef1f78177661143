package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var _ storage.Awaits = (*Driver)(nil)

// AwaitedJobsInsert records the jobs a step awaits; see storage.Awaits.
func (e *executor) AwaitedJobsInsert(ctx context.Context, p storage.AwaitedJobsInsertParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.JobIDs) == 0 {
		return nil
	}
	if _, err := e.db.Exec(ctx, e.q.Get("AwaitedJobsInsert"), runID(p.RunID), p.Step, p.JobIDs); err != nil {
		return fmt.Errorf("record awaited jobs of run %s: %w", p.RunID, wrapErr(err))
	}
	return nil
}

// AwaitedJobsResume resumes a run awaiting jobs; see storage.Awaits.
func (e *executor) AwaitedJobsResume(ctx context.Context, p storage.AwaitedJobsResumeParams) (*acidic.Run, bool, error) {
	var resumed bool
	var r runRow
	err := e.db.QueryRow(ctx, e.q.Get("AwaitedJobsResume"), runID(p.ID), p.Step, p.RecoveryPoint).
		Scan(append([]any{&resumed}, r.dest()...)...)
	if err != nil {
		return nil, false, fmt.Errorf("resume run %s: %w", p.ID, wrapErr(err))
	}
	return r.run(), resumed, nil
}

// AwaitedJobsList lists the jobs a run awaited; see storage.Awaits.
func (e *executor) AwaitedJobsList(ctx context.Context, p storage.AwaitedJobsListParams) ([]*acidic.AwaitedJob, error) {
	rows, err := e.db.Query(ctx, e.q.Get("AwaitedJobsList"), runID(p.RunID), p.Step)
	if err != nil {
		return nil, fmt.Errorf("list awaited jobs of run %s: %w", p.RunID, wrapErr(err))
	}
	defer rows.Close()
	var out []*acidic.AwaitedJob
	for rows.Next() {
		var (
			j         acidic.AwaitedJob
			run       pgtype.UUID
			state     string
			errs      []byte
			finalized pgtype.Timestamptz
		)
		if err := rows.Scan(&run, &j.Step, &j.JobID, &j.Kind, &j.Queue, &j.Args, &state, &errs, &finalized); err != nil {
			return nil, fmt.Errorf("list awaited jobs of run %s: %w", p.RunID, wrapErr(err))
		}
		j.RunID = run.Bytes
		j.State = acidic.JobState(state)
		j.FinalizedAt = timePtr(finalized)
		if len(errs) > 2 {
			if err := json.Unmarshal(errs, &j.Errors); err != nil {
				return nil, fmt.Errorf("postgres: awaited job %d: decode error history: %w", j.JobID, err)
			}
		}
		out = append(out, &j)
	}
	return out, wrapErr(rows.Err())
}
