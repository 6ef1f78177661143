package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Nodes methods: sql/nodes.sql, tables of migration 0010.

func (e *executor) LeaderElect(ctx context.Context, p storage.LeaderElectParams) (*acidic.Leader, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	l, err := scanLeader(e.db.QueryRow(ctx, e.q.Get("LeaderElect"), p.NodeID, p.TTL.Microseconds()))
	if errors.Is(err, acidic.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("leader elect %s: %w", p.NodeID, err)
	}
	return l, nil
}

func (e *executor) LeaderResign(ctx context.Context, p storage.LeaderResignParams) (bool, error) {
	var n int64
	if err := e.db.QueryRow(ctx, e.q.Get("LeaderResign"), p.NodeID, e.channelPrefix+storage.TopicLeader).Scan(&n); err != nil {
		return false, fmt.Errorf("leader resign %s: %w", p.NodeID, wrapErr(err))
	}
	return n > 0, nil
}

func (e *executor) LeaderGet(ctx context.Context, _ storage.LeaderGetParams) (*acidic.Leader, error) {
	l, err := scanLeader(e.db.QueryRow(ctx, e.q.Get("LeaderGet")))
	if err != nil {
		return nil, fmt.Errorf("leader get: %w", err)
	}
	return l, nil
}

func scanLeader(row pgx.Row) (*acidic.Leader, error) {
	var l acidic.Leader
	var left int64
	if err := row.Scan(&l.NodeID, &l.ElectedAt, &l.ExpiresAt, &left); err != nil {
		return nil, wrapErr(err)
	}
	l.ExpiresIn = time.Duration(left) * time.Microsecond
	return &l, nil
}

// nodeQueueJSON is one element of nodes.queues.
type nodeQueueJSON struct {
	Queue      string `json:"queue"`
	MaxWorkers int    `json:"max_workers"`
	Busy       int    `json:"busy"`
}

func (e *executor) NodeRecord(ctx context.Context, p storage.NodeRecordParams) (*acidic.Node, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	queues := make([]nodeQueueJSON, len(p.Queues))
	for i, q := range p.Queues {
		queues[i] = nodeQueueJSON(q)
	}
	doc, err := json.Marshal(queues)
	if err != nil {
		return nil, fmt.Errorf("node record %s: %w", p.ID, err)
	}
	n, err := scanNode(e.db.QueryRow(ctx, e.q.Get("NodeRecord"),
		p.ID, p.Hostname, int32(p.PID), p.Version, string(doc), nullTime(p.StartedAt), p.TTL.Microseconds()))
	if err != nil {
		return nil, fmt.Errorf("node record %s: %w", p.ID, err)
	}
	return n, nil
}

func (e *executor) NodeDelete(ctx context.Context, p storage.NodeDeleteParams) (bool, error) {
	tag, err := e.db.Exec(ctx, e.q.Get("NodeDelete"), p.ID)
	if err != nil {
		return false, fmt.Errorf("node delete %s: %w", p.ID, wrapErr(err))
	}
	return tag.RowsAffected() > 0, nil
}

func (e *executor) NodeList(ctx context.Context, _ storage.NodeListParams) ([]*acidic.Node, error) {
	rows, err := e.db.Query(ctx, e.q.Get("NodeList"))
	if err != nil {
		return nil, fmt.Errorf("node list: %w", wrapErr(err))
	}
	defer rows.Close()
	var out []*acidic.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("node list: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("node list: %w", wrapErr(err))
	}
	return out, nil
}

func (e *executor) NodePrune(ctx context.Context, p storage.NodePruneParams) (int, error) {
	if p.Limit < 1 {
		return 0, fmt.Errorf("%w: node prune: limit %d is under 1", acidic.ErrInvalid, p.Limit)
	}
	tag, err := e.db.Exec(ctx, e.q.Get("NodePrune"), p.Limit)
	if err != nil {
		return 0, fmt.Errorf("node prune: %w", wrapErr(err))
	}
	return int(tag.RowsAffected()), nil
}

func scanNode(row pgx.Row) (*acidic.Node, error) {
	var (
		n      acidic.Node
		pid    int32
		queues []byte
		left   int64
	)
	if err := row.Scan(&n.ID, &n.Hostname, &pid, &n.Version, &queues, &n.StartedAt, &n.HeartbeatAt, &n.ExpiresAt, &left); err != nil {
		return nil, wrapErr(err)
	}
	n.PID, n.ExpiresIn = int(pid), time.Duration(left)*time.Microsecond
	var qs []nodeQueueJSON
	if err := json.Unmarshal(queues, &qs); err != nil {
		return nil, fmt.Errorf("node %s: queues %s: %w", n.ID, queues, err)
	}
	n.Queues = make([]acidic.NodeQueue, len(qs))
	for i, q := range qs {
		n.Queues[i] = acidic.NodeQueue(q)
	}
	return &n, nil
}
