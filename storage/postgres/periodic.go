package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func (e *executor) PeriodicRegister(ctx context.Context, p storage.PeriodicRegisterParams) ([]*acidic.Periodic, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(p.Schedules) == 0 {
		return nil, nil
	}
	n := len(p.Schedules)
	names, kinds, specs, zones, policies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	next := make([]pgtype.Timestamptz, n)
	for i, s := range p.Schedules {
		names[i], kinds[i], specs[i], zones[i], policies[i] = s.Name, s.Kind, s.Spec, s.TimeZone, string(s.Missed)
		next[i] = nullTime(s.NextRunAt)
	}
	rows, err := collectPeriodic(e.db.Query(ctx, e.q.Get("PeriodicRegister"), names, kinds, specs, zones, policies, next))
	if err != nil {
		return nil, fmt.Errorf("periodic register: %w", err)
	}
	return rows, nil
}

func (e *executor) PeriodicList(ctx context.Context, p storage.PeriodicListParams) ([]*acidic.Periodic, error) {
	names := p.Names
	if names == nil {
		names = []string{}
	}
	rows, err := collectPeriodic(e.db.Query(ctx, e.q.Get("PeriodicList"), names))
	if err != nil {
		return nil, fmt.Errorf("periodic list: %w", err)
	}
	return rows, nil
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
	rows, err := collectPeriodic(e.db.Query(ctx, e.q.Get("PeriodicDue"), p.Names, p.Now, limit))
	if err != nil {
		return nil, fmt.Errorf("periodic due: %w", err)
	}
	return rows, nil
}

func (e *executor) PeriodicAdvance(ctx context.Context, p storage.PeriodicAdvanceParams) (*acidic.Periodic, bool, error) {
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	var last pgtype.Timestamptz
	if p.LastRunAt != nil {
		last = nullTime(*p.LastRunAt)
	}
	var advanced bool
	s, err := scanPeriodicWith(e.db.QueryRow(ctx, e.q.Get("PeriodicAdvance"), p.Name, p.From, p.NextRunAt, last), &advanced)
	if err != nil {
		if isNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("periodic advance: %w", err)
	}
	return s, advanced, nil
}

func scanPeriodicWith(row pgx.Row, extra ...any) (*acidic.Periodic, error) {
	var (
		s      acidic.Periodic
		policy string
		last   pgtype.Timestamptz
	)
	dest := append([]any{&s.Name, &s.Kind, &s.Spec, &s.TimeZone, &policy, &last, &s.NextRunAt, &s.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, wrapErr(err)
	}
	s.Missed, s.LastRunAt = acidic.MissedPolicy(policy), timePtr(last)
	return &s, nil
}

func collectPeriodic(rows pgx.Rows, err error) ([]*acidic.Periodic, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.Periodic
	for rows.Next() {
		s, err := scanPeriodicWith(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, wrapErr(rows.Err())
}
