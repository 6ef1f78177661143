package sqlite

import (
	"context"
	"fmt"
	"slices"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func (e *executor) OutboxInsert(ctx context.Context, p storage.OutboxInsertParams) error {
	if len(p.Messages) == 0 {
		return nil
	}
	for _, m := range p.Messages {
		if err := m.Validate(); err != nil {
			return err
		}
	}
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		for _, m := range p.Messages {
			if _, err := q.exec("OutboxInsert", m.Topic, m.Key, jsonParam(m.Payload), blobID(m.RunID), now, jsonParam(m.Meta)); err != nil {
				return err
			}
		}
		q.notify(storage.TopicOutbox, "")
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox insert: %w", err)
	}
	return nil
}

func (e *executor) OutboxClaim(ctx context.Context, p storage.OutboxClaimParams) ([]*acidic.OutboxMessage, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	var msgs []*acidic.OutboxMessage
	err := e.write(ctx, false, func(q wq) error {
		now := q.now()
		var err error
		msgs, err = collectOutbox(q.query("OutboxClaim", p.Limit, now, now+p.Lease.Microseconds()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox claim: %w", err)
	}
	slices.SortFunc(msgs, func(a, b *acidic.OutboxMessage) int { return int(a.ID - b.ID) })
	return msgs, nil
}

func (e *executor) OutboxDelivered(ctx context.Context, p storage.OutboxDeliveredParams) error {
	if len(p.IDs) == 0 {
		return nil
	}
	err := e.write(ctx, false, func(q wq) error {
		_, err := q.exec("OutboxDelivered", idList(p.IDs), q.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox delivered: %w", err)
	}
	return nil
}

func (e *executor) OutboxFailed(ctx context.Context, p storage.OutboxFailedParams) error {
	err := e.write(ctx, false, func(q wq) error {
		_, err := q.exec("OutboxFailed", p.ID, p.Attempt, q.now()+p.RetryIn.Microseconds(), storage.Text(p.Error))
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox failed: %w", err)
	}
	return nil
}

func (e *executor) OutboxRelease(ctx context.Context, p storage.OutboxReleaseParams) error {
	if len(p.Claims) == 0 {
		return nil
	}
	claims := pairList(len(p.Claims), func(i int) (int64, int) { return p.Claims[i].ID, p.Claims[i].Attempt })
	err := e.write(ctx, false, func(q wq) error {
		_, err := q.exec("OutboxRelease", claims, q.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox release: %w", err)
	}
	return nil
}

func (e *executor) OutboxPrune(ctx context.Context, p storage.OutboxPruneParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	var n int64
	err := e.write(ctx, false, func(q wq) error {
		var err error
		n, err = q.execCount("OutboxPrune", q.now()-p.Retention.Microseconds(), p.Limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("outbox prune: %w", err)
	}
	return int(n), nil
}

func (e *executor) OutboxList(ctx context.Context, p storage.OutboxListParams) ([]*acidic.OutboxMessage, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	r, err := e.reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox list: %w", err)
	}
	msgs, err := collectOutbox(r.query(ctx, "OutboxList", p.PendingOnly, limit))
	if err != nil {
		return nil, fmt.Errorf("outbox list: %w", err)
	}
	return msgs, nil
}
