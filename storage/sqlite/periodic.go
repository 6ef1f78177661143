package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.PeriodicExecutor methods: sql/periodic.sql, migration 0002.
// PeriodicDue takes no row locks: the transaction it runs in holds the
// store's one write lock, so no other pass reads the rows until it ends.

func (e *executor) PeriodicRegister(ctx context.Context, p storage.PeriodicRegisterParams) ([]*acidic.Periodic, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(p.Schedules) == 0 {
		return nil, nil
	}
	var out []*acidic.Periodic
	err := e.write(ctx, false, func(q wq) error {
		out = out[:0]
		now := q.now()
		for _, s := range p.Schedules {
			ps, err := scanPeriodic(q.queryRow("PeriodicRegister", s.Name, s.Kind, s.Spec, s.TimeZone, string(s.Missed),
				s.NextRunAt.UnixMicro(), now))
			if isNotFound(err) {
				continue // stored exactly as given
			}
			if err != nil {
				return err
			}
			out = append(out, ps)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("periodic register: %w", err)
	}
	sortPeriodic(out)
	return out, nil
}

func sortPeriodic(ps []*acidic.Periodic) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Name < ps[j-1].Name; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func (e *executor) PeriodicList(ctx context.Context, p storage.PeriodicListParams) ([]*acidic.Periodic, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	var names any
	if len(p.Names) > 0 {
		names = stringList(p.Names)
	}
	out, err := collectPeriodic(r.query(ctx, "PeriodicList", names))
	if err != nil {
		return nil, fmt.Errorf("periodic list: %w", err)
	}
	return out, nil
}

func (e *executor) PeriodicDue(ctx context.Context, p storage.PeriodicDueParams) ([]*acidic.Periodic, error) {
	if len(p.Names) == 0 {
		return nil, nil
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 1
	}
	if err := storage.CheckTime("Now", p.Now); err != nil {
		return nil, fmt.Errorf("periodic due: %w", err)
	}
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	out, err := collectPeriodic(r.query(ctx, "PeriodicDue", stringList(p.Names), p.Now.UnixMicro(), limit))
	if err != nil {
		return nil, fmt.Errorf("periodic due: %w", err)
	}
	return out, nil
}

func (e *executor) PeriodicAdvance(ctx context.Context, p storage.PeriodicAdvanceParams) (*acidic.Periodic, bool, error) {
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	var last any
	if p.LastRunAt != nil {
		last = p.LastRunAt.UnixMicro()
	}
	var (
		s        *acidic.Periodic
		advanced bool
	)
	err := e.write(ctx, false, func(q wq) error {
		n, err := q.execCount("PeriodicAdvance", p.Name, p.From.UnixMicro(), p.NextRunAt.UnixMicro(), last, q.now())
		if err != nil {
			return err
		}
		advanced = n > 0
		s, err = scanPeriodic(q.queryRow("PeriodicGet", p.Name))
		if isNotFound(err) {
			s, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("periodic advance: %w", err)
	}
	return s, advanced, nil
}

func scanPeriodic(r row) (*acidic.Periodic, error) {
	var (
		s             acidic.Periodic
		policy        string
		last          sql.NullInt64
		next, updated int64
	)
	if err := r.Scan(&s.Name, &s.Kind, &s.Spec, &s.TimeZone, &policy, &last, &next, &updated); err != nil {
		return nil, wrapErr(err)
	}
	s.Missed, s.LastRunAt = acidic.MissedPolicy(policy), nullTimeOf(last)
	s.NextRunAt, s.UpdatedAt = timeOf(next), timeOf(updated)
	return &s, nil
}

func collectPeriodic(rows rowset, err error) ([]*acidic.Periodic, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.Periodic
	for rows.Next() {
		s, err := scanPeriodic(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, wrapErr(rows.Err())
}
