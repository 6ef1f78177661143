package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Retention methods: sql/retention.sql. Each call is one write
// transaction (or part of the caller's).

// retentionStates returns the states of a retention map in a stable order.
func retentionStates[S ~string](m map[S]time.Duration) []S {
	states := make([]S, 0, len(m))
	for s := range m {
		states = append(states, s)
	}
	slices.Sort(states)
	return states
}

// nameList is list as a JSON array, "[]" for nil.
func nameList(list []string) any {
	if list == nil {
		return "[]"
	}
	return stringList(list)
}

func (e *executor) JobPruneByState(ctx context.Context, p storage.JobPruneByStateParams) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if len(p.Retention) == 0 {
		return 0, nil
	}
	var total int
	err := e.write(ctx, true, func(q wq) error {
		total = 0
		now := q.now()
		for _, s := range retentionStates(p.Retention) {
			if total >= p.Limit {
				break
			}
			n, err := q.execCount("JobPruneByState", string(s), now-p.Retention[s].Microseconds(), nameList(p.KeepQueues), p.Limit-total)
			if err != nil {
				return err
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune jobs: %w", err)
	}
	return total, nil
}

func (e *executor) RunPrune(ctx context.Context, p storage.RunPruneParams) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if len(p.Retention) == 0 {
		return 0, nil
	}
	var total int
	err := e.write(ctx, true, func(q wq) error {
		total = 0
		now := q.now()
		var ids [][]byte
		for _, s := range retentionStates(p.Retention) {
			if len(ids) >= p.Limit {
				break
			}
			rows, err := q.query("RunPruneCandidates", string(s), now-p.Retention[s].Microseconds(), nameList(p.KeepWorkflows), p.Limit-len(ids))
			if err != nil {
				return wrapErr(err)
			}
			for rows.Next() {
				var id []byte
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return wrapErr(err)
				}
				ids = append(ids, id)
			}
			if err := rows.Close(); err != nil {
				return wrapErr(err)
			}
			if err := rows.Err(); err != nil {
				return wrapErr(err)
			}
		}
		for _, id := range ids {
			if _, err := q.exec("RunDeleteJobs", id, 0, nameList(p.KeepJobQueues)); err != nil {
				return err
			}
			n, err := q.execCount("RunDeleteRow", id)
			if err != nil {
				return err
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune runs: %w", err)
	}
	return total, nil
}

func (e *executor) RunDelete(ctx context.Context, p storage.RunDeleteParams) (*acidic.Run, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var r *acidic.Run
	err := e.write(ctx, false, func(q wq) error {
		var err error
		r, err = scanRun(q.queryRow("RunGet", blobID(p.ID)))
		if err != nil {
			return err
		}
		reason, err := runDeleteBlocker(q, r, p.Except)
		if err != nil {
			return err
		}
		if reason != "" {
			return fmt.Errorf("%w: run %s: %s", acidic.ErrInUse, p.ID, storage.Text(reason))
		}
		if _, err := q.exec("RunDeleteJobs", blobID(p.ID), p.Except, nameList(p.KeepJobQueues)); err != nil {
			return err
		}
		_, err = q.exec("RunDeleteRow", blobID(p.ID))
		return err
	})
	if err != nil {
		if errors.Is(err, acidic.ErrInUse) {
			return nil, err
		}
		return nil, fmt.Errorf("delete run %s: %w", p.ID, err)
	}
	return r, nil
}

// runDeleteBlocker says why run r cannot be deleted, or "" when it can.
func runDeleteBlocker(q wq, r *acidic.Run, except int64) (string, error) {
	switch {
	case !r.State.Final():
		return "it is " + string(r.State), nil
	case r.SettledAt == nil:
		return "its finish is not settled yet (its OnFinish callback or its parent's count-off is owed)", nil
	}
	var (
		jobID       int64
		kind, state string
	)
	err := q.queryRow("RunDeleteBlockingJob", blobID(r.ID), except).Scan(&jobID, &kind, &state)
	if err == nil {
		return fmt.Sprintf("its job %d (%s) is %s", jobID, kind, state), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", wrapErr(err)
	}
	var id []byte
	err = q.queryRow("RunDeleteBlockingChild", blobID(r.ID)).Scan(&id, &state)
	if err == nil {
		c, err := uuidOf(id)
		if err != nil {
			return "", err
		}
		s := fmt.Sprintf("its child run %s is %s", c, state)
		if acidic.RunState(state).Final() {
			s += " and not settled yet"
		}
		return s, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", wrapErr(err)
	}
	if r.ParentRunID == [16]byte{} {
		return "", nil
	}
	err = q.queryRow("RunDeleteBlockingParent", blobID(r.ParentRunID)).Scan(&id, &state)
	if err == nil {
		return fmt.Sprintf("its parent run %s is %s and may still read it", r.ParentRunID, state), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", wrapErr(err)
	}
	return "", nil
}
