package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

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
	var run *acidic.Run
	var created bool
	err := e.write(ctx, false, func(q wq) error {
		// The key is looked up first: no other writer runs between the two
		// statements, so of concurrent inserts of one key the first creates
		// the run and the others find it.
		var err error
		run, err = scanRun(q.queryRow("RunGetByKey", r.IdempotencyKey))
		if err == nil || !isNotFound(err) {
			created = false
			return err
		}
		if _, err := scanRun(q.queryRow("RunGet", blobID(r.ID))); !isNotFound(err) {
			if err == nil {
				err = fmt.Errorf("%w: run id %s is taken by a run of another key", acidic.ErrConflict, r.ID)
			}
			return err
		}
		run, err = scanRun(q.queryRow("RunInsert", blobID(r.ID), r.IdempotencyKey, r.Workflow, string(r.Args),
			r.Queue, r.RecoveryPoint, r.DefinitionHash, blobID(r.ParentRunID), parentStep, q.now(), jsonParam(r.Attrs), tagsParam(r.Tags)))
		created = err == nil
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("insert run: %w", err)
	}
	return run, created, nil
}

func (e *executor) RunGet(ctx context.Context, p storage.RunGetParams) (*acidic.Run, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", p.ID, err)
	}
	run, err := scanRun(r.queryRow(ctx, "RunGet", blobID(p.ID)))
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", p.ID, err)
	}
	return run, nil
}

func (e *executor) RunGetByKey(ctx context.Context, p storage.RunGetByKeyParams) (*acidic.Run, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("get run by key %q: %w", p.Key, err)
	}
	run, err := scanRun(r.queryRow(ctx, "RunGetByKey", p.Key))
	if err != nil {
		return nil, fmt.Errorf("get run by key %q: %w", p.Key, err)
	}
	return run, nil
}

