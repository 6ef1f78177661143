package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var _ storage.StepLogs = (*executor)(nil)

// StepLogInsert appends records to a step's logs, within the caps per step;
// see storage.StepLogs.
func (e *executor) StepLogInsert(ctx context.Context, p storage.StepLogInsertParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.Records) == 0 && p.Dropped == 0 {
		return nil
	}
	n := len(p.Records)
	attempts, bytes := make([]int32, n), make([]int32, n)
	times := make([]time.Time, n)
	levels, messages := make([]string, n), make([]string, n)
	attrs := make([]*string, n)
	for i, r := range p.Records {
		attempts[i], times[i], levels[i], messages[i] = int32(r.Attempt), r.Time, r.Level, r.Message
		bytes[i] = int32(storage.LogRecordSize(r))
		if len(r.Attrs) > 0 {
			s := string(r.Attrs)
			attrs[i] = &s
		}
	}
	_, err := e.db.Exec(ctx, e.q.Get("StepLogInsert"), runID(p.RunID), p.Position, attempts, times, levels, messages, attrs, bytes,
		p.Dropped, storage.MaxStepLogRecords, storage.MaxStepLogBytes)
	if err != nil {
		return fmt.Errorf("run %s step %d: keep logs: %w", p.RunID, p.Position, wrapErr(err))
	}
	return nil
}

// StepFailureInsert adds a failed attempt to a step's history; see
// storage.StepLogs.
func (e *executor) StepFailureInsert(ctx context.Context, p storage.StepFailureInsertParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	f := p.Failure
	_, err := e.db.Exec(ctx, e.q.Get("StepFailureInsert"), runID(p.RunID), p.Position, f.Attempt, storage.Text(f.Error),
		nullTimeParam(f.StartedAt), nullTimeParam(f.FailedAt), storage.MaxStepFailures)
	if err != nil {
		return fmt.Errorf("run %s step %d: keep failure: %w", p.RunID, p.Position, wrapErr(err))
	}
	return nil
}

// StepDetails returns the kept logs and failures of a run's steps; see
// storage.StepLogs.
func (e *executor) StepDetails(ctx context.Context, p storage.StepDetailsParams) ([]storage.StepDetail, error) {
	var out []storage.StepDetail
	at := func(pos int) *storage.StepDetail {
		if n := len(out); n > 0 && out[n-1].Position == pos {
			return &out[n-1]
		}
		for i := range out {
			if out[i].Position == pos {
				return &out[i]
			}
		}
		out = append(out, storage.StepDetail{Position: pos})
		return &out[len(out)-1]
	}
	rows, err := e.db.Query(ctx, e.q.Get("StepLogs"), runID(p.RunID))
	if err != nil {
		return nil, fmt.Errorf("run %s step logs: %w", p.RunID, wrapErr(err))
	}
	var marker *acidic.LogRecord
	markerPos := -1
	flush := func() {
		if marker != nil {
			d := at(markerPos)
			d.Logs = append(d.Logs, *marker)
			marker = nil
		}
	}
	for rows.Next() {
		var pos, seq, dropped int
		var r acidic.LogRecord
		if err := rows.Scan(&pos, &seq, &r.Attempt, &r.Time, &r.Level, &r.Message, &r.Attrs, &dropped); err != nil {
			rows.Close()
			return nil, wrapErr(err)
		}
		if pos != markerPos {
			flush()
		}
		d := at(pos)
		if seq == 0 {
			// The marker comes first in the order; it ends the step's logs.
			m := storage.DropMarker(dropped, r.Time)
			marker, markerPos, d.LogsDropped = &m, pos, dropped
			continue
		}
		d.Logs = append(d.Logs, r)
	}
	flush()
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrapErr(err)
	}
	rows, err = e.db.Query(ctx, e.q.Get("StepFailures"), runID(p.RunID))
	if err != nil {
		return nil, fmt.Errorf("run %s step failures: %w", p.RunID, wrapErr(err))
	}
	defer rows.Close()
	last := map[int]int{}
	for rows.Next() {
		var pos, seq int
		var f acidic.StepFailure
		if err := rows.Scan(&pos, &seq, &f.Attempt, &f.Error, &f.StartedAt, &f.FailedAt); err != nil {
			return nil, wrapErr(err)
		}
		d := at(pos)
		d.Failures = append(d.Failures, f)
		last[pos] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr(err)
	}
	for i := range out {
		if seq, ok := last[out[i].Position]; ok {
			out[i].FailuresDropped = seq - len(out[i].Failures)
		}
	}
	return out, nil
}

// nullTimeParam passes a zero time as NULL (the query then takes now()).
func nullTimeParam(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
