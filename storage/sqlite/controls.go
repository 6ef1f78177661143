package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Controls and storage.JobAges methods: sql/controls.sql,
// sql/jobages.sql, migration 0002.

var _ storage.Controls = (*Driver)(nil)

// QueuePause pauses or resumes a known queue; see storage.Controls.
func (e *executor) QueuePause(ctx context.Context, p storage.QueuePauseParams) (*acidic.QueueControl, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	verb := "resume"
	if p.Paused {
		verb = "pause"
	}
	return e.writeControl(ctx, verb, p.Queue, "QueuePause", p.Paused)
}

// QueueScale sets the workers per node of a known queue; see storage.Controls.
func (e *executor) QueueScale(ctx context.Context, p storage.QueueScaleParams) (*acidic.QueueControl, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var workers any
	if p.MaxWorkers > 0 {
		workers = p.MaxWorkers
	}
	return e.writeControl(ctx, "scale", p.Queue, "QueueScale", workers)
}

// writeControl runs a control's write on a known queue and notifies
// TopicQueues on commit.
func (e *executor) writeControl(ctx context.Context, verb, queue, query string, arg any) (*acidic.QueueControl, error) {
	var c *acidic.QueueControl
	err := e.write(ctx, false, func(q wq) error {
		var known bool
		if err := q.queryRow("QueueKnown", queue).Scan(&known); err != nil {
			return wrapErr(err)
		}
		if !known {
			return fmt.Errorf("%w %q: no node has registered it and it has no unfinished job", acidic.ErrUnknownQueue, queue)
		}
		got, err := readControls(q.query(query, queue, arg, q.now()))
		if err != nil {
			return err
		}
		c = got[0]
		q.notify(storage.TopicQueues, "")
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", verb, err)
	}
	return c, nil
}

// QueueControls returns the controls of known queues; see storage.Controls.
func (e *executor) QueueControls(ctx context.Context, p storage.QueueControlsParams) ([]*acidic.QueueControl, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var queues any // NULL reads every queue; an empty list none
	if p.Queues != nil {
		queues = stringList(append(make([]string, 0, len(p.Queues)), p.Queues...))
	}
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	got, err := readControls(r.query(ctx, "QueueControls", queues))
	if err != nil {
		return nil, fmt.Errorf("queue controls: %w", err)
	}
	return got, nil
}

// QueueRegister makes queues known; see storage.Controls.
func (e *executor) QueueRegister(ctx context.Context, p storage.QueueRegisterParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.Queues) == 0 {
		return nil
	}
	err := e.write(ctx, true, func(q wq) error {
		_, err := q.exec("QueueRegister", stringList(p.Queues), q.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("queue register: %w", err)
	}
	return nil
}

func readControls(rows rowset, err error) ([]*acidic.QueueControl, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.QueueControl
	for rows.Next() {
		var (
			c                acidic.QueueControl
			pausedAt         sql.NullInt64
			created, updated int64
		)
		if err := rows.Scan(&c.Queue, &c.Paused, &pausedAt, &c.MaxWorkers, &created, &updated); err != nil {
			return nil, wrapErr(err)
		}
		c.PausedAt, c.CreatedAt, c.UpdatedAt = nullTimeOf(pausedAt), timeOf(created), timeOf(updated)
		out = append(out, &c)
	}
	return out, wrapErr(rows.Err())
}

// JobQueueAges returns how long the jobs that could run now have waited;
// see storage.JobAges.
func (e *executor) JobQueueAges(ctx context.Context, _ storage.JobQueueAgesParams) ([]acidic.QueueAge, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	now := e.d.clk.now()
	rows, err := r.query(ctx, "JobQueueAges", now)
	if err != nil {
		return nil, fmt.Errorf("job queue ages: %w", wrapErr(err))
	}
	defer rows.Close()
	var out []acidic.QueueAge
	for rows.Next() {
		var a acidic.QueueAge
		var oldest int64
		if err := rows.Scan(&a.Queue, &a.Available, &oldest); err != nil {
			return nil, fmt.Errorf("job queue ages: %w", wrapErr(err))
		}
		a.OldestDueAt, a.OldestAge = timeOf(oldest), time.Duration(now-oldest)*time.Microsecond
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("job queue ages: %w", wrapErr(err))
	}
	return out, nil
}
