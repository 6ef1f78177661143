package otelacidic

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/outbox"
)

// Attribute keys of the outbox delivery spans.
const (
	AttrOutboxID    = attribute.Key("acidic.outbox.id")
	AttrOutboxTopic = attribute.Key("acidic.outbox.topic")
)

// PublishHook writes the trace context of ctx into an outbox message's
// Meta, under MetaKey, when ctx carries a span: a workflow.PublishHook,
// which Configure adds, so that a message a step stages (steps.Context.Publish)
// or code stages in its own transaction (workflow.Engine.PublishTx) carries
// the trace of the step or request that staged it. Code that stages
// messages with storage.Executor.OutboxInsert directly may call it to fill
// storage.OutboxInsert.Meta. Meta that is not a JSON object is left alone.
func (in *Instrumentation) PublishHook(ctx context.Context, topic string, meta json.RawMessage) (json.RawMessage, error) {
	return in.EnqueueHook(ctx, topic, meta)
}

// ConfigureOutbox wraps an outbox relay's Publisher with Publisher: call
// it before outbox.New, after setting cfg.Publisher.
func (in *Instrumentation) ConfigureOutbox(cfg *outbox.Config) {
	if in.cfg.DisableTraces || cfg.Publisher == nil {
		return
	}
	cfg.Publisher = in.Publisher(cfg.Publisher)
}

// Publisher wraps an outbox publisher so that every delivery attempt of a
// message has a span, "acidic.outbox.publish TOPIC" (kind producer), the
// child of the span that staged the message when its Meta carries one (see
// PublishHook): one trace then shows the request, the run, the step that
// published the message and each attempt to deliver it. The span carries
// acidic.outbox.id, acidic.outbox.topic, acidic.attempt and, for a message
// a step staged, acidic.run.id; a failed publish is recorded on it. The
// context p receives carries the span, so a broker client instrumented with
// OpenTelemetry carries the trace on to the consumer. With DisableTraces it
// returns p.
func (in *Instrumentation) Publisher(p outbox.Publisher) outbox.Publisher {
	if in.cfg.DisableTraces || p == nil {
		return p
	}
	return outbox.PublisherFunc(func(ctx context.Context, msg *acidic.OutboxMessage) error {
		ctx = in.extract(ctx, msg.Meta)
		attrs := []attribute.KeyValue{AttrOutboxID.Int64(msg.ID), AttrOutboxTopic.String(msg.Topic), AttrAttempt.Int(msg.Attempts)}
		if msg.RunID != [16]byte{} {
			attrs = append(attrs, AttrRunID.String(msg.RunID.String()))
		}
		ctx, span := in.tracer.Start(ctx, "acidic.outbox.publish "+msg.Topic,
			trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
		defer span.End()
		err := p.Publish(ctx, msg)
		endSpan(span, err)
		return err
	})
}
