package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func (e *executor) OutboxInsert(ctx context.Context, p storage.OutboxInsertParams) error {
	msgs := p.Messages
	if len(msgs) == 0 {
		return nil
	}
	topics := make([]string, len(msgs))
	keys := make([]string, len(msgs))
	payloads := make([]pgtype.Text, len(msgs))
	runs := make([]pgtype.UUID, len(msgs))
	metas := make([]pgtype.Text, len(msgs))
	for i, m := range msgs {
		if err := m.Validate(); err != nil {
			return err
		}
		topics[i], keys[i], runs[i] = m.Topic, m.Key, nullUUID(m.RunID)
		payloads[i] = pgtype.Text{String: string(m.Payload), Valid: len(m.Payload) > 0}
		metas[i] = pgtype.Text{String: string(m.Meta), Valid: len(m.Meta) > 0}
	}
	_, err := e.db.Exec(ctx, e.q.Get("OutboxInsert"), topics, keys, payloads, runs, e.channelPrefix+storage.TopicOutbox, metas)
	if err != nil {
		return fmt.Errorf("outbox insert: %w", wrapErr(err))
	}
	return nil
}

func (e *executor) OutboxClaim(ctx context.Context, p storage.OutboxClaimParams) ([]*acidic.OutboxMessage, error) {
	limit, lease := p.Limit, p.Lease
	msgs, err := collectOutbox(e.db.Query(ctx, e.q.Get("OutboxClaim"), limit, lease.Microseconds()))
	if err != nil {
		return nil, fmt.Errorf("outbox claim: %w", err)
	}
	return msgs, nil
}

func (e *executor) OutboxDelivered(ctx context.Context, p storage.OutboxDeliveredParams) error {
	ids := p.IDs
	if _, err := e.db.Exec(ctx, e.q.Get("OutboxDelivered"), ids); err != nil {
		return fmt.Errorf("outbox delivered: %w", wrapErr(err))
	}
	return nil
}

func (e *executor) OutboxFailed(ctx context.Context, p storage.OutboxFailedParams) error {
	id, attempt, retryIn, errText := p.ID, p.Attempt, p.RetryIn, p.Error
	if _, err := e.db.Exec(ctx, e.q.Get("OutboxFailed"), id, attempt, retryIn.Microseconds(), storage.Text(errText)); err != nil {
		return fmt.Errorf("outbox failed: %w", wrapErr(err))
	}
	return nil
}

func (e *executor) OutboxRelease(ctx context.Context, p storage.OutboxReleaseParams) error {
	claims := p.Claims
	ids, attempts := make([]int64, len(claims)), make([]int32, len(claims))
	for i, c := range claims {
		ids[i], attempts[i] = c.ID, int32(c.Attempt)
	}
	if _, err := e.db.Exec(ctx, e.q.Get("OutboxRelease"), ids, attempts); err != nil {
		return fmt.Errorf("outbox release: %w", wrapErr(err))
	}
	return nil
}

func (e *executor) OutboxPrune(ctx context.Context, p storage.OutboxPruneParams) (int, error) {
	retention, limit := p.Retention, p.Limit
	tag, err := e.db.Exec(ctx, e.q.Get("OutboxPrune"), retention.Microseconds(), limit)
	if err != nil {
		return 0, fmt.Errorf("outbox prune: %w", wrapErr(err))
	}
	return int(tag.RowsAffected()), nil
}

func (e *executor) OutboxList(ctx context.Context, p storage.OutboxListParams) ([]*acidic.OutboxMessage, error) {
	pendingOnly, limit := p.PendingOnly, p.Limit
	if limit <= 0 {
		limit = 1000
	}
	msgs, err := collectOutbox(e.db.Query(ctx, e.q.Get("OutboxList"), pendingOnly, limit))
	if err != nil {
		return nil, fmt.Errorf("outbox list: %w", err)
	}
	return msgs, nil
}

func collectOutbox(rows pgx.Rows, err error) ([]*acidic.OutboxMessage, error) {
	if err != nil {
		return nil, wrapErr(err)
	}
	defer rows.Close()
	var out []*acidic.OutboxMessage
	for rows.Next() {
		var (
			m         acidic.OutboxMessage
			runID     pgtype.UUID
			delivered pgtype.Timestamptz
			meta      []byte
		)
		if err := rows.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &runID, &m.Attempts, &m.NextAttemptAt,
			&delivered, &m.LastError, &m.CreatedAt, &meta); err != nil {
			return nil, wrapErr(err)
		}
		if len(meta) > 0 {
			m.Meta = meta
		}
		if runID.Valid {
			m.RunID = runID.Bytes
		}
		m.DeliveredAt = timePtr(delivered)
		out = append(out, &m)
	}
	return out, wrapErr(rows.Err())
}
