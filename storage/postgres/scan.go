package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic/storage"
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

func scanJob(row pgx.Row) (*storage.Job, error) { return scanJobWith(row) }

// scanJobWith scans a job row followed by extra columns into extra.
func scanJobWith(row pgx.Row, extra ...any) (*storage.Job, error) {
	var (
		j            storage.Job
		runID        pgtype.UUID
		state        string
		priority     int16
		attemptedAt  pgtype.Timestamptz
		finalizedAt  pgtype.Timestamptz
		errorsJSON   []byte
		uniqueStates int16
	)
	dest := append([]any{&j.ID, &j.Queue, &j.Kind, &j.Args, &runID, &state, &priority, &j.Attempt, &j.MaxAttempts,
		&j.ScheduledAt, &attemptedAt, &j.AttemptedBy, &finalizedAt, &errorsJSON, &j.Meta,
		&j.UniqueKey, &uniqueStates, &j.CreatedAt, &j.DependsOn, &j.DependencyFailure}, extra...)
	err := row.Scan(dest...)
	if err != nil {
		return nil, wrapErr(err)
	}
	if runID.Valid {
		j.RunID = runID.Bytes
	}
	j.State = storage.JobState(state)
	j.Priority = int(priority)
	j.AttemptedAt = timePtr(attemptedAt)
	j.FinalizedAt = timePtr(finalizedAt)
	j.UniqueStates = uint8(uniqueStates)
	if len(errorsJSON) > 2 { // "[]" is the common case; skip the decode
		if err := json.Unmarshal(errorsJSON, &j.Errors); err != nil {
			return nil, fmt.Errorf("postgres: job %d: decode error history: %w", j.ID, err)
		}
	}
	return &j, nil
}

func collectJobs(rows pgx.Rows, err error) ([]*storage.Job, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	return readJobs(rows)
}

func readJobs(rows pgx.Rows) ([]*storage.Job, error) {
	var out []*storage.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, wrapErr(rows.Err())
}

func scanRun(row pgx.Row) (*storage.Run, error) {
	var (
		r          storage.Run
		state      string
		lockedAt   pgtype.Timestamptz
		lastRunAt  pgtype.Timestamptz
		parent     pgtype.UUID
		finishedAt pgtype.Timestamptz
	)
	err := row.Scan(&r.ID, &r.IdempotencyKey, &r.Workflow, &r.Args, &state, &r.Queue, &r.RecoveryPoint,
		&r.DefinitionHash, &r.Attrs, &r.Cursor, &r.LockedBy, &lockedAt, &lastRunAt, &parent,
		&r.ParentStep, &r.Awaiting, &r.Error, &r.Result, &r.CreatedAt, &r.UpdatedAt, &finishedAt)
	if err != nil {
		return nil, wrapErr(err)
	}
	r.State = storage.RunState(state)
	r.LockedAt = timePtr(lockedAt)
	r.LastRunAt = timePtr(lastRunAt)
	r.FinishedAt = timePtr(finishedAt)
	if parent.Valid {
		r.ParentRunID = parent.Bytes
	}
	return &r, nil
}

func collectRuns(rows pgx.Rows, err error) ([]*storage.Run, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*storage.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, wrapErr(rows.Err())
}
