package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func isNotFound(err error) bool { return errors.Is(err, acidic.ErrNotFound) }

func (e *executor) RunInsert(ctx context.Context, r storage.RunInsertParams) (*acidic.Run, bool, error) {
	if err := r.Validate(); err != nil {
		return nil, false, err
	}
	var parentStep any
	if r.ParentStep != "" {
		parentStep = r.ParentStep
	}
	var attrs any
	if len(r.Attrs) > 0 {
		attrs = string(r.Attrs)
	}
	run, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunInsert"), runID(r.ID), r.IdempotencyKey, r.Workflow, string(r.Args),
		r.Queue, r.RecoveryPoint, r.DefinitionHash, nullUUID(r.ParentRunID), parentStep, attrs, tagsParam(r.Tags)))
	if err == nil {
		return run, true, nil
	}
	if !isNotFound(err) {
		return nil, false, fmt.Errorf("insert run: %w", err)
	}
	// The key or the id exists: ON CONFLICT waited for its inserter to
	// commit, so the row is visible to this next statement.
	run, err = e.RunGetByKey(ctx, storage.RunGetByKeyParams{Key: r.IdempotencyKey})
	if errors.Is(err, acidic.ErrNotFound) {
		// Not the key: the id belongs to a run of another key.
		return nil, false, fmt.Errorf("insert run: %w: run id %s is taken by a run of another key", acidic.ErrConflict, r.ID)
	}
	if err != nil {
		return nil, false, err
	}
	return run, false, nil
}

