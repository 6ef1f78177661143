package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.StepLogs methods: sql/steplogs.sql, migration 0003. The caps
// per step are applied here, reading the step's count and bytes first: no
// other writer runs between the read and the inserts.

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
	err := e.write(ctx, false, func(q wq) error {
		var n, total int64
		var capped bool
		if err := q.queryRow("StepLogState", blobID(p.RunID), p.Position).Scan(&n, &total, &capped); err != nil {
			return wrapErr(err)
		}
		dropped := p.Dropped
		for i, r := range p.Records {
			size := int64(storage.LogRecordSize(r))
			seq := n + int64(i) + 1
			total += size
			if capped || seq > storage.MaxStepLogRecords || total > storage.MaxStepLogBytes {
				dropped++
				continue
			}
			if _, err := q.exec("StepLogInsert", blobID(p.RunID), p.Position, seq, r.Attempt, r.Time.UnixMicro(),
				r.Level, r.Message, jsonParam(r.Attrs), size); err != nil {
				return err
			}
		}
		if dropped > 0 {
			if _, err := q.exec("StepLogDropped", blobID(p.RunID), p.Position, dropped, q.now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("run %s step %d: keep logs: %w", p.RunID, p.Position, err)
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
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		started, failed := now, now
		if !f.StartedAt.IsZero() {
			started = f.StartedAt.UnixMicro()
		}
		if !f.FailedAt.IsZero() {
			failed = f.FailedAt.UnixMicro()
		}
		var seq int64
		if err := q.queryRow("StepFailureInsert", blobID(p.RunID), p.Position, f.Attempt, storage.Text(f.Error), started, failed).Scan(&seq); err != nil {
			return wrapErr(err)
		}
		_, err := q.exec("StepFailureForget", blobID(p.RunID), p.Position, seq-int64(storage.MaxStepFailures))
		return err
	})
	if err != nil {
		return fmt.Errorf("run %s step %d: keep failure: %w", p.RunID, p.Position, err)
	}
	return nil
}

// StepDetails returns the kept logs and failures of a run's steps; see
// storage.StepLogs.
func (e *executor) StepDetails(ctx context.Context, p storage.StepDetailsParams) ([]storage.StepDetail, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	var out []storage.StepDetail
	at := func(pos int) *storage.StepDetail {
		for i := range out {
			if out[i].Position == pos {
				return &out[i]
			}
		}
		out = append(out, storage.StepDetail{Position: pos})
		return &out[len(out)-1]
	}
	rows, err := r.query(ctx, "StepLogs", blobID(p.RunID))
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
		var (
			pos, seq, dropped int
			rec               acidic.LogRecord
			atUS              int64
			attrs             sql.NullString
		)
		if err := rows.Scan(&pos, &seq, &rec.Attempt, &atUS, &rec.Level, &rec.Message, &attrs, &dropped); err != nil {
			rows.Close()
			return nil, wrapErr(err)
		}
		rec.Time = timeOf(atUS)
		if attrs.Valid {
			rec.Attrs = []byte(attrs.String)
		}
		if pos != markerPos {
			flush()
		}
		d := at(pos)
		if seq == 0 {
			// The marker comes first in the order; it ends the step's logs.
			m := storage.DropMarker(dropped, rec.Time)
			marker, markerPos, d.LogsDropped = &m, pos, dropped
			continue
		}
		d.Logs = append(d.Logs, rec)
	}
	flush()
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrapErr(err)
	}
	rows, err = r.query(ctx, "StepFailures", blobID(p.RunID))
	if err != nil {
		return nil, fmt.Errorf("run %s step failures: %w", p.RunID, wrapErr(err))
	}
	defer rows.Close()
	last := map[int]int{}
	for rows.Next() {
		var (
			pos, seq         int
			f                acidic.StepFailure
			started, failedA int64
		)
		if err := rows.Scan(&pos, &seq, &f.Attempt, &f.Error, &started, &failedA); err != nil {
			return nil, wrapErr(err)
		}
		f.StartedAt, f.FailedAt = timeOf(started), timeOf(failedA)
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
