package acidic

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// OutboxMessage is a message staged for a system outside the database, to
// be delivered by the outbox relay after the step that staged it commits.
type OutboxMessage struct {
	ID int64
	// Topic names the destination (a broker topic, a webhook, a mailer).
	Topic string
	// Key orders delivery: messages with one key are delivered one at a
	// time, in id order. Ids are taken at insert, so two transactions that
	// stage messages for one key at the same time may commit out of id
	// order; stage a key's messages from one run at a time to avoid that.
	Key     string
	Payload json.RawMessage
	// RunID is the run whose step staged the message, if any.
	RunID uuid.UUID
	// Meta is data about the message that is not its payload, a JSON
	// object, nil when there is none: what the stager set
	// (storage.OutboxInsert.Meta) or the engine's publish hooks wrote
	// (workflow.Config.PublishHooks). Package otelacidic keeps the trace
	// context of the code that staged the message there, under "otel", so
	// that the span of its delivery continues that trace.
	Meta json.RawMessage
	// Attempts counts delivery attempts so far.
	Attempts      int
	NextAttemptAt time.Time
	DeliveredAt   *time.Time
	LastError     string
	CreatedAt     time.Time
}
