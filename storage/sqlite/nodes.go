package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Nodes methods: sql/nodes.sql, tables of migration 0002. The
// store's clock is the driver's (clock.go); with one writer, the election
// needs no fallback read of another transaction's row.

func (e *executor) LeaderElect(ctx context.Context, p storage.LeaderElectParams) (*acidic.Leader, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var l *acidic.Leader
	err := e.write(ctx, true, func(q wq) error {
		now := q.now()
		if _, err := q.exec("LeaderElect", p.NodeID, now, now+p.TTL.Microseconds()); err != nil {
			return err
		}
		var err error
		l, err = scanLeader(q.queryRow("LeaderGet"), now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("leader elect %s: %w", p.NodeID, err)
	}
	return l, nil
}

func (e *executor) LeaderResign(ctx context.Context, p storage.LeaderResignParams) (bool, error) {
	var n int64
	err := e.write(ctx, true, func(q wq) error {
		res, err := q.exec("LeaderResign", p.NodeID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err == nil && n > 0 {
			q.notify(storage.TopicLeader, "")
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("leader resign %s: %w", p.NodeID, err)
	}
	return n > 0, nil
}

func (e *executor) LeaderGet(ctx context.Context, _ storage.LeaderGetParams) (*acidic.Leader, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	l, err := scanLeader(r.queryRow(ctx, "LeaderGet"), e.d.clk.now())
	if err != nil {
		return nil, fmt.Errorf("leader get: %w", err)
	}
	return l, nil
}

func scanLeader(r row, now int64) (*acidic.Leader, error) {
	var l acidic.Leader
	var elected, expires int64
	if err := r.Scan(&l.NodeID, &elected, &expires); err != nil {
		return nil, wrapErr(err)
	}
	l.ElectedAt, l.ExpiresAt = timeOf(elected), timeOf(expires)
	l.ExpiresIn = time.Duration(expires-now) * time.Microsecond
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
	var n *acidic.Node
	err = e.write(ctx, true, func(q wq) error {
		now := q.now()
		var err error
		n, err = scanNode(q.queryRow("NodeRecord", p.ID, p.Hostname, p.PID, p.Version, string(doc),
			micros(p.StartedAt), now, now+p.TTL.Microseconds()), now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node record %s: %w", p.ID, err)
	}
	return n, nil
}

func (e *executor) NodeDelete(ctx context.Context, p storage.NodeDeleteParams) (bool, error) {
	var n int64
	err := e.write(ctx, true, func(q wq) error {
		var err error
		n, err = q.execCount("NodeDelete", p.ID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("node delete %s: %w", p.ID, err)
	}
	return n > 0, nil
}

func (e *executor) NodeList(ctx context.Context, _ storage.NodeListParams) ([]*acidic.Node, error) {
	r, err := e.reader(ctx)
	if err != nil {
		return nil, err
	}
	now := e.d.clk.now()
	rows, err := r.query(ctx, "NodeList")
	if err != nil {
		return nil, fmt.Errorf("node list: %w", wrapErr(err))
	}
	defer rows.Close()
	var out []*acidic.Node
	for rows.Next() {
		n, err := scanNode(rows, now)
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
	var n int64
	err := e.write(ctx, true, func(q wq) error {
		var err error
		n, err = q.execCount("NodePrune", q.now(), p.Limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("node prune: %w", err)
	}
	return int(n), nil
}

func scanNode(r row, now int64) (*acidic.Node, error) {
	var (
		n                      acidic.Node
		queues                 string
		started, beat, expires int64
	)
	if err := r.Scan(&n.ID, &n.Hostname, &n.PID, &n.Version, &queues, &started, &beat, &expires); err != nil {
		return nil, wrapErr(err)
	}
	n.StartedAt, n.HeartbeatAt, n.ExpiresAt = timeOf(started), timeOf(beat), timeOf(expires)
	n.ExpiresIn = time.Duration(expires-now) * time.Microsecond
	var qs []nodeQueueJSON
	if err := json.Unmarshal([]byte(queues), &qs); err != nil {
		return nil, fmt.Errorf("node %s: queues %s: %w", n.ID, queues, err)
	}
	n.Queues = make([]acidic.NodeQueue, len(qs))
	for i, q := range qs {
		n.Queues[i] = acidic.NodeQueue(q)
	}
	return &n, nil
}
