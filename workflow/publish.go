package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/acidic-go/acidic/storage"
)

// PublishHook is called for every outbox message staged through an engine
// (a step's steps.Context.Publish, Engine.PublishTx), with the stager's
// context, the message's topic and its Meta (nil when none). It returns the
// Meta to store (acidic.OutboxMessage.Meta): nil or unchanged to keep it.
// Package otelacidic uses it to carry the trace context with the message,
// as queue.EnqueueHook carries it with a job. An error fails the staging
// (and so the step that staged the message), and nothing is written.
type PublishHook func(ctx context.Context, topic string, meta json.RawMessage) (json.RawMessage, error)

// PublishTx stages a message in ex, the caller's transaction (or the driver
// itself, outside one), for an outbox relay to deliver after it commits, in
// order with the other messages of key: what steps.Context.Publish does in
// a step, for code outside workflows. The publish hooks
// (Config.PublishHooks) see it with ctx, so a message staged while handling
// a traced request carries the request's trace context.
func (e *Engine) PublishTx(ctx context.Context, ex storage.Executor, topic, key string, payload any) error {
	if topic == "" {
		return fmt.Errorf("%w: publish needs a topic", ErrInvalid)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("workflow: encode message: %w", err)
	}
	return e.stageMessage(ctx, ex, storage.OutboxInsert{Topic: topic, Key: key, Payload: b})
}

// stageMessage stages msg in ex with the publish hooks applied.
func (e *Engine) stageMessage(ctx context.Context, ex storage.Executor, msg storage.OutboxInsert) error {
	if ex == nil {
		return errors.New("workflow: publish: nil executor")
	}
	for _, h := range e.cfg.PublishHooks {
		meta, err := h(ctx, msg.Topic, msg.Meta)
		if err != nil {
			return fmt.Errorf("workflow: publish hook: topic %q: %w", msg.Topic, err)
		}
		if meta != nil {
			msg.Meta = meta
		}
	}
	return ex.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{msg}})
}
