package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/statebits"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

func nullUUID(id uuid.UUID) pgtype.UUID {
	return pgtype.UUID{Bytes: id, Valid: id != uuid.Nil}
}

func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func timePtr(t pgtype.Timestamptz) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time
	return &v
}

// jsonParam passes JSON to a jsonb parameter; empty means SQL NULL.
func jsonParam(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func scanJob(row pgx.Row) (*acidic.Job, error) { return scanJobWith(row) }

// scanJobWith scans a job row followed by extra columns into extra.
func scanJobWith(row pgx.Row, extra ...any) (*acidic.Job, error) {
	var (
		j            acidic.Job
		runID        pgtype.UUID
		state        string
		priority     int16
		attemptedAt  pgtype.Timestamptz
		finalizedAt  pgtype.Timestamptz
		errorsJSON   []byte
		uniqueStates int16
	)
	// Args and Meta are scanned as bytes: into a json.RawMessage pgx
	// would run encoding/json over them (jsonb is valid JSON already).
	dest := append([]any{&j.ID, &j.Queue, &j.Kind, (*[]byte)(&j.Args), &runID, &state, &priority, &j.Attempt, &j.MaxAttempts,
		&j.ScheduledAt, &attemptedAt, &j.AttemptedBy, &finalizedAt, &errorsJSON, (*[]byte)(&j.Meta),
		&j.UniqueKey, &uniqueStates, &j.CreatedAt, &j.DependsOn, &j.DependencyFailure, &j.Tags}, extra...)
	err := row.Scan(dest...)
	if err != nil {
		return nil, wrapErr(err)
	}
	if runID.Valid {
		j.RunID = runID.Bytes
	}
	j.State = acidic.JobState(state)
	j.Priority = int(priority)
	j.AttemptedAt = timePtr(attemptedAt)
	j.FinalizedAt = timePtr(finalizedAt)
	j.UniqueStates = statebits.Set(int64(uniqueStates))
	if len(errorsJSON) > 2 { // "[]" is the common case; skip the decode
		if err := json.Unmarshal(errorsJSON, &j.Errors); err != nil {
			return nil, fmt.Errorf("postgres: job %d: decode error history: %w", j.ID, err)
		}
	}
	return &j, nil
}

func collectJobs(rows pgx.Rows, err error) ([]*acidic.Job, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	return readJobs(rows)
}

func readJobs(rows pgx.Rows) ([]*acidic.Job, error) {
	var out []*acidic.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, wrapErr(rows.Err())
}

func scanRun(row pgx.Row) (*acidic.Run, error) {
	var r runRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, wrapErr(err)
	}
	return r.run(), nil
}

// runRow receives the run columns ({run_columns}) of a row, all nullable: a
// run joined to another row may be missing.
type runRow struct {
	id, parent                                            pgtype.UUID
	key, workflow, state, queue, recoveryPoint, hash      pgtype.Text
	lockedBy, parentStep, errText                         pgtype.Text
	args, attrs, result                                   []byte
	cursor                                                pgtype.Int8
	awaiting                                              pgtype.Int4
	lockedAt, lastRunAt, createdAt, updatedAt, finishedAt pgtype.Timestamptz
	settledAt                                             pgtype.Timestamptz
	tags                                                  []string
}

func (r *runRow) dest() []any {
	return []any{&r.id, &r.key, &r.workflow, &r.args, &r.state, &r.queue, &r.recoveryPoint,
		&r.hash, &r.attrs, &r.cursor, &r.lockedBy, &r.lockedAt, &r.lastRunAt, &r.parent,
		&r.parentStep, &r.awaiting, &r.errText, &r.result, &r.createdAt, &r.updatedAt, &r.finishedAt, &r.settledAt, &r.tags}
}

// run returns the run scanned, or nil when the row had none.
func (r *runRow) run() *acidic.Run {
	if !r.id.Valid {
		return nil
	}
	out := &acidic.Run{
		ID:             r.id.Bytes,
		IdempotencyKey: r.key.String,
		Workflow:       r.workflow.String,
		Args:           r.args,
		State:          acidic.RunState(r.state.String),
		Queue:          r.queue.String,
		RecoveryPoint:  r.recoveryPoint.String,
		DefinitionHash: r.hash.String,
		Attrs:          r.attrs,
		Cursor:         r.cursor.Int64,
		LockedBy:       r.lockedBy.String,
		LockedAt:       timePtr(r.lockedAt),
		LastRunAt:      timePtr(r.lastRunAt),
		ParentStep:     r.parentStep.String,
		Awaiting:       int(r.awaiting.Int32),
		Error:          r.errText.String,
		Result:         r.result,
		CreatedAt:      r.createdAt.Time,
		UpdatedAt:      r.updatedAt.Time,
		FinishedAt:     timePtr(r.finishedAt),
		SettledAt:      timePtr(r.settledAt),
		Tags:           r.tags,
	}
	if r.parent.Valid {
		out.ParentRunID = r.parent.Bytes
	}
	return out
}

func collectRuns(rows pgx.Rows, err error) ([]*acidic.Run, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, wrapErr(rows.Err())
}