func (e *executor) RunList(ctx context.Context, f acidic.RunFilter) ([]*acidic.Run, error) {
	if err := storage.CheckTags(f.Tags); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	name := "RunList"
	switch {
	case f.ParentRunID != uuid.Nil:
		name = "RunListByParent"
	case f.Workflow != "":
		name = "RunListByWorkflow"
	}
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	after := f.AfterID
	runs, err := collectRuns(r.query(ctx, name, stringList(f.States), f.Workflow, blobID(f.ParentRunID),
		f.AfterCreatedAt.UnixMicro(), limit, after[:], f.ParentStep, tagsParam(f.Tags)))
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
	var run *acidic.Run
	var leased bool
	err := e.write(ctx, true, func(q wq) error {
		var err error
		run, err = scanRun(q.queryRow("RunLease", blobID(p.ID), p.Token, p.Job.ID, p.Job.Attempt, q.now()))
		leased = err == nil
		if isNotFound(err) {
			run, err = scanRun(q.queryRow("RunGet", blobID(p.ID)))
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("lease run %s: %w", p.ID, err)
	}
	return run, leased, nil
}

func (e *executor) RunEnd(ctx context.Context, p storage.RunEndParams) (*acidic.Run, bool, error) {
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	var run *acidic.Run
	var ended bool
	err := e.write(ctx, false, func(q wq) error {
		ended = false
		// The write lock is the run's lock: no other job's end runs
		// between this read and the update.
		locked, err := scanRun(q.queryRow("RunGet", blobID(p.ID)))
		if err != nil {
			return err
		}
		run = locked
		if !locked.State.Live() || locked.Workflow != p.Kind {
			return nil
		}
		r, err := scanRun(q.queryRow("RunEnd", blobID(p.ID), p.Job, string(p.State), storage.Text(p.Error), p.Kind, q.now()))
		if isNotFound(err) {
			return nil // another job carries it on
		}
		if err != nil {
			return err
		}
		run, ended = r, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("end run %s: %w", p.ID, err)
	}
	return run, ended, nil
}

func (e *executor) RunSettle(ctx context.Context, p storage.RunSettleParams) (*acidic.Run, bool, error) {
	var run *acidic.Run
	err := e.write(ctx, false, func(q wq) error {
		var err error
		run, err = scanRun(q.queryRow("RunSettle", blobID(p.ID), q.now()))
		if isNotFound(err) {
			run, err = nil, nil // not finished, already settled, or no such run
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("settle run %s: %w", p.ID, err)
	}
	return run, run != nil, nil
}

// logStep writes a step's entry in the log.
func logStep(q wq, id uuid.UUID, s *acidic.Step, now int64) error {
	_, err := q.exec("StepLog", blobID(id), s.Position, s.Name, string(s.State), s.Attempt,
		jsonParam(s.Result), storage.Text(s.Error), s.StartedAt.UnixMicro(), now)
	return err
}

func (e *executor) RunUpdate(ctx context.Context, u storage.RunUpdateParams) (*acidic.Run, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	attrs := string(u.Attrs)
	if attrs == "" {
		attrs = "null"
	}
	var run *acidic.Run
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		var err error
		run, err = scanRun(q.queryRow("RunUpdate", blobID(u.ID), u.Token, string(u.State), u.RecoveryPoint,
			attrs, u.Cursor, u.Awaiting, u.Release, storage.Text(u.Error), jsonParam(u.Result), now, u.Settle))
		if isNotFound(err) {
			return fmt.Errorf("%w: run %s is not leased with this token (another worker or an operator took it over)", acidic.ErrLeaseLost, u.ID)
		}
		if err != nil || u.Step == nil {
			return err
		}
		return logStep(q, u.ID, u.Step, now)
	})
	if err != nil {
		return nil, fmt.Errorf("update run %s: %w", u.ID, err)
	}
	return run, nil
}

func (e *executor) RunRelease(ctx context.Context, rr storage.RunReleaseParams) (*acidic.Run, error) {
	if err := rr.Validate(); err != nil {
		return nil, err
	}
	var run *acidic.Run
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		var err error
		run, err = scanRun(q.queryRow("RunRelease", blobID(rr.ID), rr.Token, string(rr.State), storage.Text(rr.Error), nil, now))
		if isNotFound(err) {
			return acidic.ErrLeaseLost
		}
		if err != nil || rr.Step == nil {
			return err
		}
		s := rr.Step
		_, err = q.exec("StepLogFailure", blobID(rr.ID), s.Position, s.Name, string(s.State), s.Attempt,
			storage.Text(s.Error), s.StartedAt.UnixMicro(), now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release run %s: %w", rr.ID, err)
	}
	return run, nil
}

func (e *executor) RunSetState(ctx context.Context, p storage.RunSetStateParams) (*acidic.Run, bool, error) {
	if err := storage.CheckRunState(p.ID, p.To); err != nil {
		return nil, false, err
	}
	from := stringList(p.From)
	if from == nil {
		from = "[]"
	}
	var run *acidic.Run
	var changed bool
	err := e.write(ctx, false, func(q wq) error {
		var err error
		run, err = scanRun(q.queryRow("RunSetState", blobID(p.ID), from, string(p.To), storage.Text(p.Error), nil, q.now()))
		changed = err == nil
		if isNotFound(err) {
			run, err = scanRun(q.queryRow("RunGet", blobID(p.ID)))
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("set run %s %s: %w", p.ID, p.To, err)
	}
	return run, changed, nil
}

func (e *executor) RunSteps(ctx context.Context, p storage.RunStepsParams) ([]acidic.Step, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("run %s steps: %w", p.ID, err)
	}
	rows, err := r.query(ctx, "RunSteps", blobID(p.ID))
	if err != nil {
		return nil, fmt.Errorf("run %s steps: %w", p.ID, wrapErr(err))
	}
	defer rows.Close()
	var out []acidic.Step
	for rows.Next() {
		var (
			s                 acidic.Step
			runID             []byte
			state             string
			started, finished int64
			result            []byte
		)
		if err := rows.Scan(&runID, &s.Position, &s.Name, &state, &s.Attempt, &s.Executions, &result, &s.Error,
			&started, &finished); err != nil {
			return nil, wrapErr(err)
		}
		if s.RunID, err = uuidOf(runID); err != nil {
			return nil, err
		}
		s.Result = result
		s.State = acidic.StepState(state)
		s.StartedAt, s.FinishedAt = timeOf(started), timeOf(finished)
		out = append(out, s)
	}
	return out, wrapErr(rows.Err())
}

func (e *executor) RunChildFinished(ctx context.Context, p storage.RunChildFinishedParams) (*acidic.Run, bool, error) {
	var parent *acidic.Run
	err := e.write(ctx, false, func(q wq) error {
		parent = nil
		now := q.now()
		var parentID []byte
		var step string
		err := q.queryRow("RunCountChild", blobID(p.ChildID), now).Scan(&parentID, &step)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // counted before, or not a child
		}
		if err != nil {
			return wrapErr(err)
		}
		r, err := scanRun(q.queryRow("RunCountOffParent", parentID, now))
		if isNotFound(err) {
			return nil // the parent no longer awaits
		}
		if err != nil {
			return err
		}
		parent = r
		if r.State == acidic.RunPending {
			_, err = q.exec("RunAwaitDone", parentID, step, now)
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("run %s: count off its parent: %w", p.ChildID, err)
	}
	return parent, parent != nil, nil
}