func (e *executor) RunGet(ctx context.Context, p storage.RunGetParams) (*acidic.Run, error) {
	id := p.ID
	r, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunGet"), runID(id)))
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

func (e *executor) RunGetByKey(ctx context.Context, p storage.RunGetByKeyParams) (*acidic.Run, error) {
	key := p.Key
	r, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunGetByKey"), key))
	if err != nil {
		return nil, fmt.Errorf("get run by key %q: %w", key, err)
	}
	return r, nil
}

func (e *executor) RunList(ctx context.Context, f acidic.RunFilter) ([]*acidic.Run, error) {
	if err := storage.CheckTags(f.Tags); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var states []string
	for _, s := range f.States {
		states = append(states, string(s))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	runs, err := collectRuns(e.db.Query(ctx, e.q.Get("RunList"), states, f.Workflow, nullUUID(f.ParentRunID), f.AfterCreatedAt, limit, f.AfterID, f.ParentStep, tagsParam(f.Tags)))
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

func (e *executor) RunLease(ctx context.Context, p storage.RunLeaseParams) (*acidic.Run, bool, error) {
	if p.Job.ID <= 0 || p.Job.Attempt <= 0 || p.Token == "" {
		return nil, false, fmt.Errorf("lease run %s: %w: a lease needs a token and the job attempt taking it (job %d attempt %d)",
			p.ID, acidic.ErrInvalid, p.Job.ID, p.Job.Attempt)
	}
	var leased *acidic.Run
	err := e.bookkeeping(ctx, e.q.Get("RunLease"), []any{runID(p.ID), p.Token, p.Job.ID, p.Job.Attempt},
		func(rows pgx.Rows) error {
			if rows.Next() {
				var err error
				leased, err = scanRun(rows)
				return err
			}
			return nil
		})
	if err != nil {
		return nil, false, fmt.Errorf("lease run %s: %w", p.ID, err)
	}
	if leased != nil {
		return leased, true, nil
	}
	r, err := e.RunGet(ctx, storage.RunGetParams{ID: p.ID})
	if err != nil {
		return nil, false, err
	}
	return r, false, nil
}

func (e *executor) RunEnd(ctx context.Context, p storage.RunEndParams) (*acidic.Run, bool, error) {
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	locked, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunLock"), runID(p.ID)))
	if err != nil {
		return nil, false, fmt.Errorf("end run %s: %w", p.ID, err)
	}
	if !locked.State.Live() || locked.Workflow != p.Kind {
		return locked, false, nil
	}
	r, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunEnd"), runID(p.ID), p.Job, string(p.State), storage.Text(p.Error), p.Kind))
	if isNotFound(err) {
		return locked, false, nil // another job carries it on
	}
	if err != nil {
		return nil, false, fmt.Errorf("end run %s: %w", p.ID, err)
	}
	return r, true, nil
}

func (e *executor) RunSettle(ctx context.Context, p storage.RunSettleParams) (*acidic.Run, bool, error) {
	id := p.ID
	r, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunSettle"), runID(id)))
	switch {
	case err == nil:
		return r, true, nil
	case isNotFound(err):
		return nil, false, nil // not finished, already settled, or no such run
	default:
		return nil, false, fmt.Errorf("settle run %s: %w", id, err)
	}
}

func (e *executor) RunUpdate(ctx context.Context, u storage.RunUpdateParams) (*acidic.Run, error) {
	sql, args, err := e.runUpdateStatement(u)
	if err != nil {
		return nil, err
	}
	r, err := scanRun(e.db.QueryRow(ctx, sql, args...))
	if err != nil {
		return nil, runUpdateErr(u, err)
	}
	return r, nil
}

// runUpdateStatement is the RunUpdate query with its arguments. It fails
// with SQLSTATE leaseLostCode when the lease check does not pass, so that a
// COMMIT pipelined behind it does not commit.
func (e *executor) runUpdateStatement(u storage.RunUpdateParams) (string, []any, error) {
	if err := u.Validate(); err != nil {
		return "", nil, err
	}
	attrs := u.Attrs
	if len(attrs) == 0 {
		attrs = []byte("null")
	}
	s := stepArgsOf(u.Step)
	return e.q.Get("RunUpdate"), []any{runID(u.ID), u.Token, string(u.State), u.RecoveryPoint,
		string(attrs), u.Cursor, u.Awaiting, u.Release, storage.Text(u.Error), jsonParam(u.Result),
		s.pos, s.name, s.state, s.attempt, s.result, s.err, s.startedAt, u.Settle}, nil
}

// stepArgs are the query arguments of a step log entry: all NULL without
// one, which the queries read as "log nothing".
type stepArgs struct{ pos, name, state, attempt, result, err, startedAt any }

func stepArgsOf(s *acidic.Step) stepArgs {
	if s == nil {
		return stepArgs{}
	}
	return stepArgs{s.Position, s.Name, string(s.State), s.Attempt, jsonParam(s.Result), storage.Text(s.Error), s.StartedAt}
}

func runUpdateErr(u storage.RunUpdateParams, err error) error {
	return fmt.Errorf("update run %s: %w", u.ID, wrapErr(err))
}

func (e *executor) RunRelease(ctx context.Context, rr storage.RunReleaseParams) (*acidic.Run, error) {
	if err := rr.Validate(); err != nil {
		return nil, err
	}
	s := stepArgsOf(rr.Step)
	r, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunRelease"), runID(rr.ID), rr.Token, string(rr.State), storage.Text(rr.Error),
		s.pos, s.name, s.state, s.attempt, s.err, s.startedAt))
	if isNotFound(err) {
		return nil, fmt.Errorf("release run %s: %w", rr.ID, acidic.ErrLeaseLost)
	}
	if err != nil {
		return nil, fmt.Errorf("release run %s: %w", rr.ID, err)
	}
	return r, nil
}

func (e *executor) RunSetState(ctx context.Context, p storage.RunSetStateParams) (*acidic.Run, bool, error) {
	id, from, to, errText := p.ID, p.From, p.To, p.Error
	if err := storage.CheckRunState(id, to); err != nil {
		return nil, false, err
	}
	states := make([]string, len(from))
	for i, s := range from {
		states[i] = string(s)
	}
	r, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunSetState"), runID(id), states, string(to), storage.Text(errText)))
	if err == nil {
		return r, true, nil
	}
	if !isNotFound(err) {
		return nil, false, fmt.Errorf("set run %s %s: %w", id, to, err)
	}
	r, err = e.RunGet(ctx, storage.RunGetParams{ID: id})
	if err != nil {
		return nil, false, err
	}
	return r, false, nil
}

func (e *executor) RunSteps(ctx context.Context, p storage.RunStepsParams) ([]acidic.Step, error) {
	id := p.ID
	rows, err := e.db.Query(ctx, e.q.Get("RunSteps"), runID(id))
	if err != nil {
		return nil, fmt.Errorf("run %s steps: %w", id, wrapErr(err))
	}
	defer rows.Close()
	var out []acidic.Step
	for rows.Next() {
		var s acidic.Step
		var state string
		if err := rows.Scan(&s.RunID, &s.Position, &s.Name, &state, &s.Attempt, &s.Executions, &s.Result, &s.Error,
			&s.StartedAt, &s.FinishedAt); err != nil {
			return nil, wrapErr(err)
		}
		s.State = acidic.StepState(state)
		out = append(out, s)
	}
	return out, wrapErr(rows.Err())
}

func (e *executor) RunChildFinished(ctx context.Context, p storage.RunChildFinishedParams) (*acidic.Run, bool, error) {
	childID := p.ChildID
	r, err := scanRun(e.db.QueryRow(ctx, e.q.Get("RunChildFinished"), runID(childID)))
	if isNotFound(err) {
		return nil, false, nil // not awaiting: nothing to count
	}
	if err != nil {
		return nil, false, fmt.Errorf("run %s: count off its parent: %w", childID, err)
	}
	return r, true, nil
}

// runID passes a run id in binary; a uuid.UUID would go through its text
// form (driver.Valuer) and back.
func runID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }
