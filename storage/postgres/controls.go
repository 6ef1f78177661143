package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

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
	return e.writeControl(ctx, verb, p.Queue, "QueuePause", p.Queue, p.Paused, e.channelPrefix+storage.TopicQueues)
}

// QueueScale sets the workers per node of a known queue; see storage.Controls.
func (e *executor) QueueScale(ctx context.Context, p storage.QueueScaleParams) (*acidic.QueueControl, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	workers := pgtype.Int4{Int32: int32(p.MaxWorkers), Valid: p.MaxWorkers > 0}
	return e.writeControl(ctx, "scale", p.Queue, "QueueScale", p.Queue, workers, e.channelPrefix+storage.TopicQueues)
}

// writeControl runs a control's write, which returns no row when the queue
// is unknown.
func (e *executor) writeControl(ctx context.Context, verb, queue, query string, args ...any) (*acidic.QueueControl, error) {
	got, err := readControls(e.db.Query(ctx, e.q.Get(query), args...))
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", verb, err)
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("queue %s: %w %q: no node has registered it and it has no unfinished job", verb, acidic.ErrUnknownQueue, queue)
	}
	return got[0], nil
}

// QueueControls returns the controls of known queues; see storage.Controls.
func (e *executor) QueueControls(ctx context.Context, p storage.QueueControlsParams) ([]*acidic.QueueControl, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var queues []string // NULL reads every queue; an empty list none
	if p.Queues != nil {
		queues = append(make([]string, 0, len(p.Queues)), p.Queues...)
	}
	got, err := readControls(e.db.Query(ctx, e.q.Get("QueueControls"), queues))
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
	if _, err := e.db.Exec(ctx, e.q.Get("QueueRegister"), p.Queues); err != nil {
		return fmt.Errorf("queue register: %w", wrapErr(err))
	}
	return nil
}

func readControls(rows pgx.Rows, err error) ([]*acidic.QueueControl, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.QueueControl
	for rows.Next() {
		var (
			c        acidic.QueueControl
			pausedAt pgtype.Timestamptz
			workers  int32
		)
		if err := rows.Scan(&c.Queue, &c.Paused, &pausedAt, &workers, &c.CreatedAt, &c.UpdatedAt); err != nil {
			return nil, wrapErr(err)
		}
		c.PausedAt, c.MaxWorkers = timePtr(pausedAt), int(workers)
		out = append(out, &c)
	}
	return out, wrapErr(rows.Err())
}
