package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.JobAges method: sql/jobages.sql.

func (e *executor) JobQueueAges(ctx context.Context, _ storage.JobQueueAgesParams) ([]acidic.QueueAge, error) {
	rows, err := e.db.Query(ctx, e.q.Get("JobQueueAges"))
	if err != nil {
		return nil, fmt.Errorf("job queue ages: %w", wrapErr(err))
	}
	defer rows.Close()
	var out []acidic.QueueAge
	for rows.Next() {
		var a acidic.QueueAge
		var oldest pgtype.Timestamptz
		var age int64
		if err := rows.Scan(&a.Queue, &a.Available, &oldest, &age); err != nil {
			return nil, fmt.Errorf("job queue ages: %w", wrapErr(err))
		}
		a.OldestDueAt, a.OldestAge = oldest.Time, time.Duration(age)*time.Microsecond
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("job queue ages: %w", wrapErr(err))
	}
	return out, nil
}
